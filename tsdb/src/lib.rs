//! Ember's time-series database.
//!
//! This crate owns everything between the `Appender` and the disk. Built so
//! far:
//!
//! - [`chunkenc`]: the float chunk encoding ([`chunkenc::XorChunk`]), the unit
//!   of compressed storage in the head and in blocks;
//! - [`wal`]: the write-ahead log ([`wal::Wal`]) with its record codecs,
//!   replay [`wal::Reader`], checkpoints and repair of torn or corrupt tails.
//!
//! Still to come: the in-memory head (sharded series, postings, mmapped full
//! chunks), persistent 2-hour blocks, compaction, retention and snapshots. The
//! crate will implement the storage traits of `ember-model` and knows nothing
//! of HTTP, PromQL or plugins.
//!
//! Every byte the crate writes is specified under `tsdb/docs/format/`.
//!
//! ```
//! use ember_tsdb::wal::{Record, RefSample, Wal, WalOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
//! wal.log(&[Record::Samples(&[RefSample { series_ref: 1, t: 1_000, v: 2.5 }])])
//!     .unwrap();
//! wal.sync().unwrap();
//! ```

pub mod chunkenc;
pub mod wal;
