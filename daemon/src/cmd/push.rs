//! `sited push FILE --to URL [--dry-run]`: what a CI pipeline runs after `sited validate`.
//!
//! It reads the site file in force from the application node (`GET /api/v1/site/file`), then:
//! - with `--dry-run`, prints each node's plan diff between that file and FILE and exits as
//!   `sited plan` does: 0 no change, 2 changes, 1 error;
//! - without, sends FILE with `If-Match` set to the version it read (`PUT /api/v1/site`), so
//!   that an edit made meanwhile is never overwritten, and waits until every node runs the
//!   new version (`GET /api/v1/nodes`): 0 when all do, 1 otherwise.
//!
//! Credentials come from `SITED_USER` and `SITED_PASSWORD`, or from `--credentials FILE`
//! (one line, `user:password`), never from the command line. The URL is `https://HOST:PORT`,
//! with `--ca` naming the certificate the node must prove it holds (credentials are never sent
//! to an unproven node), or `http://HOST:PORT` where the layout serves the API in clear.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::base::{Error, Kind, ResultExt as _};
use crate::plan::diff;

/// Arguments of `sited push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new site file.
    pub file: PathBuf,
    /// The application node: `https://HOST:PORT` (or `http://` where its layout serves the API
    /// in clear).
    #[arg(long)]
    pub to: String,
    /// For `https://`: the certificate (PEM) the application node's must be, or chain to: its
    /// own self-signed one (`/var/lib/sited/tls/self-signed.crt`) or the CA of `[tls]`. The
    /// credentials never go to a node that does not prove it holds it.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Print each node's plan diff and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A file holding `user:password` (else SITED_USER and SITED_PASSWORD).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// How long to wait for every node to run the new version, in seconds.
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
}

