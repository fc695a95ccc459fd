//! The site's cameras as one node shows them: on the application node every camera of the
//! site, each with the node that ingests it and its live state (the node's own report, or
//! offline with the time the node was last seen); on any other node, the cameras it ingests.
//! The API (`GET /api/v1/cameras`) and the Cameras and Live pages all read this one list.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::registry::Linked;
use super::relay::RelayState;
use crate::catalog::Roles;
use crate::config::{Camera, Site};
use crate::media::ingest::CameraStatus;

/// A camera's live state, wherever it is ingested.
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    /// As the ingesting node reports it (or this node, for its own).
    Reported(CameraStatus),
    /// The ingesting node is linked but has not reported this camera yet.
    Unknown,
    /// The ingesting node is offline.
    Offline {
        /// When it was last heard from, RFC 3339.
        last_seen: Option<String>,
    },
}

/// One camera of the site, as this node shows it.
#[derive(Debug, Clone)]
pub struct SiteCamera {
    /// The camera as the site file has it (with the node that ingests it).
    pub camera: Camera,
    /// Its live state.
    pub live: Live,
    /// Its relay to this node, when another node ingests it.
    pub relay: Option<RelayState>,
}

/// What the list is made from.
pub struct Sources<'a> {
    /// The site in force.
    pub site: &'a Site,
    /// This node's name.
    pub me: &'a str,
    /// The state of the cameras this node ingests.
    pub local: &'a BTreeMap<String, CameraStatus>,
    /// The media nodes linked to this one.
    pub linked: &'a BTreeMap<String, Linked>,
    /// The relays of this node.
    pub relays: &'a BTreeMap<String, RelayState>,
}

/// The cameras this node shows, in file order.
pub fn cameras(s: &Sources<'_>) -> Vec<SiteCamera> {
    let application = s
        .site
        .node(s.me)
        .is_some_and(|n| n.roles.meets(Roles::APPLICATION));
    s.site
        .cameras
        .iter()
        .filter(|c| application || c.node == s.me)
        .map(|c| {
            let live = if c.node == s.me {
                s.local
                    .get(&c.name)
                    .cloned()
                    .map_or(Live::Unknown, Live::Reported)
            } else {
                match s.linked.get(&c.node) {
                    Some(n) if n.online => n
                        .cameras
                        .get(&c.name)
                        .cloned()
                        .map_or(Live::Unknown, Live::Reported),
                    n => Live::Offline {
                        last_seen: n.and_then(|n| n.last_seen.clone()),
                    },
                }
            };
            SiteCamera {
                camera: c.clone(),
                live,
                relay: s.relays.get(&c.name).cloned(),
            }
        })
        .collect()
}

impl SiteCamera {
    /// The camera as `GET /api/v1/cameras` shows it: its settings, `node`, its live state
    /// (`state` is `offline`, with `last_seen`, when its node is), and its relay.
    pub fn json(&self) -> Value {
        let c = &self.camera;
        let mut v = json!({
            "name": c.name,
            "url": c.url,
            "push": c.push,
            "node": c.node,
            "record": c.record,
            "transport": format!("{:?}", c.transport).to_lowercase(),
        });
        let state = match &self.live {
            Live::Reported(s) => serde_json::to_value(s).unwrap_or_default(),
            Live::Unknown => json!({"state": "connecting"}),
            Live::Offline { last_seen } => json!({"state": "offline", "last_seen": last_seen}),
        };
        if let (Some(o), Some(extra)) = (v.as_object_mut(), state.as_object()) {
            o.extend(extra.clone());
        }
        if let Some(r) = &self.relay {
            v["relay"] = serde_json::to_value(r).unwrap_or_default();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ingest::CameraState;

    fn status(state: CameraState) -> CameraStatus {
        CameraStatus {
            state,
            error: None,
            fps: 25.0,
            bitrate: 1_000_000,
            last_frame: None,
            video: Some("h264 1280x720".into()),
            audio: None,
            failures: 0,
            warning: None,
        }
    }

    #[test]
    fn the_application_node_shows_every_camera_with_its_node_and_state() {
        let text = r#"
[site]
name = "campus"
layout = "titop"
[[nodes]]
name = "app"
address = "192.0.2.1"
roles = ["application", "media"]
[[nodes]]
name = "m1"
address = "192.0.2.2"
roles = ["media"]
[[nodes]]
name = "m2"
address = "192.0.2.3"
roles = ["media"]
[[cameras]]
name = "lobby"
url = "rtsp://198.51.100.1/"
node = "app"
[[cameras]]
name = "gate"
url = "rtsp://198.51.100.2/"
node = "m1"
[[cameras]]
name = "yard"
url = "rtsp://198.51.100.3/"
node = "m2"
[[cameras]]
name = "dock"
url = "rtsp://198.51.100.4/"
node = "m1"
"#;
        let site = crate::plan::check(text, Default::default()).site.unwrap();
        let local = BTreeMap::from([("lobby".into(), status(CameraState::Streaming))]);
        let m1 = Linked {
            online: true,
            cameras: BTreeMap::from([("gate".into(), status(CameraState::Failed))]),
            ..Linked::default()
        };
        let m2 = Linked {
            online: false,
            last_seen: Some("2026-01-01T00:00:00Z".into()),
            ..Linked::default()
        };
        let linked = BTreeMap::from([("m1".into(), m1), ("m2".into(), m2)]);
        let relays = BTreeMap::from([(
            "gate".into(),
            RelayState {
                node: "m1".into(),
                ..RelayState::default()
            },
        )]);
        let sources = Sources {
            site: &site,
            me: "app",
            local: &local,
            linked: &linked,
            relays: &relays,
        };
        let list: Vec<Value> = cameras(&sources).iter().map(SiteCamera::json).collect();
        let brief: Vec<(&str, &str, &str)> = list
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap(),
                    c["node"].as_str().unwrap(),
                    c["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            brief,
            [
                ("lobby", "app", "streaming"),
                ("gate", "m1", "failed"),
                ("yard", "m2", "offline"),
                ("dock", "m1", "connecting"),
            ]
        );
        assert_eq!(list[2]["last_seen"], "2026-01-01T00:00:00Z");
        assert_eq!(list[1]["relay"]["node"], "m1");
        assert_eq!(list[1]["video"], "h264 1280x720");
        // A media node shows only what it ingests.
        let on_m1 = Sources {
            me: "m1",
            ..sources
        };
        let names: Vec<String> = cameras(&on_m1).into_iter().map(|c| c.camera.name).collect();
        assert_eq!(names, ["gate", "dock"]);
    }
}
