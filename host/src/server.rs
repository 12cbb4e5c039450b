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
//! 5. the remote-write queues read the WAL to its end and send what they
//!    hold, for at most [`SHUTDOWN_FLUSH_DEADLINE`] (what is left is resent
//!    after the restart, from each queue's progress marker);
//! 6. the storage flushes and closes its WAL (TSDB issue);
//! 7. the data directory lock is released and the process exits 0.
//!
//! A second `SIGTERM`/`SIGINT` during shutdown exits at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use std::collections::HashMap;

use ember_config::Config;
use ember_model::storage::Storage;
use ember_tsdb::{Db, DbOptions};

use crate::cli::ServerFlags;
use crate::discovery::{DiscovererMetrics, DiscoveryManager, ManagerOptions};
use crate::plugins::PluginManager;
use crate::reload::{ConfigManager, ConfigSource};
use crate::remote_write::{RemoteWriteManager, SHUTDOWN_FLUSH_DEADLINE};
use crate::scrape::ScrapeManager;
use crate::self_metrics::SelfMetrics;
use crate::storage_dir::StorageDir;
use crate::version::BUILD_INFO;
use crate::web::{self, AppState, Readiness};

/// How long in-flight HTTP requests may take to finish during shutdown.
pub const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the server until it is told to stop, then shuts it down in order.
pub async fn run(flags: ServerFlags) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives during start-up (WAL replay can
    // take a while) is queued and handled by the main loop, instead of the
    // default action killing the process mid-replay.
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tracing::info!(
        version = BUILD_INFO.version,
        revision = BUILD_INFO.revision,
        build_date = BUILD_INFO.build_date,
        "Starting Ember"
    );

    let storage_dir = StorageDir::open(&flags.storage_path)?;
    tracing::info!(path = %storage_dir.path().display(), "Data directory opened and locked");

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

    // Opening the TSDB replays its WAL, which can take a while on a big
    // head; it is blocking work, so it runs off the async workers.
    let db_options = {
        let current = config.current();
        DbOptions {
            out_of_order_window_ms: current.storage.tsdb.out_of_order_time_window.as_millis()
                as i64,
            ..flags.tsdb_options(&current.storage.tsdb.retention)
        }
    };
    let db_dir = storage_dir.path().to_path_buf();
    let db = tokio::task::spawn_blocking(move || Db::open(&db_dir, db_options))
        .await
        .context("opening the TSDB")?
        .with_context(|| format!("opening the TSDB in {}", storage_dir.path().display()))?;
    tracing::info!(series = db.num_series(), "TSDB opened");
    metrics
        .registry()
        .register(Box::new(
            crate::tsdb_metrics::TsdbCollector::new(db.clone()).context("TSDB metrics")?,
        ))
        .context("registering TSDB metrics")?;
    let storage: Arc<dyn Storage> = Arc::new(db.clone());
    // Queries read the local TSDB and the `remote_read` endpoints; appends
    // go to the TSDB only.
    let query_storage: Arc<dyn Storage> = {
        let db = db.clone();
        crate::remote_read_client::FanoutStorage::start(storage.clone(), &config, move || {
            db.stats().lowest_timestamp.unwrap_or(i64::MAX)
        })
    };

    let registry = metrics.registry();
    let sd_metrics =
        DiscovererMetrics::register(registry).context("registering discovery metrics")?;
    let discovery = Arc::new(
        DiscoveryManager::new(
            "scrape",
            registry,
            sd_metrics.clone(),
            ManagerOptions::default(),
        )
        .context("starting service discovery")?,
    );
    let plugins = PluginManager::new(Some(&storage_dir.path().join("plugin-cache")), registry)
        .context("starting the plugin runtime")?;
    let scrape = Arc::new(
        ScrapeManager::new(storage.clone(), registry)
            .context("registering scrape metrics")?
            .with_plugins(plugins.clone()),
    );
    follow_tracing_config(&config);
    // Ends by itself when the scrape manager is dropped at exit.
    let _relabel_retries = scrape.spawn_relabel_retries();
    let followers = follow_config(
        config.clone(),
        plugins.clone(),
        discovery.clone(),
        scrape.clone(),
        sd_metrics,
    )
    .await;
    let remote_write = Arc::new(
        RemoteWriteManager::new(storage_dir.path(), registry, Some(plugins.clone()))
            .context("registering remote-write metrics")?,
    );
    let remote_write_follower = follow_remote_write(config.clone(), remote_write.clone()).await;

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
        scrape: scrape.clone(),
        plugins: plugins.clone(),
        storage: query_storage,
        tsdb: Some(db.clone()),
        engine: Arc::new(ember_promql::engine::Engine::new(flags.engine_options())),
        query_slots: web::QuerySlots::new(flags.query_max_concurrency),
        otlp: web::OtlpReceiver::default(),
        remote_read_slots: web::ReadSlots::new(flags.remote_read_concurrent_limit),
        flags: Arc::new(flags.clone()),
        started: std::time::SystemTime::now(),
    };

    let (stop_http_tx, stop_http_rx) = oneshot::channel::<()>();
    let mut http = tokio::spawn(async move {
        axum::serve(listener, web::router(state))
            .with_graceful_shutdown(async {
                let _ = stop_http_rx.await;
            })
            .await
    });
    // Ready before announcing the address: whoever learns it from the log
    // (a supervisor, a test) may ask /-/ready at once.
    readiness.set(true);
    metrics.ready.set(1);
    tracing::info!(address = %local_address, "Listening");
    tracing::info!("Server is ready to receive web requests.");

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

    shutdown(Shutdown {
        readiness,
        metrics,
        stop_http: stop_http_tx,
        http,
        discovery,
        scrape,
        followers,
        remote_write,
        remote_write_follower,
        db,
        storage_dir,
    })
    .await
}

