//! `sited hash-password`: reads a password on stdin and prints its argon2id PHC string, for
//! `password_hash` in `[[users]]`. The password is never echoed or logged.

use std::io::Read as _;
use std::process::ExitCode;

/// Runs the command.
pub fn run() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("sited: cannot read the password from stdin: {e}");
        return ExitCode::from(super::FAILURE);
    }
    let password = input
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&input);
    if password.is_empty() {
        eprintln!(
            "sited: the password is empty; type it on stdin, e.g. `sited hash-password <<< 'secret'`"
        );
        return ExitCode::from(super::INVALID);
    }
    match crate::auth::hash_password(password) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sited: {e}");
            ExitCode::from(super::FAILURE)
        }
    }
}
