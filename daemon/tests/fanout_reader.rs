//! The stream parsers of the fan-out benchmark's reader (`benches/fanout/`), tested here because
//! a bench without the test harness runs no tests of its own.

// What only the bench's main uses is unused here.
#![allow(dead_code)]

#[path = "../benches/fanout/flv.rs"]
mod flv;
#[path = "../benches/fanout/protocol.rs"]
mod protocol;
#[path = "../benches/fanout/rtmp.rs"]
mod rtmp;
#[path = "../benches/fanout/ws.rs"]
mod ws;
