//! Ember's time-series database.
//!
//! This crate will own everything between the `Appender` and the disk: the
//! write-ahead log (segmented, CRC32C-checked, snappy-compressed records), the
//! in-memory head (sharded series, postings, XOR chunks with full chunks mmapped
//! from disk), persistent 2-hour blocks, compaction, retention and snapshots.
//! It implements the storage traits defined in `ember-model` and knows nothing
//! of HTTP, PromQL or plugins.
//!
//! Nothing is implemented yet; see the TSDB issue.
