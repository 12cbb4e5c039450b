//! Logging through `tracing`, in logfmt (the default, as Prometheus) or JSON.
//!
//! Logs go to standard error. `--log.level` sets the floor for everything;
//! `EMBER_LOG` (an `EnvFilter` directive such as `ember_tsdb=debug`) can
//! refine it per module when debugging.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{LogFormat, LogLevel};

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(level: LogLevel, format: LogFormat) {
    let floor = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = match std::env::var("EMBER_LOG") {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(format!("{floor},{directives}"))
                .unwrap_or_else(|_| EnvFilter::new(floor))
        }
        _ => EnvFilter::new(floor),
    };
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (as in tests that start several servers in one process)
    // keeps the first subscriber; that is harmless, so the error is ignored.
    let _ = match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .with_span_path(false)
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}
