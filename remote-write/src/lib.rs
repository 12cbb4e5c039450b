//! Ember's remote-write sender: one [`Queue`] per `remote_write` endpoint
//! tails the TSDB's write-ahead log and ships its samples to a
//! [`Destination`] (an HTTP receiver, or a remote-storage plugin).
//!
//! The design is Prometheus's: a WAL watcher per queue reads the newest
//! checkpoint for series, then the segments, and follows the one being
//! written, keeping a series-reference → labels cache with external labels
//! and `write_relabel_configs` applied; shards batch samples
//! (`max_samples_per_send`, `batch_send_deadline`, `capacity`), retry with
//! exponential backoff and scale between `min_shards` and `max_shards` with
//! the throughput. Unlike Prometheus, a queue keeps a progress marker in
//! the data directory, so after a restart it resends what was not
//! acknowledged (within the WAL's retention) instead of starting from now.
//!
//! Principal types: [`Queue`] and its [`QueueSettings`]; the
//! [`Destination`] contract with [`SendOutcome`]; [`Batch`] with its 1.0 and
//! 2.0 encodings ([`Protocol`]); [`SenderMetrics`]; [`ProgressFile`].
//!
//! ```no_run
//! # async fn example(destination: std::sync::Arc<dyn ember_remote_write::Destination>) {
//! use ember_remote_write::{ProgressFile, Queue, QueueMetrics, QueueSettings};
//! use std::path::Path;
//! use std::time::Duration;
//!
//! let data = Path::new("data");
//! let settings = QueueSettings::new(
//!     "backup".into(),
//!     "http://127.0.0.1:9090/api/v1/write".into(),
//!     data.join("wal"),
//!     ProgressFile::new(&data.join("remote_write"), "backup"),
//! );
//! let queue = Queue::start(settings, destination, QueueMetrics::unregistered()).unwrap();
//! // ... samples appended to the TSDB flow to the destination ...
//! queue.stop(Duration::from_secs(10)).await;
//! # }
//! ```

mod destination;
mod encode;
mod metrics;
mod progress;
mod queue;

pub use destination::{Destination, SendFuture, SendOutcome};
pub use encode::{
    Batch, BatchSeries, FamilyMetadata, Metadata, Protocol, Sample, SeriesEntry, encode_v1,
    encode_v2,
};
pub use metrics::{QueueMetrics, SenderMetrics};
pub use progress::{Position, ProgressFile};
pub use queue::{Queue, QueueError, QueueSettings};