/// An HTTP answer: status, headers (lowercase names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where requests go: `host:port`, and TLS when the URL says `https://`.
struct Node {
    host: String,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl Node {
    /// The node of `--to`, trusting `--ca` over TLS.
    fn of(to: &str, ca: Option<&Path>) -> Result<Node, Error> {
        let (tls, rest) = match (to.strip_prefix("https://"), to.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (_, Some(rest)) => (false, rest),
            _ => crate::bail!(Invalid, "--to takes https://HOST:PORT or http://HOST:PORT"),
        };
        let host = rest.trim_end_matches('/').to_string();
        if !tls {
            return Ok(Node { host, tls: None });
        }
        let Some(ca) = ca else {
            crate::bail!(
                Invalid,
                "https:// needs --ca: the node's certificate (its self-signed one is /var/lib/sited/tls/self-signed.crt) or its CA"
            );
        };
        let pem =
            std::fs::read(ca).err_kind(Kind::Io, || format!("cannot read {}", ca.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.err_kind(Kind::Invalid, || ca.display().to_string())?;
            roots.add(cert).err_kind(Kind::Invalid, || {
                format!("{} holds no usable certificate", ca.display())
            })?;
        }
        if roots.is_empty() {
            crate::bail!(Invalid, "{} holds no certificate", ca.display());
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .err_kind(Kind::Internal, || "TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = host
            .rsplit_once(':')
            .map_or(host.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(name.to_string())
            .err_kind(Kind::Invalid, || format!("{name} is not a host name"))?;
        Ok(Node {
            host,
            tls: Some((Arc::new(config), name)),
        })
    }
}

/// One HTTP/1.1 request over a fresh connection.
fn request(
    node: &Node,
    method: &str,
    path: &str,
    auth: &str,
    extra: &str,
    body: &str,
) -> Result<Answer, Error> {
    let host = &node.host;
    let tcp =
        TcpStream::connect(host).err_kind(Kind::Unavailable, || format!("cannot reach {host}"))?;
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    let mut raw = Vec::new();
    let exchange = |s: &mut dyn ReadWrite, raw: &mut Vec<u8>| {
        s.write_all(head.as_bytes())
            .and_then(|()| s.write_all(body.as_bytes()))
            .and_then(|()| s.flush())
            .err_kind(Kind::Io, || format!("sending to {host}"))?;
        match s.read_to_end(raw) {
            Ok(_) => Ok(()),
            // A TLS peer that closes without close_notify once it has answered.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(()),
            Err(e) => Err(Error::new(Kind::Io, format!("reading from {host}")).with_source(e)),
        }
    };
    match &node.tls {
        None => exchange(&mut { tcp }, &mut raw)?,
        Some((config, name)) => {
            let connection = rustls::ClientConnection::new(config.clone(), name.clone())
                .err_kind(Kind::Internal, || "TLS")?;
            exchange(&mut rustls::StreamOwned::new(connection, tcp), &mut raw)?;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| crate::err!(Invalid, "a malformed answer"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| crate::err!(Invalid, "a malformed status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

/// A byte stream both ways: plain TCP, or TLS over it.
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn credentials(args: &Args) -> Result<String, Error> {
    let pair = match &args.credentials {
        Some(path) => std::fs::read_to_string(path)
            .err_kind(Kind::Io, || format!("cannot read {}", path.display()))?
            .trim()
            .to_string(),
        None => match (std::env::var("SITED_USER"), std::env::var("SITED_PASSWORD")) {
            (Ok(u), Ok(p)) => format!("{u}:{p}"),
            _ => {
                crate::bail!(
                    Unauthenticated,
                    "give credentials: SITED_USER and SITED_PASSWORD, or --credentials FILE"
                );
            }
        },
    };
    if !pair.contains(':') {
        return Err(crate::err!(Invalid, "credentials are `user:password`"));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(pair))
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    match push(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sited: {e}");
            ExitCode::from(1)
        }
    }
}

fn push(args: &Args) -> Result<u8, Error> {
    let node = Node::of(&args.to, args.ca.as_deref())?;
    let auth = credentials(args)?;
    let new_text = std::fs::read_to_string(&args.file)
        .err_kind(Kind::Io, || format!("cannot read {}", args.file.display()))?;
    let Ok(new_site) = super::load_site(&args.file) else {
        return Err(crate::err!(
            Invalid,
            "{} is invalid; nothing was sent",
            args.file.display()
        ));
    };
    let current = request(&node, "GET", "/api/v1/site/file", &auth, "", "")?;
    if current.status != 200 {
        return Err(crate::err!(
            Invalid,
            "GET /api/v1/site/file: {} {}",
            current.status,
            current.body.trim()
        ));
    }
    let etag = current
        .header("etag")
        .ok_or_else(|| crate::err!(Invalid, "the application node gave no ETag"))?
        .to_string();
    if args.dry_run {
        let old_site = crate::plan::check(&current.body, Default::default()).site;
        let mut changed = false;
        for node in &new_site.nodes {
            let new = crate::plan::plan(&new_site, &node.name)
                .ok_or_else(|| crate::err!(Invalid, "a node vanished"))?;
            let old = old_site
                .as_ref()
                .and_then(|s| crate::plan::plan(s, &node.name))
                .unwrap_or_else(|| new.emptied());
            let change = diff::diff(&old, &new);
            changed |= !change.is_empty();
            println!("node {}:", node.name);
            print!("{}", diff::render(&change));
        }
        return Ok(if changed { 2 } else { 0 });
    }
    let put = request(
        &node,
        "PUT",
        "/api/v1/site",
        &auth,
        &format!("If-Match: {etag}\r\nContent-Type: application/toml\r\n"),
        &new_text,
    )?;
    if put.status != 202 {
        return Err(crate::err!(
            Invalid,
            "PUT /api/v1/site: {} {}",
            put.status,
            put.body.trim()
        ));
    }
    let version = crate::base::hex::sha256(new_text.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(args.wait_secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(nodes) = request(&node, "GET", "/api/v1/nodes", &auth, "", "") else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&nodes.body) else {
            continue;
        };
        let rollout = &json["rollout"];
        last = rollout["text"].as_str().unwrap_or_default().to_string();
        if rollout["version"].as_str() == Some(version.as_str())
            && rollout["applied"] == rollout["of"]
        {
            println!("{last}");
            return Ok(0);
        }
    }
    Err(crate::err!(
        DeadlineExceeded,
        "not every node runs version {version} after {} s: {last}",
        args.wait_secs
    ))
}
