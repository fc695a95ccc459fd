//! A media node's link to its application node, kept up: connect to the application node's
//! web port, upgrade the HTTP connection (`Upgrade: sited-link`), run [`super::link::dial`], and
//! after any failure try again with backoff. TLS, where the web port has it, is only the
//! carrier: its certificate is not checked, because the site secret authenticates the
//! application node (see the threat model in [`super`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::channel::Connect;
use super::link::{self, Ends, UPGRADE};
use super::seal::Secret;
use crate::base::{Error, Kind, backoff::backoff};
use crate::state::LinkState;

/// Where a media node's application node listens for links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The application node's name.
    pub node: String,
    /// Its address.
    pub address: IpAddr,
    /// Its web port, as bound.
    pub port: u16,
    /// Whether that port speaks TLS.
    pub tls: bool,
}

/// How long connecting and the HTTP upgrade may take.
const CONNECT: Duration = Duration::from_secs(10);

/// Keeps the link up until `stop`.
pub async fn run(
    target: Target,
    me: String,
    secret: Secret,
    mut ends: Ends,
    state: watch::Sender<LinkState>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    let connector: Arc<dyn Connect> = Arc::new(target.clone());
    loop {
        let attempt = async {
            let stream = tokio::time::timeout(CONNECT, connect(&target))
                .await
                .map_err(|_| Error::new(Kind::DeadlineExceeded, "connecting timed out"))??;
            state.send_replace(LinkState {
                application: target.node.clone(),
                online: true,
                since: Some(crate::base::time::now_rfc3339()),
                error: None,
            });
            link::dial(stream, &secret, &me, &mut ends, &connector).await
        };
        let error = tokio::select! {
            () = stop.cancelled() => return,
            r = attempt => match r {
                Ok(()) => return,
                Err(e) => e,
            },
        };
        failures = failures.saturating_add(1);
        tracing::warn!(application = %target.node, error = %error, failures, "the link to the application node is down; the last good site keeps running");
        let was_online = state.borrow().online;
        state.send_modify(|s| {
            s.application = target.node.clone();
            if was_online || s.since.is_none() {
                s.since = Some(crate::base::time::now_rfc3339());
            }
            s.online = false;
            s.error = Some(error.to_string());
        });
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff(failures.min(4))) => {}
        }
    }
}

impl Connect for Target {
    fn connect(
        &self,
    ) -> futures_util::future::BoxFuture<'static, Result<Box<dyn crate::base::listen::Conn>, Error>>
    {
        let target = self.clone();
        Box::pin(async move { connect(&target).await })
    }
}

/// A stream to the application node's web port, upgraded to a link.
async fn connect(target: &Target) -> Result<Box<dyn crate::base::listen::Conn>, Error> {
    let addr = SocketAddr::new(target.address, target.port);
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| Error::from(e).context(format!("cannot reach {addr}")))?;
    let _ = tcp.set_nodelay(true);
    let mut io: Box<dyn crate::base::listen::Conn> = if target.tls {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config()?));
        let name = rustls::pki_types::ServerName::IpAddress(target.address.into());
        Box::new(
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| Error::from(e).context(format!("TLS to {addr}")))?,
        )
    } else {
        Box::new(tcp)
    };
    let request = format!(
        "GET /api/v1/node/link HTTP/1.1\r\nHost: {addr}\r\nUpgrade: {UPGRADE}\r\nConnection: Upgrade\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await?;
    // The head byte by byte: nothing of the link after it may be read here.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 {
            crate::bail!(
                Invalid,
                "{addr} answered the link upgrade with an overlong head"
            );
        }
        head.push(io.read_u8().await?);
    }
    let status = String::from_utf8_lossy(&head);
    if !status.starts_with("HTTP/1.1 101") {
        let line = status.lines().next().unwrap_or("").to_string();
        crate::bail!(Unavailable, "{addr} refused the link: {line}");
    }
    Ok(io)
}

/// TLS that carries the link without checking the certificate: the site secret, checked in the
/// link's handshake, is what authenticates the application node.
fn tls_config() -> Result<rustls::ClientConfig, Error> {
    crate::base::tls::unverified_client(&[b"http/1.1"])
}
