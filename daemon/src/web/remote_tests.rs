//! Recordings through the application node, in process: two web services (the application
//! node's and a media node's), the media node linked to the application node over in-memory
//! streams, and its channels answered by its own web service (`remote::serve`).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use super::tests::{Server, basic, request, server_of};
use crate::base::listen::Conn;
use crate::nodes::channel::{Channel, Connect, Serve, Want};
use crate::nodes::link::{self, Ends};
use crate::nodes::{Registry, Secret};

const SITE: &str = "[site]\nname = \"harbour\"\nlayout = \"valt\"\n[networks]\nclients = [\"192.0.2.0/24\"]\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\"]\n[[nodes]]\nname = \"m1\"\naddress = \"192.0.2.2\"\nroles = [\"media\"]\n[[cameras]]\nname = \"gate\"\nurl = \"rtsp://198.51.100.1/s\"\nnode = \"m1\"\nrecord = true\n";

/// The media node's dial back to the application node, in memory.
struct Loopback(Arc<Registry>);

impl Connect for Loopback {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn Conn>, crate::base::Error>> {
        let (app, media) = tokio::io::duplex(1 << 16);
        tokio::spawn(link::accept(app, self.0.clone(), "peer".into()));
        Box::pin(async move { Ok(Box::new(media) as Box<dyn Conn>) })
    }
}

/// The media node's answer to a channel: its own web service.
struct Web(axum::Router);

impl Serve for Web {
    fn serve(&self, want: Want, channel: Channel) -> BoxFuture<'static, ()> {
        Box::pin(super::remote::serve(self.0.clone(), want, channel))
    }
}

/// The application node and media node `m1`, linked, with one site secret and its key.
async fn site() -> (Server, Server) {
    let (app, media) = (server_of(SITE, "app").await, server_of(SITE, "m1").await);
    let secret = Secret::generate().unwrap();
    for s in [&app, &media] {
        s.app.auth.set_site_key(Some(secret.token_key().unwrap()));
    }
    app.app.nodes.set_secret(Some(secret.clone()));
    let connect: Arc<dyn Connect> = Arc::new(Loopback(app.app.nodes.clone()));
    let control = connect.connect().await.unwrap();
    let router = super::router(media.app.clone());
    let auth = media.app.auth.clone();
    tokio::spawn(async move {
        let (versions, _keep) = mpsc::channel(4);
        let (_reports, reports) = watch::channel((None, None));
        let mut ends = Ends {
            versions,
            reports,
            auth,
            serve: Some(Arc::new(Web(router))),
            cameras: Default::default(),
        };
        let _ = link::dial(control, &secret, "m1", &mut ends, &connect).await;
    });
    for _ in 0..200 {
        if app.app.nodes.nodes().get("m1").is_some_and(|n| n.online) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    (app, media)
}

#[tokio::test]
async fn a_remote_cameras_recordings_come_through_the_application_node() {
    let (app, media) = site().await;
    let vic = basic("vic", "vic-pw");
    let (code, _, body) = request(
        app.addr,
        &format!("GET /api/v1/cameras/gate/recordings HTTP/1.1\r\n{vic}"),
        "",
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "[]"), "media node m1's answer");
    // Its status and error pass through, and so does a clip's 404.
    let (code, _, body) = request(
        app.addr,
        &format!("GET /api/v1/cameras/gate/clip.mp4?start=2026-01-01T00:00:00Z&end=2026-01-01T00:01:00Z HTTP/1.1\r\n{vic}\r\nRange: bytes=0-9"),
        "",
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("nothing is recorded"), "{body}");
    let (code, _, body) = request(
        app.addr,
        &format!("GET /vod/gate/index.m3u8?start=2026-01-01T00:00:00Z&end=2026-01-01T00:01:00Z HTTP/1.1\r\n{vic}"),
        "",
    )
    .await;
    assert_eq!(code, 404, "{body}");
    // No login, no forwarding: the application node refuses it itself.
    let (code, _, _) = request(app.addr, "GET /api/v1/cameras/gate/recordings HTTP/1.1", "").await;
    assert_eq!(code, 401);
    // The media node serves nothing but recordings over a channel.
    let other = Want::Http {
        method: "GET".into(),
        path: "/api/v1/site".into(),
        headers: Vec::new(),
    };
    let mut channel = app.app.nodes.open("m1", other).await.unwrap();
    let e = channel.receiver.recv().await.unwrap_err();
    assert!(e.to_string().contains("serves only GET"), "{e}");
    app.stop.cancel();
    media.stop.cancel();
}

#[tokio::test]
async fn a_remote_camera_of_an_offline_node_is_unavailable() {
    let app = server_of(SITE, "app").await;
    let (code, _, body) = request(
        app.addr,
        &format!(
            "GET /api/v1/cameras/gate/recordings HTTP/1.1\r\n{}",
            basic("vic", "vic-pw")
        ),
        "",
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("m1"), "{body}");
    app.stop.cancel();
}
