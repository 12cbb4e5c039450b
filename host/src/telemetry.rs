//! Ember's own traces, exported over OTLP when the `tracing:` section of the
//! configuration is set (as Prometheus's `tracing` section).
//!
//! Spans are ordinary `tracing` spans with the target [`TRACE_TARGET`]; the
//! logging subscriber ([`crate::logging`]) carries a reloadable
//! `tracing-opentelemetry` layer that turns them into OpenTelemetry spans,
//! and [`SelfTracing::apply`] installs a new exporter (or none) whenever the
//! configuration changes, reload included. The spans (names and attributes
//! are documented in `docs/operations.md`):
//!
//! - `<METHOD> <route>` (e.g. `GET /api/v1/query`): every HTTP request, kind
//!   server, with `http.request.method`, `http.route` and
//!   `http.response.status_code`;
//! - `promql.query`: one PromQL evaluation of the query API, with
//!   `promql.query`, `promql.kind` (`instant` or `range`), `promql.time` or
//!   `promql.start`/`promql.end`/`promql.step` (ms) and
//!   `promql.samples_loaded`;
//! - `scrape`: one scrape of one target, with `scrape.job` and
//!   `scrape.target`, and its children `scrape.fetch` (the HTTP fetch) and
//!   `scrape.ingest` (parse, relabel, append).
//!
//! Export is OTLP/HTTP with protobuf (`client_type: http`) to
//! `http(s)://<endpoint>/v1/traces` (`insecure` picks `http`), with the
//! section's headers, timeout, gzip compression and TLS settings, through a
//! batch span processor on its own thread. `client_type: grpc` is not
//! supported (it would bring tonic's transport into the build); such a
//! configuration is logged as an error and exports nothing. The sampler is
//! parent-based with `sampling_fraction` for root spans, as Prometheus's.
//! The resource says `service.name` = `ember` and `service.version`.
//!
//! ```no_run
//! # fn demo(config: &ember_config::Config) {
//! // Installed once by logging::init; applied on start-up and every reload.
//! if let Some(tracing) = ember_host::telemetry::SelfTracing::global() {
//!     if let Err(error) = tracing.apply(config.tracing.as_ref()) {
//!         eprintln!("{error}");
//!     }
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use ember_config::{TracingClientType, TracingConfig};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing_subscriber::Registry;
use tracing_subscriber::reload;

use crate::version::BUILD_INFO;

/// The `tracing` target of spans meant for export (and not for the log).
pub const TRACE_TARGET: &str = "ember_trace";

/// The OpenTelemetry layer as the subscriber holds it.
pub type OtelLayer = tracing_opentelemetry::OpenTelemetryLayer<Registry, SdkTracer>;

/// Why the tracing configuration could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `client_type: grpc`.
    #[error(
        "tracing: client_type grpc is not supported by Ember; use client_type: http (OTLP/HTTP, port 4318 on the OpenTelemetry Collector)"
    )]
    GrpcUnsupported,
    /// The TLS settings are unusable.
    #[error("tracing: TLS settings: {0}")]
    Tls(#[from] crate::http_client::HttpClientError),
    /// The HTTP client could not be built.
    #[error("tracing: building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The exporter could not be built.
    #[error("tracing: building the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The subscriber is gone.
    #[error("tracing: swapping the exporter: {0}")]
    Reload(#[from] reload::Error),
}

/// The exporter in force and the switch for the layer.
pub struct SelfTracing {
    handle: reload::Handle<Option<OtelLayer>, Registry>,
    current: Mutex<Current>,
}

// The layer has no `Debug`; show what is configured.
impl std::fmt::Debug for SelfTracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.lock().ok();
        f.debug_struct("SelfTracing")
            .field("config", &current.as_ref().map(|c| c.config.clone()))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Current {
    config: Option<TracingConfig>,
    provider: Option<SdkTracerProvider>,
}

/// Whether spans of [`TRACE_TARGET`] are wanted at all: read by the layer's
/// filter on every span, so that with no `tracing:` section they cost one
/// atomic load.
static ENABLED: AtomicBool = AtomicBool::new(false);
static GLOBAL: OnceLock<SelfTracing> = OnceLock::new();

/// Whether export is on (the filter of the OpenTelemetry layer).
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

impl SelfTracing {
    /// Registers the layer's reload handle; called by `logging::init`.
    pub(crate) fn install(handle: reload::Handle<Option<OtelLayer>, Registry>) {
        let _ = GLOBAL.set(SelfTracing {
            handle,
            current: Mutex::new(Current::default()),
        });
    }

    /// The process's instance, when logging was initialised.
    pub fn global() -> Option<&'static SelfTracing> {
        GLOBAL.get()
    }

    /// Exports with `config` from now on (`None`: stop exporting), flushing
    /// and shutting down the previous exporter. Does nothing when the
    /// configuration did not change. Blocking (it builds a blocking HTTP
    /// client and flushes): call it off the async workers. On error, export
    /// is off.
    pub fn apply(&self, config: Option<&TracingConfig>) -> Result<(), TelemetryError> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.config.as_ref() == config && (config.is_none() || current.provider.is_some()) {
            return Ok(());
        }
        let built = config.map(build_provider).transpose();
        let (provider, result) = match built {
            Ok(provider) => (provider, Ok(())),
            Err(error) => (None, Err(error)),
        };
        let layer = provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("ember"))
                .with_tracked_inactivity(false)
        });
        ENABLED.store(layer.is_some(), Ordering::Relaxed);
        self.handle.reload(layer)?;
        if let Some(old) = std::mem::replace(&mut current.provider, provider) {
            // Flushes what the old exporter still holds.
            let _ = old.shutdown();
        }
        current.config = config.cloned();
        if let Some(config) = config.filter(|_| result.is_ok()) {
            tracing::info!(endpoint = %config.endpoint, sampling_fraction = config.sampling_fraction, "Exporting traces over OTLP/HTTP");
        }
        result
    }

    /// Flushes and stops export (shutdown).
    pub fn shutdown(&self) {
        let _ = self.apply(None);
    }
}

fn build_provider(config: &TracingConfig) -> Result<SdkTracerProvider, TelemetryError> {
    if config.client_type == TracingClientType::Grpc {
        return Err(TelemetryError::GrpcUnsupported);
    }
    let scheme = if config.insecure { "http" } else { "https" };
    let endpoint = format!("{scheme}://{}/v1/traces", config.endpoint);
    let tls = crate::http_client::tls_client_config(&config.tls, false)?;
    let client = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(config.timeout)
        .user_agent(concat!("Ember/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(endpoint)
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(config.timeout)
        .with_headers(
            config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    if config.gzip_compression {
        exporter = exporter.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    let exporter = exporter.build()?;
    let resource = Resource::builder_empty()
        .with_service_name("ember")
        .with_attribute(KeyValue::new("service.version", BUILD_INFO.version))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sampling_fraction,
        ))))
        .with_resource(resource)
        .build())
}
