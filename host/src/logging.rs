//! Logging through `tracing`, in logfmt (the default, as Prometheus) or JSON,
//! and the hook for exporting Ember's own traces.
//!
//! Logs go to standard error. `--log.level` sets the floor for everything;
//! `EMBER_LOG` (an `EnvFilter` directive such as `ember_tsdb=debug`) can
//! refine it per module when debugging.
//!
//! The subscriber has a second, reloadable layer that exports spans of the
//! target [`crate::telemetry::TRACE_TARGET`] over OpenTelemetry once a
//! `tracing:` section is applied ([`crate::telemetry::SelfTracing`]). Each
//! layer has its own filter: the log filter never lets those spans into the
//! log output, and the export layer sees nothing else, so logs are the same
//! with or without tracing.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::dynamic_filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{LogFormat, LogLevel};
use crate::telemetry::{self, OtelLayer, SelfTracing, TRACE_TARGET};

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(level: LogLevel, format: LogFormat) {
    let floor = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    // Spans meant for export stay out of the log, whatever EMBER_LOG says.
    let filter = match std::env::var("EMBER_LOG") {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(format!("{floor},{directives},{TRACE_TARGET}=off"))
                .unwrap_or_else(|_| EnvFilter::new(format!("{floor},{TRACE_TARGET}=off")))
        }
        _ => EnvFilter::new(format!("{floor},{TRACE_TARGET}=off")),
    };
    let (export, handle) = reload::Layer::new(None::<OtelLayer>);
    let export = export.with_filter(dynamic_filter_fn(|metadata, _| {
        telemetry::enabled() && metadata.target() == TRACE_TARGET
    }));
    let registry = tracing_subscriber::registry().with(export);
    // A second init (as in tests that start several servers in one process)
    // keeps the first subscriber; that is harmless, so the error is ignored.
    let installed = match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .with_span_path(false)
                    .layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    if installed.is_ok() {
        SelfTracing::install(handle);
    }
}
