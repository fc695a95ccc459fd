//! Planning: what one node of a site should look like, as plain data.
//!
//! [`plan`] is a pure function of `(Site, node name)`: no I/O, no clock. Its [`Plan`] holds the
//! node's flows, its listeners, the cameras it ingests and its firewall ruleset; the apply layer
//! makes the system match it, and reconcile diffs two plans.

pub mod flow;
pub mod listener;

pub use flow::{Direction, Flow, Peers, flows};
pub use listener::{Bind, Listener, listeners};
