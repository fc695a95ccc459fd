//! TLS for the web listeners: the certificate of `[tls]`, or a self-signed one generated once.
//!
//! The self-signed certificate is written to `<state-dir>/tls/self-signed.{crt,key}` the first
//! time it is needed, for the site's name, the node's name and address, and `localhost`; it is
//! reused after that, so browsers that accepted it once keep accepting it. When the names change
//! (another node address), it is generated again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::base::fs::write_atomic;
use crate::base::{Error, Kind, ResultExt as _};
use crate::plan::Tls;

/// Put on requests that came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Secure;

fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let open = |path: &Path| {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .err_kind(Kind::Io, || format!("cannot read {}", path.display()))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .err_kind(Kind::Invalid, || cert.display().to_string())?;
    if certs.is_empty() {
        crate::bail!(Invalid, "{} holds no certificate", cert.display());
    }
    let key = rustls_pemfile::private_key(&mut open(key)?)
        .err_kind(Kind::Invalid, || key.display().to_string())?
        .ok_or_else(|| crate::err!(Invalid, "{} holds no private key", key.display()))?;
    Ok((certs, key))
}

/// How long a self-signed certificate is valid: browsers refuse more than 398 days.
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);
/// A self-signed certificate is renewed when less than this is left of it.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The UTC day of `t` (year, month, day), for a certificate's validity.
fn day(t: SystemTime) -> (i32, u8, u8) {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    let part = |r: std::ops::Range<usize>| text[r].parse::<u8>().unwrap_or(1);
    (text[..4].parse().unwrap_or(1970), part(5..7), part(8..10))
}

/// Generates (or reuses) the self-signed certificate; returns the paths of its files.
///
/// Its subject is the site's name (the first of `names`), its alternative names are `names` and
/// `localhost`, and it is valid from yesterday for [`SELF_SIGNED_VALIDITY`]. It is generated
/// again when the names change or less than [`RENEW_BEFORE`] of it is left.
pub fn self_signed(state: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), Error> {
    self_signed_at(state, names, SystemTime::now())
}

/// [`self_signed`] at the time `now`.
pub(crate) fn self_signed_at(
    state: &Path,
    names: &[String],
    now: SystemTime,
) -> Result<(PathBuf, PathBuf), Error> {
    let dir = state.join("tls");
    let (cert, key, stamp) = (
        dir.join("self-signed.crt"),
        dir.join("self-signed.key"),
        dir.join("self-signed.names"),
    );
    let mut all: Vec<String> = names.to_vec();
    all.push("localhost".into());
    all.sort();
    all.dedup();
    let wanted = all.join("\n");
    // The stamp: the names, then the end of validity in seconds since the epoch.
    let kept = std::fs::read_to_string(&stamp).ok().and_then(|s| {
        let (names, until) = s.rsplit_once("\nuntil ")?;
        let until = UNIX_EPOCH + Duration::from_secs(until.trim().parse().ok()?);
        (names == wanted && until > now + RENEW_BEFORE).then_some(())
    });
    if kept.is_some() && cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)
        .err_kind(Kind::Io, || format!("cannot create {}", dir.display()))?;
    let subject = names.first().map_or("sited", String::as_str);
    let mut params = rcgen::CertificateParams::new(all.clone())
        .err_kind(Kind::Invalid, || "a name of the certificate")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "sited");
    let from = now - Duration::from_secs(24 * 3600);
    let until = now + SELF_SIGNED_VALIDITY;
    let ((y0, m0, d0), (y1, m1, d1)) = (day(from), day(until));
    params.not_before = rcgen::date_time_ymd(y0, m0, d0);
    params.not_after = rcgen::date_time_ymd(y1, m1, d1);
    let signing_key =
        rcgen::KeyPair::generate().err_kind(Kind::Internal, || "cannot generate a key")?;
    let generated = params
        .self_signed(&signing_key)
        .err_kind(Kind::Internal, || "cannot generate a certificate")?;
    let write = |path: &Path, text: &str| {
        write_atomic(path, text.as_bytes()).err_kind(Kind::Io, || path.display().to_string())
    };
    write(&key, &signing_key.serialize_pem())?;
    write(&cert, &generated.pem())?;
    let until_secs = until.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    write(&stamp, &format!("{wanted}\nuntil {until_secs}\n"))?;
    tracing::info!(names = %all.join(","), until = %humantime::format_rfc3339_seconds(until), "generated a self-signed certificate");
    Ok((cert, key))
}

/// The server configuration for a plan's TLS, or `None` when no listener needs TLS.
pub fn server_config(tls: &Tls, state: &Path) -> Result<Option<Arc<ServerConfig>>, Error> {
    let (cert, key) = match tls {
        Tls::None => return Ok(None),
        Tls::Files(files) => (files.certificate.clone(), files.key.clone()),
        Tls::SelfSigned(names) => self_signed(state, names)?,
    };
    let (certs, key) = read_pem(&cert, &key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .err_kind(Kind::Internal, || "TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .err_kind(Kind::Invalid, || "the certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// A fingerprint of the TLS material, so a listener rebinds when its certificate changes
/// (another file, or a renewed self-signed one).
pub fn fingerprint(config: &Option<Arc<ServerConfig>>, tls: &Tls, state: &Path) -> String {
    let cert = match (config, tls) {
        (Some(_), Tls::Files(f)) => f.certificate.clone(),
        (Some(_), Tls::SelfSigned(_)) => state.join("tls/self-signed.crt"),
        _ => return String::new(),
    };
    crate::base::hex::sha256(&std::fs::read(cert).unwrap_or_default())
}

/// Wraps a rustls configuration for the listeners.
pub fn acceptor(config: Option<Arc<ServerConfig>>) -> Option<tokio_rustls::TlsAcceptor> {
    config.map(tokio_rustls::TlsAcceptor::from)
}
