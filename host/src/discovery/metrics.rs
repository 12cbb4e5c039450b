//! Discovery's self-metrics, named as Prometheus names them with `ember_`
//! for `prometheus_`.
//!
//! Two kinds, registered separately because their lifetimes differ, as in
//! Prometheus: [`DiscovererMetrics`] belong to the mechanisms and are shared by
//! every manager (the scrape manager and the Alertmanager one), so they are
//! registered once per registry; [`ManagerMetrics`] carry a constant `name`
//! label with the manager's name, so each manager registers its own.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The metrics of the discovery mechanisms. Cheap to clone; every handle is
/// internally synchronised.
#[derive(Debug, Clone)]
pub struct DiscovererMetrics {
    /// `ember_sd_file_read_errors_total`: files that could not be read or decoded.
    pub file_read_errors: IntCounter,
    /// `ember_sd_file_mtime_seconds{filename}`: modification time of each
    /// file as of its last successful read.
    pub file_mtime_seconds: GaugeVec,
    /// `ember_sd_file_watcher_errors_total`: file watchers that could not be created.
    pub file_watcher_errors: IntCounter,
    /// `ember_sd_http_failures_total`: HTTP discovery refreshes that failed.
    pub http_failures: IntCounter,
    /// `ember_sd_refresh_failures_total{mechanism}`: failed refreshes of the
    /// polling mechanisms (`http`).
    pub refresh_failures: IntCounterVec,
    /// `ember_sd_refresh_duration_histogram_seconds{mechanism}`: how long
    /// refreshes of the polling mechanisms take, failed ones included.
    pub refresh_duration: HistogramVec,
}

impl DiscovererMetrics {
    /// Creates the mechanism metrics and registers them in `registry`. Call
    /// once per registry and hand clones to every [`super::DiscoveryManager`].
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let file_read_errors = IntCounter::new(
            "ember_sd_file_read_errors_total",
            "The number of File-SD read errors.",
        )?;
        registry.register(Box::new(file_read_errors.clone()))?;
        let file_mtime_seconds = GaugeVec::new(
            Opts::new(
                "ember_sd_file_mtime_seconds",
                "Timestamp (mtime) of files read by FileSD. Timestamp is set at read time.",
            ),
            &["filename"],
        )?;
        registry.register(Box::new(file_mtime_seconds.clone()))?;
        let http_failures = IntCounter::new(
            "ember_sd_http_failures_total",
            "Number of HTTP service discovery refresh failures.",
        )?;
        registry.register(Box::new(http_failures.clone()))?;
        let file_watcher_errors = IntCounter::new(
            "ember_sd_file_watcher_errors_total",
            "The number of File-SD errors caused by filesystem watch failures.",
        )?;
        registry.register(Box::new(file_watcher_errors.clone()))?;
        let refresh_failures = IntCounterVec::new(
            Opts::new(
                "ember_sd_refresh_failures_total",
                "Number of refresh failures for the given SD mechanism.",
            ),
            &["mechanism"],
        )?;
        registry.register(Box::new(refresh_failures.clone()))?;
        let refresh_duration = HistogramVec::new(
            HistogramOpts::new(
                "ember_sd_refresh_duration_histogram_seconds",
                "The duration of a SD refresh cycle as a histogram.",
            ),
            &["mechanism"],
        )?;
        registry.register(Box::new(refresh_duration.clone()))?;
        Ok(Self {
            file_read_errors,
            file_mtime_seconds,
            file_watcher_errors,
            http_failures,
            refresh_failures,
            refresh_duration,
        })
    }
}

/// The metrics of one [`super::DiscoveryManager`].
#[derive(Debug, Clone)]
pub(crate) struct ManagerMetrics {
    /// `ember_sd_discovered_targets{config}`: targets per set in the last publication.
    pub discovered_targets: IntGaugeVec,
    /// `ember_sd_received_updates_total`: updates received from discoverers.
    pub received_updates: IntCounter,
    /// `ember_sd_updates_total`: publications to the consumer.
    pub updates: IntCounter,
    /// `ember_sd_failed_configs`: configurations whose discoverer could not be built.
    pub failed_configs: IntGauge,
}

impl ManagerMetrics {
    pub(crate) fn register(registry: &Registry, name: &str) -> Result<Self, prometheus::Error> {
        let opts = |metric: &str, help: &str| Opts::new(metric, help).const_label("name", name);
        let discovered_targets = IntGaugeVec::new(
            opts(
                "ember_sd_discovered_targets",
                "Current number of discovered targets.",
            ),
            &["config"],
        )?;
        let received_updates = IntCounter::with_opts(opts(
            "ember_sd_received_updates_total",
            "Total number of update events received from the SD providers.",
        ))?;
        let updates = IntCounter::with_opts(opts(
            "ember_sd_updates_total",
            "Total number of update events sent to the SD consumers.",
        ))?;
        let failed_configs = IntGauge::with_opts(opts(
            "ember_sd_failed_configs",
            "Current number of service discovery configurations that failed to load.",
        ))?;
        registry.register(Box::new(discovered_targets.clone()))?;
        registry.register(Box::new(received_updates.clone()))?;
        registry.register(Box::new(updates.clone()))?;
        registry.register(Box::new(failed_configs.clone()))?;
        Ok(Self {
            discovered_targets,
            received_updates,
            updates,
            failed_configs,
        })
    }
}
