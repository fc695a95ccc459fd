//! Both ends of a link in one process, over an in-memory stream.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::channel::Connect;
use super::link::{self, Ends};
use super::wire::Report;
use super::{Registry, Secret, Version};
use crate::base::{Kind, hex};

/// A dialler for channels that never gets through: these tests open none.
struct Nowhere;

impl Connect for Nowhere {
    fn connect(
        &self,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<Box<dyn crate::base::listen::Conn>, crate::base::Error>,
    > {
        Box::pin(async { Err(crate::err!(Unavailable, "nowhere")) })
    }
}

fn nowhere() -> Arc<dyn Connect> {
    Arc::new(Nowhere)
}

fn version(text: &str) -> Version {
    Version {
        sha256: hex::sha256(text.as_bytes()),
        text: text.to_string(),
    }
}

/// Whether `f` holds within a second.
async fn eventually(f: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn a_media_node_with_the_secret_gets_every_version_and_reports_back() {
    let secret = Secret::generate().unwrap();
    let registry = Arc::new(Registry::new(Arc::default()));
    registry.set_secret(Some(secret.clone()));
    registry.publish(version("one"));
    let (app_io, media_io) = tokio::io::duplex(1 << 16);
    let app = tokio::spawn(link::accept(app_io, registry.clone(), "peer".into()));
    let (versions_tx, mut versions) = mpsc::channel(4);
    let (reports_tx, reports) = watch::channel((None, None));
    let media = tokio::spawn(async move {
        let mut ends = Ends {
            versions: versions_tx,
            reports,
            auth: Arc::default(),
            serve: None,
            cameras: Default::default(),
        };
        link::dial(media_io, &secret, "media-1", &mut ends, &nowhere()).await
    });
    assert_eq!(versions.recv().await.unwrap(), version("one"));
    registry.publish(version("two"));
    let two = versions.recv().await.unwrap();
    assert_eq!(two, version("two"));
    reports_tx
        .send((
            Some(two.sha256.clone()),
            Some(Report {
                sha256: two.sha256.clone(),
                outcome: "applied".into(),
                summary: String::new(),
                diagnostics: serde_json::json!([]),
            }),
        ))
        .unwrap();
    for _ in 0..100 {
        if registry
            .nodes()
            .get("media-1")
            .and_then(|n| n.version.clone())
            == Some(two.sha256.clone())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let node = registry.nodes()["media-1"].clone();
    assert!(node.online);
    assert_eq!(node.version, Some(two.sha256));
    assert_eq!(node.last.unwrap().outcome, "applied");
    media.abort();
    app.abort();
}

#[tokio::test]
async fn a_node_with_another_secret_is_refused_and_learns_nothing() {
    let registry = Arc::new(Registry::new(Arc::default()));
    registry.set_secret(Some(Secret::generate().unwrap()));
    registry.publish(version("secret site"));
    let (app_io, media_io) = tokio::io::duplex(1 << 16);
    let app = tokio::spawn(link::accept(app_io, registry.clone(), "peer".into()));
    let (versions_tx, mut versions) = mpsc::channel(4);
    let (_reports_tx, reports) = watch::channel((None, None));
    let mut ends = Ends {
        versions: versions_tx,
        reports,
        auth: Arc::default(),
        serve: None,
        cameras: Default::default(),
    };
    let wrong = Secret::generate().unwrap();
    let e = link::dial(media_io, &wrong, "media-1", &mut ends, &nowhere())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Unauthenticated, "{e}");
    assert!(versions.try_recv().is_err(), "no version reached it");
    drop(ends);
    let refused = app.await.unwrap();
    assert!(refused.is_err());
    assert!(registry.nodes().is_empty(), "it never counted as linked");
}

#[tokio::test]
async fn an_application_node_impostor_is_refused_by_the_media_node() {
    // The impostor holds another secret (a man in the middle with a TLS certificate of its
    // own is no better off): the media node refuses it before it proves anything itself.
    let impostor = Arc::new(Registry::new(Arc::default()));
    impostor.set_secret(Some(Secret::generate().unwrap()));
    let (app_io, media_io) = tokio::io::duplex(1 << 16);
    let _app = tokio::spawn(link::accept(app_io, impostor, "peer".into()));
    let (versions_tx, _versions) = mpsc::channel(4);
    let (_reports_tx, reports) = watch::channel((None, None));
    let mut ends = Ends {
        versions: versions_tx,
        reports,
        auth: Arc::default(),
        serve: None,
        cameras: Default::default(),
    };
    let e = link::dial(
        media_io,
        &Secret::generate().unwrap(),
        "media-1",
        &mut ends,
        &nowhere(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("app side"), "{e}");
}

/// Issue 12 §3: a token revoked on the application node is refused on a linked media node at
/// once, and one revoked on a media node reaches the application node (and so every node).
#[tokio::test]
async fn revoked_tokens_travel_both_ways_over_the_link() {
    use crate::auth::{Auth, token::unix_now};
    let secret = Secret::generate().unwrap();
    let (app_auth, media_auth) = (Arc::new(Auth::default()), Arc::new(Auth::default()));
    app_auth.revoked().add([1; 16], unix_now() + 60, unix_now());
    let registry = Arc::new(Registry::new(app_auth.clone()));
    registry.set_secret(Some(secret.clone()));
    let (app_io, media_io) = tokio::io::duplex(1 << 16);
    let app = tokio::spawn(link::accept(app_io, registry.clone(), "peer".into()));
    let (versions_tx, _versions) = mpsc::channel(4);
    let (_reports_tx, reports) = watch::channel((None, None));
    let auth = media_auth.clone();
    let media = tokio::spawn(async move {
        let mut ends = Ends {
            versions: versions_tx,
            reports,
            auth,
            serve: None,
            cameras: Default::default(),
        };
        link::dial(media_io, &secret, "media-1", &mut ends, &nowhere()).await
    });
    assert!(
        eventually(|| media_auth.revoked().contains(&[1; 16])).await,
        "the application node's list reaches the media node"
    );
    media_auth
        .revoked()
        .add([2; 16], unix_now() + 60, unix_now());
    assert!(
        eventually(|| app_auth.revoked().contains(&[2; 16])).await,
        "a media node's revocation reaches the application node"
    );
    media.abort();
    app.abort();
}

/// Dials "the application node": a new in-memory stream whose other end `accept` serves.
pub(super) struct Loopback(pub Arc<Registry>);

impl Connect for Loopback {
    fn connect(
        &self,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<Box<dyn crate::base::listen::Conn>, crate::base::Error>,
    > {
        let (app, media) = tokio::io::duplex(1 << 16);
        tokio::spawn(link::accept(app, self.0.clone(), "peer".into()));
        Box::pin(async move { Ok(Box::new(media) as Box<dyn crate::base::listen::Conn>) })
    }
}

/// An application node's registry with a media node "media-1" linked to it, serving channels
/// with `serve`; the task is the media node's link.
pub(super) async fn linked(
    serve: Option<Arc<dyn super::channel::Serve>>,
) -> (Arc<Registry>, tokio::task::JoinHandle<()>) {
    let secret = Secret::generate().unwrap();
    let registry = Arc::new(Registry::new(Arc::default()));
    registry.set_secret(Some(secret.clone()));
    let connect: Arc<dyn Connect> = Arc::new(Loopback(registry.clone()));
    let control = connect.connect().await.unwrap();
    let media = tokio::spawn(async move {
        let (versions, _keep) = mpsc::channel(4);
        let (_reports_tx, reports) = watch::channel((None, None));
        let mut ends = Ends {
            versions,
            reports,
            auth: Arc::default(),
            serve,
            cameras: Default::default(),
        };
        let _ = link::dial(control, &secret, "media-1", &mut ends, &connect).await;
    });
    for _ in 0..200 {
        if registry.nodes().get("media-1").is_some_and(|n| n.online) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    (registry, media)
}
