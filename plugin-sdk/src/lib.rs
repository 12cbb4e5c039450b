//! The Rust SDK for Ember plugins.
//!
//! Plugins are WebAssembly components that implement one of the worlds of the
//! `ember:plugin` WIT package in `wit/`. This crate will wrap the generated
//! bindings in small traits with defaults (`Discoverer`, `Exporter`,
//! `Relabeler`, `RemoteStorage`) and export macros, so a plugin author writes
//! ordinary Rust and never touches the canonical ABI.
//!
//! Nothing is implemented yet; see the plugin platform issue.
