//! The firewall: the node's nftables ruleset, rendered purely, applied thinly.
//!
//! - [`ruleset`] builds the table as data from the node's flows;
//! - [`text`] and [`json`] render it as nft text and libnftables JSON;
//! - [`apply`] is the only part with side effects: check, replace in one transaction, read back,
//!   verify, and restore the previous table on any failure. It drives `nft` through the
//!   [`apply::Driver`] trait, so tests and `--dry-run` can swap it.
//!
//! sited owns exactly one table, `inet sited`, and never touches any other.

pub mod apply;
pub mod json;
pub mod ruleset;
pub mod text;

pub use ruleset::{Ruleset, build};
