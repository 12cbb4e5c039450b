//! The HTTP server's routes.
//!
//! Handlers live in submodules by concern; this file assembles the router and
//! the middleware every route shares (request metrics). Later issues add the
//! query API (`/api/v1/...`), federation, remote write and the UI here.

pub mod api;
mod lifecycle;
mod status;
mod targets;
mod telemetry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::mpsc;

use crate::reload::ConfigManager;
use crate::scrape::ScrapeManager;
use crate::self_metrics::SelfMetrics;

/// Everything handlers share. Cloned per request, so every field is a handle.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<ConfigManager>,
    pub metrics: SelfMetrics,
    pub lifecycle_enabled: bool,
    pub readiness: Readiness,
    /// Asks the server to shut down (`/-/quit`). The server's main loop owns
    /// the receiving end and runs the shutdown sequence.
    pub quit: mpsc::Sender<()>,
    /// The scrape pools, for the targets API.
    pub scrape: Arc<ScrapeManager>,
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
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/scrape_pools", get(targets::scrape_pools))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::track_requests,
        ))
        .with_state(state)
}
