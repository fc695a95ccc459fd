//! Logging: structured `tracing` events to the journal under systemd, to stderr otherwise.
//!
//! Under systemd (`JOURNAL_STREAM` is set) each event goes to the journal through
//! `systemd-journal-logger`, with its fields as journal fields (`camera = %name` becomes
//! `CAMERA=…`). Otherwise events are printed to stderr. A panic is logged before the process
//! dies.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.pairs
                .push((field.name().to_uppercase(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.pairs
                .push((field.name().to_uppercase(), value.to_string()));
        }
    }
}

/// A layer that hands each event to the journal, fields and all.
struct Journal(systemd_journal_logger::JournalLog);

impl<S: Subscriber> Layer<S> for Journal {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::ERROR => log::Level::Error,
            Level::WARN => log::Level::Warn,
            Level::INFO => log::Level::Info,
            Level::DEBUG => log::Level::Debug,
            Level::TRACE => log::Level::Trace,
        };
        let kvs: Vec<(&str, &str)> = fields
            .pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let message = &fields.message;
        log::Log::log(
            &self.0,
            &log::Record::builder()
                .level(level)
                .target(event.metadata().target())
                .args(format_args!("{message}"))
                .key_values(&kvs)
                .build(),
        );
    }
}

/// Installs logging and the panic hook. `verbose` lowers the level to debug.
pub fn init(verbose: bool) {
    let level = if verbose { Level::DEBUG } else { Level::INFO };
    let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
    let journal = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| systemd_journal_logger::JournalLog::new().ok())
        .map(|j| j.with_syslog_identifier("sited".to_string()));
    match journal {
        Some(j) => {
            let _ = tracing_subscriber::registry()
                .with(Journal(j).with_filter(filter))
                .try_init();
        }
        None => {
            use std::io::IsTerminal as _;
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::stderr().is_terminal());
            let _ = tracing_subscriber::registry()
                .with(fmt.with_filter(filter))
                .try_init();
        }
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(location = %location, "sited panicked: {payload}");
        eprintln!("sited panicked at {location}: {payload}");
    }));
}
