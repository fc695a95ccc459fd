//! Live video out, on the layout's live ports (VALT 1935 / 444, Ti Top 8080).
//!
//! | URL | what |
//! |---|---|
//! | `ws(s)://HOST:PORT/live/<camera>` | fragmented MP4 over WebSocket, for browsers (MSE) |
//! | `http://HOST:PORT/live/<camera>.flv` | HTTP-FLV (usually served past the router: [`http_flv`]) |
//! | `http://HOST:PORT/live/<camera>/index.m3u8` | HLS, fMP4 segments |
//! | `rtsp://HOST:PORT/<camera>` | RTSP re-serve, RTP over TCP ([`rtsp`]) |
//! | `http://HOST:PORT/vod/<camera>/index.m3u8?start=&end=` | recorded video, HLS VOD |
//!
//! This layer holds the muxers and the servers that are not HTTP (RTSP, HTTP-FLV past hyper);
//! the HTTP routes of the live outputs are the web layer's (`web::live`). Viewers log in as the
//! site's users: HTTP Basic, a session cookie, or `?token=` from `POST /api/v1/tokens`, checked
//! through [`Live::viewer`].

pub mod flv;
pub mod hls;
pub mod http_flv;
pub mod rtsp;
pub mod rtsp_request;
pub mod writev;
pub mod ws;

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::{Auth, Credentials, Principal};
use crate::media::hub::Hubs;

/// What the live outputs share: the node's streams, and who may watch them.
pub struct Live {
    /// The live streams of the node.
    pub hubs: Arc<Hubs>,
    /// The HLS segmenters.
    pub hls: Arc<hls::Hls>,
    /// Sessions, tokens, the login throttle and the users of the site in force.
    pub auth: Arc<Auth>,
}

impl Live {
    /// The viewer that `credentials` name, if they are valid (any role may watch).
    pub fn viewer(&self, credentials: &Credentials, ip: IpAddr) -> Option<Principal> {
        self.auth
            .principal(&self.auth.users(), credentials, ip)
            .ok()
            .flatten()
    }
}
