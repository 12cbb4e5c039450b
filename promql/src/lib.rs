//! Ember's PromQL engine and the promqltest conformance runner.
//!
//! - [`engine::Engine`] evaluates instant and range queries over any
//!   [`ember_model::storage::Queryable`] and returns [`value::Value`]s with
//!   annotations, under limits (timeout, samples, concurrency) and a
//!   [`engine::CancellationToken`].
//! - [`parser`] is the thin layer over the parser.
//! - [`promqltest`] runs Prometheus's promqltest DSL files.
//!
//! # Parser decision
//!
//! Parsing uses the `promql-parser` crate (0.11, GreptimeTeam, Apache-2.0):
//! it parses all 1,281 expressions of the core conformance files and its
//! trees round-trip through its printer. What it lacks is recovered in
//! [`parser`], the only module that touches its AST types besides the
//! evaluator: source positions for annotation messages are re-derived from
//! the query text, and Go's byte semantics of `\x` string escapes are
//! checked from the text. What it cannot do, and what would make us write
//! our own parser: duration expressions (`[5m+1m]`, `step()`),
//! `anchored`/`smoothed` range modifiers and the native histogram trim
//! operators `</` and `>/` (the experimental `duration_expression`,
//! `extended_vectors` and part of `native_histograms` test files), and
//! Prometheus-worded syntax errors with positions (the crate reports most
//! syntax errors as `invalid promql query`).
//!
//! ```
//! use ember_model::storage::MemStorage;
//! use ember_promql::engine::{Engine, EngineOptions};
//! use ember_promql::value::Value;
//!
//! let engine = Engine::new(EngineOptions::default());
//! let result = engine.instant(&MemStorage::new(), "1 + 2", 0)?;
//! assert!(matches!(result.value, Value::Scalar(s) if s.v == 3.0));
//! # Ok::<(), ember_promql::engine::QueryError>(())
//! ```

pub mod engine;
pub mod parser;
pub mod promqltest;
pub mod value;
