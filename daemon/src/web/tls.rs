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

use crate::plan::Tls;

/// Put on requests that came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Secure;

fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?,
    ))
    .map_err(|e| format!("{}: {e}", key.display()))?
    .ok_or_else(|| format!("{} holds no private key", key.display()))?;
    Ok((certs, key))
}

/// Generates (or reuses) the self-signed certificate; returns the paths of its files.
pub fn self_signed(
    state: &Path,
    names: &[String],
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
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
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let generated = rcgen::generate_simple_self_signed(all.clone())
        .map_err(|e| format!("cannot generate a certificate: {e}"))?;
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.sync_all()
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(&key, &generated.signing_key.serialize_pem(), 0o600)?;
    write(&cert, &generated.cert.pem(), 0o644)?;
    write(&stamp, &wanted, 0o644)?;
    tracing::info!(names = %all.join(","), "generated a self-signed certificate");
    Ok((cert, key))
}

/// The server configuration for a plan's TLS, or `None` when no listener needs TLS.
pub fn server_config(tls: &Tls, state: &Path) -> Result<Option<Arc<ServerConfig>>, String> {
    let (cert, key) = match tls {
        Tls::None => return Ok(None),
        Tls::Files(files) => (files.certificate.clone(), files.key.clone()),
        Tls::SelfSigned(names) => self_signed(state, names)?,
    };
    let (certs, key) = read_pem(&cert, &key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not match: {e}"))?;
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
