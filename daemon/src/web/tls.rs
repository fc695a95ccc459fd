//! TLS for the web listeners: the certificate of `[tls]`, or a self-signed one generated once.
//!
//! The self-signed certificate is written to `<state-dir>/tls/self-signed.{crt,key}` the first
//! time it is needed, for the site's name, the node's name and address, and `localhost`; it is
//! reused after that, so browsers that accepted it once keep accepting it. When the names change
//! (another node address), it is generated again.

use std::path::Path;
use std::sync::Arc;

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

/// Generates (or reuses) the self-signed certificate; returns the paths of its files.
pub fn self_signed(
    state: &Path,
    names: &[String],
) -> Result<(std::path::PathBuf, std::path::PathBuf), Error> {
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
    if cert.exists() && key.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)
        .err_kind(Kind::Io, || format!("cannot create {}", dir.display()))?;
    let generated = rcgen::generate_simple_self_signed(all.clone())
        .err_kind(Kind::Internal, || "cannot generate a certificate")?;
    let write = |path: &Path, text: &str| {
        write_atomic(path, text.as_bytes()).err_kind(Kind::Io, || path.display().to_string())
    };
    write(&key, &generated.signing_key.serialize_pem())?;
    write(&cert, &generated.cert.pem())?;
    write(&stamp, &wanted)?;
    tracing::info!(names = %all.join(","), "generated a self-signed certificate");
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

/// A fingerprint of the TLS material, so a listener rebinds when its certificate changes.
pub fn fingerprint(config: &Option<Arc<ServerConfig>>, tls: &Tls) -> String {
    match (config, tls) {
        (None, _) => String::new(),
        (Some(_), Tls::Files(f)) => {
            let bytes = std::fs::read(&f.certificate).unwrap_or_default();
            crate::base::hex::sha256(&bytes)
        }
        (Some(_), Tls::SelfSigned(names)) => names.join(","),
        (Some(_), Tls::None) => String::new(),
    }
}

/// Wraps a rustls configuration for the listeners.
pub fn acceptor(config: Option<Arc<ServerConfig>>) -> Option<tokio_rustls::TlsAcceptor> {
    config.map(tokio_rustls::TlsAcceptor::from)
}
