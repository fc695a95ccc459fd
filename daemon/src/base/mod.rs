//! The bottom layer: what every other layer may use, and which uses none of them.
//!
//! - [`error`]: the one error type, with a kind that survives up to the API and the metrics;
//! - [`backoff`]: the delays of supervised tasks;
//! - [`random`], [`hex`], [`time`]: random bytes, hex and the time formats sited writes;
//! - [`fs`]: atomic file writes; [`markup`]: escaping into HTML and XML;
//! - [`admission`]: who may hold a connection open before a login, and the descriptor reserve;
//! - [`listen`]: the one accept loop of every TCP listener, and the connections shutdown waits
//!   for;
//! - [`tls`]: TLS as a carrier only, for the node link and ONVIF devices;
//! - [`skip`]: how a test that cannot run says so.

pub mod admission;
pub mod backoff;
pub mod error;
pub mod fs;
pub mod hex;
pub mod listen;
pub mod markup;
pub mod random;
pub mod skip;
pub mod time;
pub mod tls;

pub use error::{Error, Kind, Result, ResultExt};
