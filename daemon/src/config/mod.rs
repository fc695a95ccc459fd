//! The site file: from `site.toml` text to a checked [`Site`], or to every problem in it.
//!
//! Three steps, each with its own type:
//! 1. **parse** ([`toml::de::DeTable`]): TOML syntax, with a span on every key and value;
//! 2. **shape** ([`shape`], then serde into [`file::SiteFile`]): unknown keys, wrong types,
//!    missing keys, unknown values, all at once, each with "did you mean";
//! 3. **validate** ([`validate`]): meaning, into a [`Site`].
//!
//! Invalid input never panics and never yields a partial site: [`check`] returns a site only when
//! no error was found.

pub mod camera;
pub mod diagnostic;
pub mod file;
pub mod locate;
pub mod node_files;
pub mod redact;
pub mod shape;
pub mod site;
pub mod validate;

use serde::Deserialize;
use toml::de::DeTable;

pub use diagnostic::{Code, Diagnostic, Severity, Source};
pub use site::{Camera, Node, Site};
pub use validate::Options;

/// The outcome of checking a file.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The site, when there was no error.
    pub site: Option<Site>,
    /// Every problem found, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Whether any warning was found.
    pub fn has_warnings(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Warning)
    }
}

/// The JSON Schema of site.toml, derived from [`file::SiteFile`].
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(file::SiteFile)).unwrap_or_default()
}

/// A check of a valid site that only a higher layer can make (the planner's port conflicts),
/// added to validation by [`check`]'s caller; its errors make the file invalid.
pub type Rule = fn(&Site, &locate::Locator<'_, '_>) -> Vec<Diagnostic>;

/// Checks a site file's text, with `rules` added to validation. Callers outside this layer use
/// `plan::check`, which adds the planner's rules.
pub fn check(text: &str, options: Options, rules: &[Rule]) -> Checked {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let diagnostics = syntax
            .iter()
            .map(|e| {
                Diagnostic::error(Code::Syntax, e.span(), e.message().trim_end().to_string())
                    .help("fix the TOML syntax; see https://toml.io")
            })
            .collect();
        return Checked {
            site: None,
            diagnostics,
        };
    }
    // The schema is derived once per process, not per file.
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let mut diagnostics = shape::check(&doc, SCHEMA.get_or_init(schema));
    if !diagnostics.is_empty() {
        return Checked {
            site: None,
            diagnostics: sorted(diagnostics),
        };
    }
    let file = match file::SiteFile::deserialize(toml::de::Deserializer::from(doc.clone())) {
        Ok(file) => file,
        Err(e) => {
            let d = Diagnostic::error(
                Code::WrongType,
                e.span(),
                e.message().trim_end().to_string(),
            )
            .help("see `sited schema` for the shape of site.toml");
            return Checked {
                site: None,
                diagnostics: vec![d],
            };
        }
    };
    let (site, found) = validate::validate(file, &locate::Locator::new(&doc), options, rules);
    diagnostics.extend(found);
    Checked {
        site,
        diagnostics: sorted(diagnostics),
    }
}

/// Orders diagnostics by place in the file, keeping the order of those at one place.
fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    diagnostics
}