/// Applies the `remote_write` section now and on every accepted reload.
async fn follow_remote_write(
    config: Arc<ConfigManager>,
    remote_write: Arc<RemoteWriteManager>,
) -> tokio::task::JoinHandle<()> {
    let mut config_rx = config.subscribe();
    let current = config_rx.borrow_and_update().clone();
    remote_write.apply_config(&current).await;
    tokio::spawn(async move {
        while config_rx.changed().await.is_ok() {
            let current = config_rx.borrow_and_update().clone();
            remote_write.apply_config(&current).await;
        }
    })
}

/// Applies the running configuration to plugins, discovery and scraping now
/// and on every accepted reload, and feeds discovered targets to the scrape
/// pools. Returns the two follower tasks.
async fn follow_config(
    config: Arc<ConfigManager>,
    plugins: Arc<PluginManager>,
    discovery: Arc<DiscoveryManager>,
    scrape: Arc<ScrapeManager>,
    sd_metrics: DiscovererMetrics,
) -> [tokio::task::JoinHandle<()>; 2] {
    let apply = move |config: Arc<Config>,
                      plugins: Arc<PluginManager>,
                      discovery: Arc<DiscoveryManager>,
                      scrape: Arc<ScrapeManager>,
                      sd_metrics: DiscovererMetrics| async move {
        // Plugins first, so that pools and discoverers find the plugins they
        // name loaded; then pools, so that targets arriving from discovery
        // find them.
        let changed_plugins = plugins.apply_config(&config).await;
        scrape.apply_config(&config).await;
        // Pools kept by the reload still hold targets relabeled by the old
        // versions of the plugins that changed.
        scrape.resync_plugin_users(&changed_plugins).await;
        let sets: HashMap<_, _> = config
            .scrape_configs
            .iter()
            .map(|job| {
                let providers = crate::discovery::plugin::providers(
                    &job.service_discovery,
                    &plugins,
                    &sd_metrics,
                );
                (job.job_name.clone(), providers)
            })
            .collect();
        discovery.apply_providers(sets);
    };
    let mut config_rx = config.subscribe();
    apply(
        config_rx.borrow_and_update().clone(),
        plugins.clone(),
        discovery.clone(),
        scrape.clone(),
        sd_metrics.clone(),
    )
    .await;
    let (d, s) = (discovery.clone(), scrape.clone());
    let config_follower = tokio::spawn(async move {
        while config_rx.changed().await.is_ok() {
            let current = config_rx.borrow_and_update().clone();
            apply(
                current,
                plugins.clone(),
                d.clone(),
                s.clone(),
                sd_metrics.clone(),
            )
            .await;
        }
    });
    let mut targets_rx = discovery.subscribe();
    let targets_follower = tokio::spawn(async move {
        while targets_rx.changed().await.is_ok() {
            let sets = targets_rx.borrow_and_update().clone();
            scrape.sync(&sets).await;
        }
    });
    [config_follower, targets_follower]
}

