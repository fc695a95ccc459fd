//! Diagnostics: every problem of a site file, with where it is, what it is and what to do.
//!
//! A [`Diagnostic`] points into the file by byte span; [`Source`] turns spans into
//! `line:col` and renders the three output formats of `sited validate`: `human` (like rustc:
//! location, snippet, `help:`), `json`, and `github` workflow commands.

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is invalid: nothing is applied.
    Error,
    /// The file is valid but probably not what was meant; fails `--strict`.
    Warning,
}

/// The kind of a problem. Each has a fixture in `tests/fixtures/invalid/<code>.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// The file is not valid TOML.
    Syntax,
    /// A key that site.toml does not have.
    UnknownKey,
    /// A value of the wrong type.
    WrongType,
    /// A required key is absent.
    MissingKey,
    /// A value outside its list (layout, ssl, licence, role, …).
    UnknownValue,
    /// A number outside its range.
    OutOfRange,
    /// A name that cannot be used in URLs and firewall comments.
    BadName,
    /// A CIDR that does not parse.
    BadCidr,
    /// A node address that is not an IP address.
    BadAddress,
    /// A camera URL that is not `rtsp://` or `rtsps://`.
    CameraScheme,
    /// A camera URL with a user name or password in it.
    CameraCredentials,
    /// A camera that pushes is incomplete, has a `url`, or its layout has no push port.
    CameraPush,
    /// Two nodes with one name.
    DuplicateNode,
    /// Two cameras with one name.
    DuplicateCamera,
    /// Two nodes with one address.
    DuplicateAddress,
    /// Not exactly one node with the application role.
    ApplicationCount,
    /// A node without roles.
    NoRoles,
    /// A camera on a node that does not exist.
    UnknownNode,
    /// A camera on a node without the media role, or no media node at all.
    NotMedia,
    /// A `[ports]` key that is not a service of the layout.
    UnknownService,
    /// Two services on one port and protocol of one node.
    PortConflict,
    /// `[tls]` with only one of its paths.
    TlsIncomplete,
    /// A file the appliance reads at run time is missing (`--on-node`).
    MissingFile,
    /// Two users with one name.
    DuplicateUser,
    /// A mobile device named like another device or a camera.
    DuplicateDevice,
    /// A `password_hash` that is not an argon2 PHC string.
    BadPasswordHash,
    /// A zone that an enabled feature needs is empty.
    EmptyZone,
    /// A camera outside the `cameras` zone, which `egress = "documented"` would block.
    CameraOutsideZone,
    /// A node with more cameras than one server is documented to serve.
    NodeCapacity,
    /// A setting the layout has no use for.
    Unused,
    /// A `site.cors_origins` entry that is not an origin.
    BadOrigin,
}

impl Code {
    /// Every code.
    pub const ALL: [Code; 31] = [
        Code::Syntax,
        Code::UnknownKey,
        Code::WrongType,
        Code::MissingKey,
        Code::UnknownValue,
        Code::OutOfRange,
        Code::BadName,
        Code::BadCidr,
        Code::BadAddress,
        Code::CameraScheme,
        Code::CameraCredentials,
        Code::CameraPush,
        Code::DuplicateNode,
        Code::DuplicateCamera,
        Code::DuplicateAddress,
        Code::ApplicationCount,
        Code::NoRoles,
        Code::UnknownNode,
        Code::NotMedia,
        Code::UnknownService,
        Code::PortConflict,
        Code::TlsIncomplete,
        Code::MissingFile,
        Code::DuplicateUser,
        Code::DuplicateDevice,
        Code::BadPasswordHash,
        Code::EmptyZone,
        Code::CameraOutsideZone,
        Code::NodeCapacity,
        Code::Unused,
        Code::BadOrigin,
    ];

