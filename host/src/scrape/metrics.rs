//! The scrape subsystem's own metrics (`ember_target_*`), named after
//! Prometheus's `prometheus_target_*`.

use prometheus::{IntCounter, IntGaugeVec, Opts, Registry};

use super::ingest::IngestStats;

/// Counters shared by every scrape loop.
#[derive(Debug, Clone)]
pub struct ScrapeMetrics {
    pub out_of_order: IntCounter,
    pub duplicate_timestamp: IntCounter,
    pub out_of_bounds: IntCounter,
    pub exceeded_sample_limit: IntCounter,
    pub pool_targets: IntGaugeVec,
}

impl ScrapeMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let pool_targets = IntGaugeVec::new(
            Opts::new(
                "ember_target_scrape_pool_targets",
                "Current number of targets in this scrape pool.",
            ),
            &["scrape_job"],
        )?;
        registry.register(Box::new(pool_targets.clone()))?;
        Ok(Self {
            out_of_order: counter(
                "ember_target_scrapes_sample_out_of_order_total",
                "Total number of samples rejected due to not being out of the expected order.",
            )?,
            duplicate_timestamp: counter(
                "ember_target_scrapes_sample_duplicate_timestamp_total",
                "Total number of samples rejected due to duplicate timestamps but different values.",
            )?,
            out_of_bounds: counter(
                "ember_target_scrapes_sample_out_of_bounds_total",
                "Total number of samples rejected due to timestamp falling outside of the time bounds.",
            )?,
            exceeded_sample_limit: counter(
                "ember_target_scrapes_exceeded_sample_limit_total",
                "Total number of scrapes that hit the sample limit and were rejected.",
            )?,
            pool_targets,
        })
    }

    /// A registry-less instance for tests.
    pub fn unregistered() -> Self {
        Self::new(&Registry::new())
            .unwrap_or_else(|_| unreachable!("a fresh registry has no conflicts"))
    }

    pub(crate) fn record(&self, stats: &IngestStats) {
        self.out_of_order.inc_by(stats.out_of_order);
        self.duplicate_timestamp.inc_by(stats.duplicate);
        self.out_of_bounds.inc_by(stats.out_of_bounds);
    }
}
