//! Ember's time-series database.
//!
//! This crate owns everything between the `Appender` and the disk. Built so
//! far:
//!
//! - [`Db`]: the database a server opens. [`Db::open`] opens the blocks and
//!   replays the WAL into the head; `Db` implements
//!   `ember_model::storage::Appendable` and `Queryable` (blocks and head
//!   merged), so `Arc<Db>` is an `Arc<dyn Storage>`. Transactions are
//!   atomic and isolated, durable as [`DbOptions::wal_sync`] says.
//!   [`Db::compact`] (run by a background thread) cuts the head into
//!   blocks, truncates head and WAL, compacts blocks and applies retention;
//!   [`Db::delete`], [`Db::clean_tombstones`] and [`Db::snapshot`] serve the
//!   admin API.
//! - [`block`]: persistent blocks — [`block::BlockWriter`] writes one,
//!   [`block::Block`] reads one through `mmap`.
//! - the head (internal): series sharded by label hash, postings with
//!   matcher fast paths, XOR chunks, full chunks in memory-mapped files
//!   (`chunks_head/`), write-id isolation;
//! - [`chunkenc`]: the float chunk encoding ([`chunkenc::XorChunk`]), the unit
//!   of compressed storage in the head and in blocks;
//! - [`wal`]: the write-ahead log ([`wal::Wal`]) with its record codecs,
//!   replay [`wal::Reader`], checkpoints and repair of torn or corrupt tails.
//!
//! Still to come: exemplar storage. The crate knows nothing of HTTP, PromQL
//! or plugins.
//!
//! Every byte the crate writes is specified under `tsdb/docs/format/`.
//!
//! ```
//! use ember_model::labels::Labels;
//! use ember_model::storage::{Appendable, Queryable};
//! use ember_tsdb::{Db, DbOptions, SyncPolicy};
//!
//! let dir = tempfile::tempdir()?;
//! let options = DbOptions { wal_sync: SyncPolicy::Always, ..DbOptions::default() };
//! let db = Db::open(dir.path(), options)?;
//! let mut app = db.appender();
//! app.append(None, &Labels::new([("__name__", "up")])?, 1_000, 1.0)?;
//! app.commit()?; // fsynced: SyncPolicy::Always
//! assert_eq!(db.querier(0, 2_000)?.label_values("__name__", &[], None)?.values, ["up"]);
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The WAL on its own:
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

pub mod backfill;
pub mod block;
pub mod chunkenc;
mod db;
mod head;
mod head_chunks;
pub mod synth;
pub mod wal;

pub use db::compact::CompactionReport;
pub use db::{
    DEFAULT_BLOCK_DURATION_MS, DEFAULT_RETENTION_MS, Db, DbOptions, DbStats, ReplayStats,
    TsdbError, max_block_duration_for,
};
pub use head_chunks::{ChunkFileError, DEFAULT_CHUNK_SEGMENT_SIZE};
pub use wal::SyncPolicy;
