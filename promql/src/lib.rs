//! Ember's PromQL engine.
//!
//! This crate will parse PromQL, evaluate instant and range queries over the
//! `Querier` trait of `ember-model`, and run the upstream promqltest
//! conformance files. It sees storage only through those traits.
//!
//! Nothing is implemented yet; see the PromQL issue.