/// Applies the `tracing:` section now and on every accepted reload. The
/// exporter is built and swapped on the blocking pool (it has a blocking
/// HTTP client and flushes the old one).
fn follow_tracing_config(config: &Arc<ConfigManager>) {
    let Some(tracing) = crate::telemetry::SelfTracing::global() else {
        return;
    };
    let mut config_rx = config.subscribe();
    tokio::spawn(async move {
        loop {
            let section = config_rx.borrow_and_update().tracing.clone();
            let applied =
                tokio::task::spawn_blocking(move || tracing.apply(section.as_ref())).await;
            if let Ok(Err(error)) = applied {
                tracing::error!(%error, "Traces are not exported");
            }
            if config_rx.changed().await.is_err() {
                break;
            }
        }
    });
}

/// What the shutdown sequence stops, in order.
struct Shutdown {
    readiness: Readiness,
    metrics: SelfMetrics,
    stop_http: oneshot::Sender<()>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    discovery: Arc<DiscoveryManager>,
    scrape: Arc<ScrapeManager>,
    followers: [tokio::task::JoinHandle<()>; 2],
    remote_write: Arc<RemoteWriteManager>,
    remote_write_follower: tokio::task::JoinHandle<()>,
    db: Db,
    storage_dir: StorageDir,
}

/// Steps 1–7 of the documented shutdown order.
async fn shutdown(parts: Shutdown) -> anyhow::Result<()> {
    let Shutdown {
        readiness,
        metrics,
        stop_http,
        http,
        discovery,
        scrape,
        followers,
        remote_write,
        remote_write_follower,
        db,
        storage_dir,
    } = parts;
    readiness.set(false);
    metrics.ready.set(0);
    for follower in followers {
        follower.abort();
    }
    remote_write_follower.abort();
    discovery.shutdown();
    scrape.stop().await;
    tracing::info!("Scrape manager stopped");
    // Step 3 (rules) joins here when rule evaluation lands.
    let _ = stop_http.send(());
    match tokio::time::timeout(HTTP_DRAIN_TIMEOUT, http).await {
        Ok(Ok(Ok(()))) => tracing::info!("HTTP server stopped"),
        Ok(Ok(Err(error))) => tracing::error!(%error, "HTTP server stopped with an error"),
        Ok(Err(join_error)) => tracing::error!(%join_error, "HTTP server task failed"),
        Err(_) => {
            tracing::warn!(timeout = ?HTTP_DRAIN_TIMEOUT, "In-flight HTTP requests did not finish in time")
        }
    }
    remote_write.stop(SHUTDOWN_FLUSH_DEADLINE).await;
    tracing::info!("Remote-write queues stopped");
    match tokio::task::spawn_blocking(move || db.close()).await {
        Ok(Ok(())) => tracing::info!("TSDB closed"),
        Ok(Err(error)) => tracing::error!(%error, "Closing the TSDB failed"),
        Err(join_error) => tracing::error!(%join_error, "Closing the TSDB panicked"),
    }
    // Spans still batched are sent before the process ends.
    if let Some(tracing) = crate::telemetry::SelfTracing::global() {
        let _ = tokio::task::spawn_blocking(|| tracing.shutdown()).await;
    }
    drop(storage_dir);
    tracing::info!("See you next time!");
    Ok(())
}
