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
//! # Native histograms
//!
//! Samples are floats or native histograms
//! ([`ember_model::histogram::FloatHistogram`]), as the storage yields them
//! ([`ember_model::storage::SampleIterator::at_histogram`]). The evaluator
//! keeps a series' histogram points beside its float points, so float-only
//! queries take the same paths as before. Selectors, range vectors,
//! subqueries, `@`/`offset` and staleness handle both; operators, the
//! aggregations and the functions follow Prometheus (histogram arithmetic,
//! `rate`/`increase`/`irate`/`delta` of histograms, `sum`/`avg`/`count`,
//! `histogram_quantile`/`histogram_fraction`/`histogram_count`/... on
//! native histograms, and the warnings and infos for what they ignore or
//! refuse). [`engine::Engine::instant_query_output`] and
//! [`engine::Engine::range_query_output`] return the full
//! [`value::QueryValue`], which [`value::write_api_result`] renders with the
//! API's `histogram`/`histograms` fields; [`engine::Engine::instant_query`]
//! and [`engine::Engine::range_query`] keep returning the float-only
//! [`value::Value`] (histogram samples left out) for existing callers.
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
