//! `sited schema`: the JSON Schema of site.toml, for editors (taplo, Even Better TOML) and CI.

use std::process::ExitCode;

/// Prints the schema.
pub fn run() -> ExitCode {
    match serde_json::to_string_pretty(&crate::config::schema()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sited: {e}");
            ExitCode::from(super::FAILURE)
        }
    }
}
