//! The media role: cameras in, live video out.
//!
//! - [`frame`]: the tracks and frames that flow through the node;
//! - [`hub`]: one source fanned out to many readers, with a GOP cache and bounded queues;
//! - [`ingest`]: cameras pulled over RTSP, reconnecting with backoff; [`nal`]: the NAL units of
//!   a frame, and which H.265 pictures start a GOP (open GOPs included);
//! - [`cameras`]: one supervised ingest task per camera of the plan;
//! - [`fmp4`]: fragmented MP4 for browsers (MSE) and HLS;
//! - [`recorder`]: continuous recording to segment files indexed in SQLite, recovery, clips.
//! - [`push`]: cameras that push over RTSP (ANNOUNCE, RECORD) into their hubs;
//! - [`rtmp`]: devices publish and viewers play over RTMP; [`sample_entry`]: MP4 sample entries
//!   for sources that bring their own decoder configuration.
//! - [`webrtc`]: WebRTC viewers (WHEP) on one UDP socket; [`turn`]: the TURN relay that can
//!   relay to nothing but that socket; [`stun`]: the STUN messages both read.

pub mod cameras;
pub mod fmp4;
pub mod frame;
pub mod hub;
pub mod ingest;
pub mod nal;
pub mod output;
pub mod push;
pub mod recorder;
pub mod rtmp;
pub mod sample_entry;
pub mod stun;
pub mod turn;
pub mod webrtc;
