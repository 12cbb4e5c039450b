//! The `ember` server.
//!
//! This crate wires the library crates together into the running server: it
//! owns the command line, logging, configuration loading and reloading, the
//! HTTP server with the management endpoints (`/-/healthy`, `/-/ready`,
//! `/-/reload`, `/-/quit`) and the server's own metrics, and the orderly
//! start-up and shut-down of everything else. Later it will also own
//! discovery, scraping, the plugin runtime, remote read/write and OTLP.
//!
//! The principal pieces:
//! - [`cli::Cli`]: the command line, with Prometheus's flag names;
//! - [`server::run`]: start the server and run it until a signal or `/-/quit`;
//! - [`reload::ConfigManager`]: the current configuration, reloaded atomically;
//! - [`web::router`]: the HTTP routes;
//! - [`self_metrics::SelfMetrics`]: what `/metrics` exposes about the server.
//!
//! ```no_run
//! use clap::Parser;
//! # async fn demo() -> anyhow::Result<()> {
//! let cli = ember_host::cli::Cli::parse_from(["ember", "--web.listen-address=127.0.0.1:9090"]);
//! ember_host::server::run(cli.server).await?;
//! # Ok(()) }
//! ```

pub mod check;
pub mod cli;
pub mod discovery;
pub mod http_client;
pub mod logging;
pub mod plugin_cli;
pub mod plugins;
pub mod reload;
pub mod remote_read_client;
pub mod remote_write;
pub mod scrape;
pub mod self_metrics;
pub mod server;
pub mod storage_dir;
pub mod telemetry;
pub mod tsdb_cli;
pub mod tsdb_metrics;
pub mod version;
pub mod web;
