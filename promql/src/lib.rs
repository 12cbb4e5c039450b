//! Ember's PromQL engine and the promqltest conformance runner.
//!
//! - [`engine::Engine`] evaluates instant and range queries over any
//!   [`ember_model::storage::Queryable`] and returns [`value::Value`]s with
//!   annotations (warnings and infos), under limits (timeout, samples held,
//!   concurrent queries) and a [`engine::CancellationToken`].
//! - [`parser`] is the thin layer over the parser crate: the only module
//!   besides the evaluator that sees its syntax tree.
//! - [`promqltest`] runs Prometheus's promqltest DSL files; the
//!   `conformance` test runs upstream's files and `testdata/*.test`.
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
//!
//! # Parser decision
//!
//! Parsing uses the `promql-parser` crate (0.11, GreptimeTeam, Apache-2.0)
//! rather than a parser of our own. It parses every expression of the core
//! conformance files, its trees round-trip through its printer (which
//! `/api/v1/format_query` can use), and it is maintained. Its gaps are
//! handled in [`parser`], not worked around in the engine:
//!
//! - **Positions.** Its nodes have no spans, but Prometheus ends annotation
//!   messages with the node's `line:col`. [`parser::SourceMap`] recovers the
//!   positions of calls, aggregations and their arguments from the text
//!   (their names occur in the source in the order a pre-order walk meets
//!   them), which is what every positioned annotation of the suite needs.
//! - **Go string escapes.** `"\xc5"` is a raw byte in PromQL; the crate
//!   decodes it as U+00C5. Strings whose Go decoding is invalid UTF-8 are
//!   detected from the text ([`parser::Query::invalid_utf8`]) so label
//!   names made of them are refused as Prometheus refuses them.
//!
//! What it cannot do, and what would justify writing our own parser: the
//! newer syntax of the experimental test files — duration arithmetic
//! (`[5m+1m]`, `offset step()`), the `anchored`/`smoothed` range modifiers
//! and the native-histogram trim operators `</`, `>/` — and `info()`
//! second arguments whose matchers all match the empty string. Its syntax
//! errors are mostly the generic `invalid promql query` without a position;
//! a position is added when the message quotes an unambiguous fragment.

pub mod engine;
pub mod parser;
pub mod promqltest;
pub mod value;
