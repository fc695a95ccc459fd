//! The one error type of sited: a [`Kind`] that callers branch on, a message for people, and an
//! optional source chain.
//!
//! Errors are made in one line with [`bail!`](crate::bail) or [`err!`](crate::err), as
//! Moonfire's `base::Error` is. The kind survives every layer: the API answers with
//! [`Kind::http_status`] and shows [`Kind::name`], and the metrics count failures by kind, so
//! "nft rejected the ruleset" stays distinguishable from "the firewall restore failed" all the
//! way up.

use std::fmt;

/// What went wrong, in the words callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The input is malformed or breaks a rule: a site file, a request, a protocol message.
    Invalid,
    /// What was asked for does not exist.
    NotFound,
    /// No valid credentials were given.
    Unauthenticated,
    /// The credentials are valid, but not for this.
    PermissionDenied,
    /// The request conflicts with the current state (a stale version, a second publisher).
    Conflict,
    /// A limit was reached: connections, sessions, buffered bytes.
    ResourceExhausted,
    /// A peer or the system did not answer in time.
    DeadlineExceeded,
    /// A peer (camera, node, client) went away or is unreachable; trying again may work.
    Unavailable,
    /// A file or socket operation failed.
    Io,
    /// nft rejected the ruleset (`nft -c`); nothing was changed.
    FirewallRejected,
    /// nft could not be run, or its transaction failed; nothing was changed.
    FirewallFailed,
    /// The live table did not match the plan; the previous table was restored.
    FirewallMismatch,
    /// The live table did not match the plan, and restoring the previous table failed too.
    FirewallRestoreFailed,
    /// A bug: something sited itself should have prevented.
    Internal,
}

impl Kind {
    /// The kind's stable name, as the API, the history and the metrics show it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::NotFound => "not-found",
            Kind::Unauthenticated => "unauthenticated",
            Kind::PermissionDenied => "permission-denied",
            Kind::Conflict => "conflict",
            Kind::ResourceExhausted => "resource-exhausted",
            Kind::DeadlineExceeded => "deadline-exceeded",
            Kind::Unavailable => "unavailable",
            Kind::Io => "io",
            Kind::FirewallRejected => "firewall-rejected",
            Kind::FirewallFailed => "firewall-failed",
            Kind::FirewallMismatch => "firewall-mismatch",
            Kind::FirewallRestoreFailed => "firewall-restore-failed",
            Kind::Internal => "internal",
        }
    }

    /// Every kind, in order: what the metrics enumerate.
    pub const ALL: [Kind; 14] = [
        Kind::Invalid,
        Kind::NotFound,
        Kind::Unauthenticated,
        Kind::PermissionDenied,
        Kind::Conflict,
        Kind::ResourceExhausted,
        Kind::DeadlineExceeded,
        Kind::Unavailable,
        Kind::Io,
        Kind::FirewallRejected,
        Kind::FirewallFailed,
        Kind::FirewallMismatch,
        Kind::FirewallRestoreFailed,
        Kind::Internal,
    ];

    /// The HTTP status an API answer of this kind carries.
    pub fn http_status(self) -> u16 {
        match self {
            Kind::Invalid => 400,
            Kind::NotFound => 404,
            Kind::Unauthenticated => 401,
            Kind::PermissionDenied => 403,
            Kind::Conflict => 409,
            Kind::ResourceExhausted => 429,
            Kind::DeadlineExceeded => 504,
            Kind::Unavailable => 503,
            _ => 500,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error: a kind, a sentence, and what caused it.
pub struct Error {
    kind: Kind,
    msg: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The result of anything fallible in sited.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` saying `msg`.
    pub fn new(kind: Kind, msg: impl Into<String>) -> Error {
        Error {
            kind,
            msg: msg.into(),
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its own sentence, without the causes.
    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// The same error with `context` put in front of its sentence: `"{context}: {msg}"`.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.msg = if self.msg.is_empty() {
            context.to_string()
        } else {
            format!("{context}: {}", self.msg)
        };
        self
    }
}

impl fmt::Display for Error {
    /// The sentence, then each cause after a colon.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        let mut next = self.source.as_deref().map(|s| s as &dyn std::error::Error);
        let mut first = self.msg.is_empty();
        while let Some(cause) = next {
            if first {
                write!(f, "{cause}")?;
                first = false;
            } else {
                write!(f, ": {cause}")?;
            }
            next = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self, self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => Kind::NotFound,
            std::io::ErrorKind::PermissionDenied => Kind::PermissionDenied,
            std::io::ErrorKind::TimedOut => Kind::DeadlineExceeded,
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => Kind::Invalid,
            _ => Kind::Io,
        };
        Error::new(kind, String::new()).with_source(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::new(Kind::Io, "the state database").with_source(e)
    }
}

/// Adds a sentence and a kind to a foreign error: `read(path).err_kind(Kind::Io, || …)?`.
pub trait ResultExt<T> {
    /// Wraps the error as the source of a new one of `kind`, saying `msg()`.
    fn err_kind<M: Into<String>>(self, kind: Kind, msg: impl FnOnce() -> M) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for std::result::Result<T, E> {
    fn err_kind<M: Into<String>>(self, kind: Kind, msg: impl FnOnce() -> M) -> Result<T> {
        self.map_err(|e| Error::new(kind, msg()).with_source(e))
    }
}

/// Makes an [`Error`]: `err!(Kind, "format {}", args)`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($fmt:tt)+) => {
        $crate::base::error::Error::new($crate::base::error::Kind::$kind, format!($($fmt)+))
    };
}

/// Returns an [`Error`] from the enclosing function: `bail!(Kind, "format {}", args)`.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($fmt:tt)+) => {
        return Err($crate::err!($kind, $($fmt)+).into())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(n: u32) -> Result<()> {
        if n > 1 {
            crate::bail!(Conflict, "version {n} is stale");
        }
        Ok(())
    }

    #[test]
    fn bail_keeps_kind_and_sentence() {
        let e = fails(3).unwrap_err();
        assert_eq!(e.kind(), Kind::Conflict);
        assert_eq!(e.to_string(), "version 3 is stale");
        assert_eq!(e.kind().http_status(), 409);
    }

    #[test]
    fn display_walks_the_source_chain_and_context_prefixes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Error::from(io).context("cannot read /etc/sited/site.toml");
        assert_eq!(e.kind(), Kind::NotFound);
        assert_eq!(
            e.to_string(),
            "cannot read /etc/sited/site.toml: no such file"
        );
        let r: std::result::Result<(), std::fmt::Error> = Err(std::fmt::Error);
        let e = r.err_kind(Kind::Internal, || "render").unwrap_err();
        assert_eq!(
            e.to_string(),
            "render: an error occurred when formatting an argument"
        );
    }

    #[test]
    fn kinds_have_distinct_names() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
