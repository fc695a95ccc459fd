//! `sited discover`: find the ONVIF cameras of a LAN and print them as `[[cameras]]` entries.
//!
//! It probes (multicast, on an interface when `--interface` names one, and one by one over a
//! small `--network`), gathers the answers for `--window` seconds, asks each device what it
//! streams (with a WS-Security digest when `--user` and `--password-file` are given), and prints
//! ready-to-paste entries, or JSON. A device that gives no stream is printed with the reason.
//! Exit 0 whatever was found; 2 when the scan cannot start or a file cannot be read.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;

use crate::base::{Error, Kind, ResultExt as _};
use crate::onvif::{self, Credentials, probe};

/// Arguments of `sited discover`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also probe every address of this IPv4 network one by one (a /22 or smaller).
    #[arg(long, conflicts_with = "interface")]
    pub network: Option<ipnet::IpNet>,
    /// Send the multicast probe by this interface (default: the route to 239.255.255.250).
    #[arg(long)]
    pub interface: Option<String>,
    /// The ONVIF user to ask the devices as.
    #[arg(long, requires = "password_file")]
    pub user: Option<String>,
    /// A file holding that user's password (its first line).
    #[arg(long, requires = "user")]
    pub password_file: Option<PathBuf>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = Format::Toml)]
    pub format: Format,
    /// How long to gather answers, in seconds.
    #[arg(long, default_value_t = onvif::WINDOW.as_secs_f64())]
    pub window: f64,
}

/// Output formats of `sited discover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `[[cameras]]` entries to paste into site.toml.
    Toml,
    /// The devices, their names and entries, as JSON.
    Json,
}

/// The scan the arguments ask for.
fn scan(args: &Args) -> Result<probe::Scan, Error> {
    if !(0.1..=60.0).contains(&args.window) {
        return Err(crate::err!(Invalid, "--window is 0.1 to 60 seconds"));
    }
    let local = match &args.interface {
        Some(name) => probe::interface_address(name)
            .ok_or_else(|| crate::err!(NotFound, "interface {name} has no IPv4 address"))?,
        None => Ipv4Addr::UNSPECIFIED,
    };
    Ok(probe::Scan {
        local,
        multicast: true,
        unicast: args
            .network
            .map(probe::targets)
            .transpose()?
            .unwrap_or_default(),
        window: Duration::from_secs_f64(args.window),
    })
}

fn credentials(args: &Args) -> Result<Option<Credentials>, Error> {
    let (Some(user), Some(file)) = (&args.user, &args.password_file) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(file)
        .err_kind(Kind::Io, || format!("cannot read {}", file.display()))?;
    Ok(Some(Credentials {
        username: user.clone(),
        password: text.lines().next().unwrap_or("").to_string(),
    }))
}

/// The text printed for a report.
pub fn render(report: &onvif::Report, format: Format, username: Option<&str>) -> String {
    let found = onvif::render::found(&report.devices, &[], username);
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "devices": found,
                "datagrams": report.datagrams,
                "refused": report.refused,
                "truncated": report.truncated,
            });
            format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            )
        }
        Format::Toml => {
            let unusable = report
                .devices
                .iter()
                .filter(|d| d.problem.is_some())
                .count();
            let mut out = format!(
                "# sited discover: {} device(s), {unusable} without a usable stream; {} datagram(s), {} refused{}\n\n",
                report.devices.len(),
                report.datagrams,
                report.refused,
                if report.truncated {
                    "; more devices answered than are kept"
                } else {
                    ""
                }
            );
            for f in found {
                out.push_str(&f.toml);
                out.push('\n');
            }
            out
        }
    }
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let fail = |why: String| {
        eprintln!("sited: discover: {why}");
        ExitCode::from(super::FAILURE)
    };
    let (scan, credentials) = match (scan(args), credentials(args)) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => return fail(e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let report = match runtime.block_on(onvif::discover(&scan, credentials.as_ref())) {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot probe: {e}")),
    };
    if report.devices.is_empty() {
        eprintln!("sited: discover: no ONVIF device answered");
    }
    print!("{}", render(&report, args.format, args.user.as_deref()));
    ExitCode::SUCCESS
}