    /// The code as printed in `error[CODE]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "syntax",
            Code::UnknownKey => "unknown-key",
            Code::WrongType => "wrong-type",
            Code::MissingKey => "missing-key",
            Code::UnknownValue => "unknown-value",
            Code::OutOfRange => "out-of-range",
            Code::BadName => "bad-name",
            Code::BadCidr => "bad-cidr",
            Code::BadAddress => "bad-address",
            Code::CameraScheme => "camera-scheme",
            Code::CameraCredentials => "camera-credentials",
            Code::CameraPush => "camera-push",
            Code::DuplicateNode => "duplicate-node",
            Code::DuplicateCamera => "duplicate-camera",
            Code::DuplicateAddress => "duplicate-address",
            Code::ApplicationCount => "application-count",
            Code::NoRoles => "no-roles",
            Code::UnknownNode => "unknown-node",
            Code::NotMedia => "not-media",
            Code::UnknownService => "unknown-service",
            Code::PortConflict => "port-conflict",
            Code::TlsIncomplete => "tls-incomplete",
            Code::MissingFile => "missing-file",
            Code::DuplicateUser => "duplicate-user",
            Code::DuplicateDevice => "duplicate-device",
            Code::BadPasswordHash => "bad-password-hash",
            Code::EmptyZone => "empty-zone",
            Code::CameraOutsideZone => "camera-outside-zone",
            Code::NodeCapacity => "node-capacity",
            Code::Unused => "unused",
            Code::BadOrigin => "bad-origin",
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem in a site file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The kind of problem.
    pub code: Code,
    /// One plain sentence.
    pub message: String,
    /// Where it is, in bytes of the file; `None` for the file as a whole.
    pub span: Option<Range<usize>>,
    /// What to do about it.
    pub help: Option<String>,
    /// Other places that take part, each with a short label ("first named here").
    pub related: Vec<(Range<usize>, String)>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(code: Code, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            help: None,
            related: Vec::new(),
        }
    }

    /// A warning at `span`.
    pub fn warning(code: Code, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// Adds the `help:` line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a related place.
    pub fn related(mut self, span: Option<Range<usize>>, label: impl Into<String>) -> Self {
        if let Some(span) = span {
            self.related.push((span, label.into()));
        }
        self
    }
}

/// A position for people: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// A site file's text, for turning spans into positions and snippets.
pub struct Source<'a> {
    /// The path as the user gave it.
    pub path: &'a str,
    /// The text.
    pub text: &'a str,
    line_starts: Vec<usize>,
}

/// One diagnostic in `--format json`.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    /// The path as given.
    pub file: &'a str,
    /// 1-based first line.
    pub line: usize,
    /// 1-based first column.
    pub column: usize,
    /// 1-based last line.
    pub end_line: usize,
    /// 1-based column just past the end.
    pub end_column: usize,
    /// `error` or `warning`.
    pub severity: Severity,
    /// The code.
    pub code: Code,
    /// The sentence.
    pub message: &'a str,
    /// The hint, if any.
    pub help: Option<&'a str>,
}

