//! The firewall's apply layer: the node's nftables ruleset is planned and rendered purely in
//! [`crate::plan::ruleset`]; this layer only applies it.
//!
//! - [`apply`] is the only part with side effects: check, replace in one transaction, read back,
//!   verify, and restore the previous table on any failure. It drives `nft` through the
//!   [`apply::Driver`] trait, so tests and `--dry-run` can swap it.
//!
//! sited owns exactly one table, `inet sited`, and never touches any other.

pub mod apply;
