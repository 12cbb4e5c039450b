//! The TSDB's metrics in the server's registry: Prometheus's
//! `prometheus_tsdb_*` families named `ember_tsdb_*`, read from
//! [`Db::stats`] whenever `/metrics` is scraped.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGauge, Opts};

use ember_tsdb::{Db, DbStats};

type GaugeFn = fn(&DbStats) -> i64;
type CounterFn = fn(&DbStats) -> u64;

/// Collects the TSDB's figures at scrape time.
pub struct TsdbCollector {
    db: Db,
    gauges: Vec<(IntGauge, GaugeFn)>,
    counters: Vec<(IntCounter, CounterFn)>,
    descs: Vec<Desc>,
}

impl std::fmt::Debug for TsdbCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsdbCollector").finish_non_exhaustive()
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl TsdbCollector {
    /// The collector of `db`'s metrics.
    ///
    /// # Errors
    /// Invalid metric names (a bug).
    pub fn new(db: Db) -> Result<Self, prometheus::Error> {
        let gauge_specs: [(&str, &str, GaugeFn); 9] = [
            (
                "ember_tsdb_blocks_loaded",
                "Number of currently loaded data blocks.",
                |s| clamp(s.blocks),
            ),
            (
                "ember_tsdb_storage_blocks_bytes",
                "The number of bytes that are currently used for local storage by all blocks.",
                |s| clamp(s.blocks_bytes),
            ),
            (
                "ember_tsdb_wal_storage_size_bytes",
                "Size of the write log directory.",
                |s| clamp(s.wal_bytes),
            ),
            (
                "ember_tsdb_head_chunks_storage_size_bytes",
                "Size of the chunks_head directory.",
                |s| clamp(s.head_chunks_bytes),
            ),
            (
                "ember_tsdb_head_series",
                "Total number of series in the head block.",
                |s| clamp(s.head_series),
            ),
            (
                "ember_tsdb_head_min_time",
                "Minimum time bound of the head block.",
                |s| s.head_min_time.unwrap_or(0),
            ),
            (
                "ember_tsdb_head_max_time",
                "Maximum timestamp of the head block.",
                |s| s.head_max_time.unwrap_or(0),
            ),
            (
                "ember_tsdb_lowest_timestamp",
                "Lowest timestamp value stored in the database.",
                |s| s.lowest_timestamp.unwrap_or(0),
            ),
            (
                "ember_tsdb_head_min_time_seconds",
                "Minimum time bound of the head block, in seconds.",
                |s| s.head_min_time.unwrap_or(0) / 1000,
            ),
        ];
        let counter_specs: [(&str, &str, CounterFn); 7] = [
            (
                "ember_tsdb_compactions_total",
                "Total number of compactions that were executed for the partition.",
                |s| s.compactions_total,
            ),
            (
                "ember_tsdb_compactions_failed_total",
                "Total number of compactions that failed for the partition.",
                |s| s.compactions_failed_total,
            ),
            (
                "ember_tsdb_head_truncations_total",
                "Total number of head truncations attempted.",
                |s| s.head_truncations_total,
            ),
            (
                "ember_tsdb_head_truncations_failed_total",
                "Total number of head truncations that failed or were postponed.",
                |s| s.head_truncations_failed_total,
            ),
            (
                "ember_tsdb_checkpoint_creations_total",
                "Total number of checkpoint creations attempted.",
                |s| s.checkpoints_total,
            ),
            (
                "ember_tsdb_time_retentions_total",
                "The number of times that blocks were deleted because the maximum time limit was exceeded.",
                |s| s.time_retentions_total,
            ),
            (
                "ember_tsdb_size_retentions_total",
                "The number of times that blocks were deleted because the maximum number of bytes was exceeded.",
                |s| s.size_retentions_total,
            ),
        ];
        let mut descs = Vec::new();
        let mut gauges = Vec::new();
        for (name, help, f) in gauge_specs {
            let g = IntGauge::with_opts(Opts::new(name, help))?;
            descs.extend(g.desc().into_iter().cloned());
            gauges.push((g, f));
        }
        let mut counters = Vec::new();
        for (name, help, f) in counter_specs {
            let c = IntCounter::with_opts(Opts::new(name, help))?;
            descs.extend(c.desc().into_iter().cloned());
            counters.push((c, f));
        }
        Ok(Self {
            db,
            gauges,
            counters,
            descs,
        })
    }
}

impl Collector for TsdbCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.db.stats();
        let mut out = Vec::with_capacity(self.gauges.len() + self.counters.len());
        for (g, f) in &self.gauges {
            g.set(f(&stats));
            out.extend(g.collect());
        }
        for (c, f) in &self.counters {
            // Counters only move forwards: add what happened since the
            // last scrape.
            let now = f(&stats);
            let before = c.get();
            if now > before {
                c.inc_by(now - before);
            }
            out.extend(c.collect());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), ember_tsdb::DbOptions::default()).expect("open");
        let mut app = ember_model::storage::Appendable::appender(&db);
        let up = ember_model::labels::Labels::new([("__name__", "up")]).expect("labels");
        app.append(None, &up, 1_000, 1.0).expect("append");
        app.commit().expect("commit");
        let collector = TsdbCollector::new(db.clone()).expect("collector");
        let registry = prometheus::Registry::new();
        registry.register(Box::new(collector)).expect("register");
        let families = registry.gather();
        let find = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .get_metric()[0]
                .clone()
        };
        assert_eq!(
            find("ember_tsdb_blocks_loaded").get_gauge().get_value(),
            0.0
        );
        assert_eq!(
            find("ember_tsdb_compactions_total")
                .get_counter()
                .get_value(),
            0.0
        );
        assert!(
            find("ember_tsdb_wal_storage_size_bytes")
                .get_gauge()
                .get_value()
                > 0.0
        );
        assert_eq!(find("ember_tsdb_head_series").get_gauge().get_value(), 1.0);
        assert_eq!(
            find("ember_tsdb_head_max_time").get_gauge().get_value(),
            1_000.0
        );
        db.close().expect("close");
    }
}
