//! Ember's data model.
//!
//! Labels, matchers, samples, metric metadata, relabeling, exposition-format
//! parsers and writers, and the storage traits (`Appender`, `Querier`) that
//! the TSDB implements and the scrape loop and PromQL engine use. This crate
//! does no I/O.