impl<'a> Source<'a> {
    /// Indexes the lines of `text`.
    pub fn new(path: &'a str, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path,
            text,
            line_starts,
        }
    }

    /// The line and column of a byte offset.
    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Position {
            line: line + 1,
            column,
        }
    }

    fn line_text(&self, line: usize) -> &'a str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    fn range(&self, d: &Diagnostic) -> (Position, Position) {
        match &d.span {
            Some(span) => (
                self.position(span.start),
                self.position(span.end.max(span.start)),
            ),
            None => (
                Position { line: 1, column: 1 },
                Position { line: 1, column: 1 },
            ),
        }
    }

    /// The JSON form of a diagnostic.
    pub fn json<'d>(&'d self, d: &'d Diagnostic) -> JsonDiagnostic<'d> {
        let (start, end) = self.range(d);
        JsonDiagnostic {
            file: self.path,
            line: start.line,
            column: start.column,
            end_line: end.line,
            end_column: end.column,
            severity: d.severity,
            code: d.code,
            message: &d.message,
            help: d.help.as_deref(),
        }
    }

    /// A GitHub workflow command.
    pub fn github(&self, d: &Diagnostic) -> String {
        let (start, end) = self.range(d);
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        format!(
            "::{level} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            escape_property(self.path),
            start.line,
            start.column,
            end.line,
            end.column,
            d.code.as_str(),
            escape_data(&message)
        )
    }

    /// The human form: `file:line:col: error[CODE]: message`, the snippet, then `help:`.
    pub fn human(&self, d: &Diagnostic) -> String {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let (start, _) = self.range(d);
        let mut out = format!(
            "{}:{}:{}: {level}[{}]: {}\n",
            self.path,
            start.line,
            start.column,
            d.code.as_str(),
            d.message
        );
        let mut places: Vec<(Range<usize>, &str)> = Vec::new();
        if let Some(span) = &d.span {
            places.push((span.clone(), ""));
        }
        places.extend(d.related.iter().map(|(s, l)| (s.clone(), l.as_str())));
        let width = places
            .iter()
            .map(|(s, _)| self.position(s.start).line.to_string().len())
            .max()
            .unwrap_or(1);
        for (span, label) in &places {
            self.snippet(&mut out, span, label, width);
        }
        if let Some(help) = &d.help {
            let _ = writeln!(out, "{:width$} = help: {help}", "");
        }
        out
    }

    fn snippet(&self, out: &mut String, span: &Range<usize>, label: &str, width: usize) {
        let start = self.position(span.start);
        let end = self.position(span.end.max(span.start));
        // Shown lines are logged: secrets are masked (config::redact).
        let text = super::redact::line(self.line_text(start.line));
        let underline_end = if end.line == start.line {
            end.column.max(start.column + 1)
        } else {
            text.chars().count() + 1
        };
        let marks = "^".repeat(underline_end - start.column);
        let _ = writeln!(out, "{:width$} |", "");
        let _ = writeln!(out, "{:>width$} | {text}", start.line);
        let pad = " ".repeat(start.column - 1);
        let label = if label.is_empty() {
            String::new()
        } else {
            format!(" {label}")
        };
        let _ = writeln!(out, "{:width$} | {pad}{marks}{label}", "");
    }
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// "did you mean …?" for the closest of `candidates`, if one is close enough.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Joins names as `"a", "b", "c"`.
pub fn quoted_list<'c>(items: impl IntoIterator<Item = &'c str>) -> String {
    items
        .into_iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let src = Source::new("s.toml", "a = 1\nné = \"x\"\n");
        assert_eq!(src.position(0), Position { line: 1, column: 1 });
        assert_eq!(src.position(6), Position { line: 2, column: 1 });
        // "né = " is 6 bytes and 5 characters.
        assert_eq!(src.position(12), Position { line: 2, column: 6 });
    }

    #[test]
    fn human_shows_snippet_and_help() {
        let text = "[site]\nlayout = \"vlat\"\n";
        let src = Source::new("s.toml", text);
        let d = Diagnostic::error(Code::UnknownValue, Some(16..22), "unknown layout \"vlat\"")
            .help("did you mean \"valt\"?");
        assert_eq!(
            src.human(&d),
            "s.toml:2:10: error[unknown-value]: unknown layout \"vlat\"\n  |\n2 | layout = \"vlat\"\n  |          ^^^^^^\n  = help: did you mean \"valt\"?\n"
        );
    }

    #[test]
    fn github_escapes_newlines() {
        let src = Source::new("a,b.toml", "x = 1\n");
        let d = Diagnostic::warning(Code::Unused, Some(0..1), "50% done").help("line\nbreak");
        assert_eq!(
            src.github(&d),
            "::warning file=a%2Cb.toml,line=1,col=1,endLine=1,endColumn=2,title=unused::50%25 done%0Ahelp: line%0Abreak"
        );
    }

    #[test]
    fn suggestions_need_to_be_close() {
        assert_eq!(
            did_you_mean("vlat", ["valt", "titop", "novavms"]),
            Some("valt")
        );
        assert_eq!(did_you_mean("zzzzzz", ["valt", "titop"]), None);
    }
}
