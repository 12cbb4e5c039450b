//! Start-up, the main loop, and shutdown.
//!
//! Start-up order: open and lock the data directory, load the configuration
//! (a bad one stops start-up with the reason), register the server's metrics,
//! bind the listener, serve HTTP, then mark the server ready.
//!
//! The main loop waits for one of: `SIGHUP` (reload the configuration;
//! failure keeps the old one), `SIGTERM`/`SIGINT` or `POST /-/quit` (shut
//! down).
//!
//! Shutdown order, chosen so that nothing is written after the storage is
//! closed and no accepted request is cut off:
//! 1. `/-/ready` turns to 503, so load balancers stop sending queries;
//! 2. discovery and scraping stop, so no new samples arrive (scrape issue);
//! 3. rule evaluation stops and pending alerts are sent (rules issue);
//! 4. the HTTP server stops accepting connections and finishes the requests
//!    in flight, for at most [`HTTP_DRAIN_TIMEOUT`];
//! 5. the storage flushes and closes its WAL (TSDB issue);
//! 6. the data directory lock is released and the process exits 0.
//!
//! A second `SIGTERM`/`SIGINT` during shutdown exits at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use crate::cli::ServerFlags;
use crate::reload::{ConfigManager, ConfigSource};
use crate::self_metrics::SelfMetrics;
use crate::storage_dir::StorageDir;
use crate::version::BUILD_INFO;
use crate::web::{self, AppState, Readiness};

/// How long in-flight HTTP requests may take to finish during shutdown.
pub const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the server until it is told to stop, then shuts it down in order.
pub async fn run(flags: ServerFlags) -> anyhow::Result<()> {
    tracing::info!(
        version = BUILD_INFO.version,
        revision = BUILD_INFO.revision,
        build_date = BUILD_INFO.build_date,
        "Starting Ember"
    );

    let storage = StorageDir::open(&flags.storage_path)?;
    tracing::info!(path = %storage.path().display(), "Data directory opened and locked");

    let metrics = SelfMetrics::new(&BUILD_INFO).context("registering the server's own metrics")?;
    let source = ConfigSource::from_flag(flags.config_file.as_deref());
    if source == ConfigSource::Embedded {
        tracing::info!(
            "No --config.file given and no ./prometheus.yml; using the embedded default configuration"
        );
    }
    let config = Arc::new(
        ConfigManager::load_initial(source.clone(), metrics.clone())
            .with_context(|| format!("loading configuration from {source}"))?,
    );
    tracing::info!(source = %source, "Completed loading of configuration file");

    let listener = TcpListener::bind(flags.listen_address)
        .await
        .with_context(|| format!("listening on {}", flags.listen_address))?;
    let local_address = listener.local_addr().context("reading the bound address")?;

    let readiness = Readiness::default();
    let (quit_tx, mut quit_rx) = mpsc::channel(1);
    let state = AppState {
        config: config.clone(),
        metrics: metrics.clone(),
        lifecycle_enabled: flags.enable_lifecycle,
        readiness: readiness.clone(),
        quit: quit_tx,
    };

    let (stop_http_tx, stop_http_rx) = oneshot::channel::<()>();
    let mut http = tokio::spawn(async move {
        axum::serve(listener, web::router(state))
            .with_graceful_shutdown(async {
                let _ = stop_http_rx.await;
            })
            .await
    });
    tracing::info!(address = %local_address, "Listening");

    readiness.set(true);
    metrics.ready.set(1);
    tracing::info!("Server is ready to receive web requests.");

    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("Received SIGHUP, reloading configuration");
                // The outcome is logged and exported by the manager itself.
                let _ = config.reload().await;
            }
            _ = terminate.recv() => {
                tracing::warn!("Received SIGTERM, exiting gracefully...");
                break;
            }
            _ = interrupt.recv() => {
                tracing::warn!("Received SIGINT, exiting gracefully...");
                break;
            }
            _ = quit_rx.recv() => {
                tracing::warn!("Received termination request via web service, exiting gracefully...");
                break;
            }
            result = &mut http => {
                // The HTTP server only ends by itself on an error.
                anyhow::bail!("the HTTP server stopped unexpectedly: {result:?}");
            }
        }
    }

    // A second signal while draining means the operator wants out now.
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::warn!("Received a second termination signal, exiting immediately");
        std::process::exit(1);
    });

    shutdown(readiness, metrics, stop_http_tx, http, storage).await
}

/// Steps 1–6 of the documented shutdown order.
async fn shutdown(
    readiness: Readiness,
    metrics: SelfMetrics,
    stop_http: oneshot::Sender<()>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    storage: StorageDir,
) -> anyhow::Result<()> {
    readiness.set(false);
    metrics.ready.set(0);
    // Steps 2 and 3 (discovery, scraping, rules) join here as those land.
    let _ = stop_http.send(());
    match tokio::time::timeout(HTTP_DRAIN_TIMEOUT, http).await {
        Ok(Ok(Ok(()))) => tracing::info!("HTTP server stopped"),
        Ok(Ok(Err(error))) => tracing::error!(%error, "HTTP server stopped with an error"),
        Ok(Err(join_error)) => tracing::error!(%join_error, "HTTP server task failed"),
        Err(_) => {
            tracing::warn!(timeout = ?HTTP_DRAIN_TIMEOUT, "In-flight HTTP requests did not finish in time")
        }
    }
    // Step 5 (closing the TSDB) joins here with the TSDB issue.
    drop(storage);
    tracing::info!("See you next time!");
    Ok(())
}
