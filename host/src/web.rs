//! The HTTP server's routes.
//!
//! Handlers live in submodules by concern; this file assembles the router and
//! the middleware every route shares (request metrics). The Prometheus HTTP
//! API lives in [`query`] (expression queries), [`series`] (series and
//! labels), [`metadata`], [`status`] and [`targets`]; [`api`] is its
//! envelope and error vocabulary, [`json`] its exact JSON encoding and
//! [`params`] its parameter parsing. Later issues add federation, remote
//! write and the UI here.

mod admin;
pub mod api;
#[cfg(test)]
mod api_tests;
mod cors;
mod federate;
pub mod json;
mod lifecycle;
mod metadata;
mod otlp;
pub mod params;
mod plugins;
pub mod query;
mod remote_read;
mod remote_write;
mod series;
mod status;
mod targets;
mod telemetry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use axum::Router;
use axum::routing::{get, post};
use ember_model::storage::Storage;
use ember_promql::engine::Engine;
use tokio::sync::mpsc;
use tower_http::compression::CompressionLayer;

use crate::cli::ServerFlags;
use crate::reload::ConfigManager;
use crate::scrape::ScrapeManager;
use crate::self_metrics::SelfMetrics;
pub use otlp::OtlpReceiver;
pub use query::QuerySlots;
pub use remote_read::ReadSlots;

/// Everything handlers share. Cloned per request, so every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ConfigManager>,
    pub metrics: SelfMetrics,
    pub lifecycle_enabled: bool,
    pub readiness: Readiness,
    /// Asks the server to shut down (`/-/quit`). The server's main loop owns
    /// the receiving end and runs the shutdown sequence.
    pub quit: mpsc::Sender<()>,
    /// The scrape pools, for the targets and metadata APIs.
    pub scrape: Arc<ScrapeManager>,
    /// The plugins, for `/api/v1/plugins`.
    pub plugins: Arc<crate::plugins::PluginManager>,
    /// The storage the query and series APIs read.
    pub storage: Arc<dyn Storage>,
    /// The local TSDB, for the admin API (`None` where the server runs on
    /// another storage, as in some tests).
    pub tsdb: Option<ember_tsdb::Db>,
    /// The PromQL engine.
    pub engine: Arc<Engine>,
    /// Bounds the API queries evaluating at once (`--query.max-concurrency`).
    pub query_slots: QuerySlots,
    /// The OTLP receiver's delta table and received metadata.
    pub otlp: OtlpReceiver,
    /// Bounds the remote reads served at once
    /// (`--storage.remote.read-concurrent-limit`).
    pub remote_read_slots: ReadSlots,
    /// The command line, for `/api/v1/status/flags`.
    pub flags: Arc<ServerFlags>,
    /// When the server started, for `/api/v1/status/runtimeinfo`.
    pub started: SystemTime,
}

// `AppState` holds `Arc<dyn Storage>`, which has no `Debug`; spell out the
// rest.
impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("lifecycle_enabled", &self.lifecycle_enabled)
            .field("readiness", &self.readiness)
            .field("engine", &self.engine)
            .field("query_slots", &self.query_slots)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// Whether the server is ready to answer queries, shared by the start-up
/// sequence (which sets it) and `/-/ready` (which reports it).
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Builds the router with every route and middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/-/healthy", get(lifecycle::healthy))
        .route("/-/ready", get(lifecycle::ready))
        .route(
            "/-/reload",
            post(lifecycle::reload)
                .put(lifecycle::reload)
                .get(lifecycle::only_post_or_put),
        )
        .route(
            "/-/quit",
            post(lifecycle::quit)
                .put(lifecycle::quit)
                .get(lifecycle::only_post_or_put),
        )
        .route("/metrics", get(telemetry::metrics))
        .route("/federate", get(federate::federate))
        .route("/api/v1/otlp/v1/metrics", post(otlp::write))
        .route("/api/v1/write", post(remote_write::write))
        .route("/api/v1/read", post(remote_read::read))
        .merge(api_v1(&state))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::track_requests,
        ))
        .with_state(state)
}

/// The Prometheus HTTP API. Answers are gzip- or deflate-compressed when
/// the client accepts it, as Prometheus's are (query results compress
/// tenfold, and Grafana always asks), and carry CORS headers for browser
/// clients (see [`cors`]).
fn api_v1(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", get(query::instant).post(query::instant))
        .route("/api/v1/query_range", get(query::range).post(query::range))
        .route(
            "/api/v1/query_exemplars",
            get(query::query_exemplars).post(query::query_exemplars),
        )
        .route(
            "/api/v1/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route(
            "/api/v1/parse_query",
            get(query::parse_query).post(query::parse_query),
        )
        .route("/api/v1/series", get(series::series).post(series::series))
        .route(
            "/api/v1/labels",
            get(series::label_names).post(series::label_names),
        )
        .route("/api/v1/label/{name}/values", get(series::label_values))
        .route("/api/v1/metadata", get(metadata::metric_metadata))
        .route("/api/v1/targets/metadata", get(metadata::target_metadata))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/buildinfo", get(status::build_info))
        .route("/api/v1/status/runtimeinfo", get(status::runtime_info))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/scrape_pools", get(targets::scrape_pools))
        .route("/api/v1/plugins", get(plugins::plugins))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .layer(CompressionLayer::new().gzip(true).deflate(true))
}
