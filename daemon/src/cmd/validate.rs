//! `sited validate FILE...`: every problem of every file, for people, for scripts and for CI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::config::{Options, Severity, Source};

/// Arguments of `sited validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How to print the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Also check the files the appliance reads at run time (password files, TLS files).
    #[arg(long)]
    pub on_node: bool,
}

/// Output formats of `sited validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `file:line:col: error[CODE]: message`, the snippet and `help:`.
    Human,
    /// An array of `{file, line, column, end_line, end_column, severity, code, message, help}`.
    Json,
    /// GitHub Actions workflow commands.
    Github,
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let options = Options {
        on_node: args.on_node,
    };
    let mut io_failed = false;
    let mut invalid = false;
    let mut json = Vec::new();
    for path in &args.files {
        let Ok(text) = super::read(path) else {
            io_failed = true;
            continue;
        };
        let shown = path.display().to_string();
        let checked = crate::plan::check(&text, options);
        let source = Source::new(&shown, &text);
        invalid |= checked.has_errors() || (args.strict && checked.has_warnings());
        match args.format {
            Format::Human => {
                for d in &checked.diagnostics {
                    eprintln!("{}", source.human(d));
                }
                let count = |s| {
                    checked
                        .diagnostics
                        .iter()
                        .filter(|d| d.severity == s)
                        .count()
                };
                let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
                if errors + warnings == 0 {
                    eprintln!("{shown}: ok");
                } else {
                    eprintln!("{shown}: {errors} error(s), {warnings} warning(s)");
                }
            }
            Format::Json => {
                json.extend(
                    checked
                        .diagnostics
                        .iter()
                        .map(|d| serde_json::to_value(source.json(d)).unwrap_or_default()),
                );
            }
            Format::Github => {
                for d in &checked.diagnostics {
                    println!("{}", source.github(d));
                }
            }
        }
    }
    if args.format == Format::Json {
        println!("{}", serde_json::Value::Array(json));
    }
    if io_failed {
        ExitCode::from(super::FAILURE)
    } else if invalid {
        ExitCode::from(super::INVALID)
    } else {
        ExitCode::SUCCESS
    }
}
