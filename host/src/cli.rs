//! The command line.
//!
//! Flag names follow Prometheus's where Prometheus has the same setting
//! (`--config.file`, `--storage.tsdb.path`, `--web.listen-address`, ...), so
//! that unit files, Helm values and habits carry over unchanged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ember_promql::engine::EngineOptions;
use regex::Regex;

/// `ember`: a Prometheus-compatible monitoring server with WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(
    name = "ember",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Print version, git revision, build date and exit.
    #[arg(short = 'V', long = "version", global = true)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub server: ServerFlags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files without starting the server.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Tools for the storage: backfill, list and analyze blocks.
    #[command(subcommand)]
    Tsdb(crate::tsdb_cli::TsdbCommand),
    /// Write, build and inspect WebAssembly plugins.
    #[command(subcommand)]
    Plugin(crate::plugin_cli::PluginCommand),
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check that each FILE is a valid configuration; exit 1 if any is not.
    Config {
        /// Configuration files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// The flags of the server itself (no subcommand).
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// Configuration file path. Without it, `./prometheus.yml` is used when it
    /// exists, and otherwise the embedded default configuration.
    #[arg(long = "config.file", value_name = "PATH")]
    pub config_file: Option<PathBuf>,

    /// Base path for metrics storage.
    #[arg(
        long = "storage.tsdb.path",
        value_name = "PATH",
        default_value = "data/"
    )]
    pub storage_path: PathBuf,

    /// How long to retain samples in storage. Without this flag and without
    /// `storage.tsdb.retention` in the configuration file, 15d (or none when
    /// only a size limit is set). `0s` keeps them forever.
    #[arg(long = "storage.tsdb.retention.time", value_name = "DURATION", value_parser = parse_duration_flag)]
    pub retention_time: Option<Duration>,

    /// Maximum number of bytes that can be stored for blocks, WAL and head
    /// chunks together, with units B, KB, MB, GB, TB, PB, EB (powers of
    /// 1024), e.g. `512MB`. The oldest blocks are deleted first. `0`: no
    /// limit.
    #[arg(long = "storage.tsdb.retention.size", value_name = "BYTES", value_parser = parse_bytes_flag)]
    pub retention_size: Option<u64>,

    /// Length of the blocks the head is cut into (the head holds about 1.5
    /// times this). Short values are for tests.
    #[arg(long = "storage.tsdb.min-block-duration", value_name = "DURATION", default_value = "2h", value_parser = parse_duration_flag)]
    pub min_block_duration: Duration,

    /// Longest block compaction produces. Default: 10% of the retention
    /// time, at most 31d.
    #[arg(long = "storage.tsdb.max-block-duration", value_name = "DURATION", value_parser = parse_duration_flag)]
    pub max_block_duration: Option<Duration>,

    /// Address to listen on for the UI, API and telemetry.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub listen_address: SocketAddr,

    /// Enable shutdown and reload via HTTP request (`/-/quit`, `/-/reload`).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Enable the administrative HTTP endpoints (TSDB snapshots, deletion).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,

    /// Regex for CORS origin. It is fully anchored. Example:
    /// 'https?://(domain1|domain2)\.com'
    #[arg(long = "web.cors.origin", value_name = "REGEX", default_value = ".*", value_parser = CorsOrigin::parse)]
    pub cors_origin: CorsOrigin,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", value_name = "DURATION", default_value = "2m", value_parser = parse_duration_flag)]
    pub query_timeout: Duration,

    /// Maximum number of samples a single query can load into memory. Note
    /// that queries will fail if they try to load more samples than this
    /// into memory, so this also limits the number of samples a query can
    /// return.
    #[arg(
        long = "query.max-samples",
        value_name = "COUNT",
        default_value_t = 50_000_000
    )]
    pub query_max_samples: usize,

    /// Maximum number of queries executed concurrently.
    #[arg(
        long = "query.max-concurrency",
        value_name = "COUNT",
        default_value_t = 20
    )]
    pub query_max_concurrency: usize,

    /// The maximum lookback duration for retrieving metrics during
    /// expression evaluations and federation.
    #[arg(long = "query.lookback-delta", value_name = "DURATION", default_value = "5m", value_parser = parse_duration_flag)]
    pub query_lookback_delta: Duration,

    /// Accept remote write requests (1.0 and 2.0) on `/api/v1/write`.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,

    /// Accept OTLP metrics (OTLP/HTTP, protobuf or JSON) on
    /// `/api/v1/otlp/v1/metrics`.
    #[arg(long = "web.enable-otlp-receiver")]
    pub enable_otlp_receiver: bool,

    /// Largest remote write request body accepted, in bytes, compressed
    /// (413 beyond); the decompressed body may be 8 times this.
    #[arg(
        long = "web.remote-write-receiver.max-body-bytes",
        value_name = "BYTES",
        default_value_t = 32 * 1024 * 1024
    )]
    pub remote_write_max_body_bytes: usize,

    /// Most samples one remote read SAMPLES answer may hold; 0 is no limit.
    /// Streamed answers are not limited by it.
    #[arg(
        long = "storage.remote.read-sample-limit",
        value_name = "COUNT",
        default_value_t = 50_000_000
    )]
    pub remote_read_sample_limit: usize,

    /// Most remote read requests served at once; 0 is no limit.
    #[arg(
        long = "storage.remote.read-concurrent-limit",
        value_name = "COUNT",
        default_value_t = 10
    )]
    pub remote_read_concurrent_limit: usize,

    /// Frame size after which a streamed remote read answer cuts a series
    /// into another frame (a frame can be larger by one chunk).
    #[arg(
        long = "storage.remote.read-max-bytes-in-frame",
        value_name = "BYTES",
        default_value_t = 1_048_576
    )]
    pub remote_read_max_bytes_in_frame: usize,
}

/// The origins allowed to read the API from a browser: a regex matched
/// against the whole `Origin` header, as Prometheus's `--web.cors.origin`.
#[derive(Debug, Clone)]
pub struct CorsOrigin {
    pattern: String,
    regex: Regex,
}

impl CorsOrigin {
    /// Compiles `pattern`, anchored at both ends.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())?;
        Ok(Self {
            pattern: pattern.to_owned(),
            regex,
        })
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether every origin is allowed (the default `.*`), which Prometheus
    /// answers with `Access-Control-Allow-Origin: *`.
    pub fn allows_any(&self) -> bool {
        self.pattern == ".*"
    }

    /// Whether `origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        self.regex.is_match(origin)
    }
}

/// Byte sizes as Prometheus's `--storage.tsdb.retention.size`: a number
/// with a unit, powers of 1024 (`512MB`); `0` alone means no limit.
fn parse_bytes_flag(text: &str) -> Result<u64, String> {
    if text == "0" {
        return Ok(0);
    }
    ember_config::parse_size(text).map_err(|e| e.to_string())
}

/// Durations on the command line are Prometheus durations (`2m`, `1h30m`).
fn parse_duration_flag(text: &str) -> Result<Duration, String> {
    ember_config::parse_duration(text).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl ServerFlags {
    /// The TSDB settings of the `--storage.tsdb.*` flags, with the
    /// configuration file's `storage.tsdb.retention` where a flag is not
    /// given: retention time from the flag, else the file, else 15d unless
    /// a size limit is set; size likewise; the longest block 10% of the
    /// retention (at most 31d) unless given; background compaction every
    /// minute, or a quarter of the block length when that is shorter.
    pub fn tsdb_options(&self, retention: &ember_config::RetentionConfig) -> ember_tsdb::DbOptions {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let size = self.retention_size.unwrap_or(retention.size);
        let time = self.retention_time.or(retention.time);
        let retention_ms = match time {
            Some(t) => millis(t),
            None if size > 0 => 0,
            None => ember_tsdb::DEFAULT_RETENTION_MS,
        };
        let block = millis(self.min_block_duration).max(1);
        let max_block = self
            .max_block_duration
            .map_or_else(|| ember_tsdb::max_block_duration_for(retention_ms), millis);
        let interval = (self.min_block_duration / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        ember_tsdb::DbOptions {
            block_duration_ms: block,
            max_block_duration_ms: max_block.max(block),
            retention_ms,
            retention_bytes: size,
            compaction_interval: Some(interval),
            ..ember_tsdb::DbOptions::default()
        }
    }

    /// The engine settings the `--query.*` flags choose.
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            lookback_delta: i64::try_from(self.query_lookback_delta.as_millis())
                .unwrap_or(i64::MAX),
            max_samples: self.query_max_samples,
            timeout: self.query_timeout,
            max_concurrency: self.query_max_concurrency,
            ..EngineOptions::default()
        }
    }

    /// The flags as `/api/v1/status/flags` reports them: Prometheus's names
    /// without the leading dashes, values as strings.
    pub fn as_pairs(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        vec![
            ("config.file", path(&self.config_file)),
            ("storage.tsdb.path", self.storage_path.display().to_string()),
            (
                "storage.tsdb.retention.time",
                self.retention_time
                    .map(ember_config::format_duration)
                    .unwrap_or_else(|| "0s".into()),
            ),
            (
                "storage.tsdb.retention.size",
                self.retention_size.unwrap_or(0).to_string() + "B",
            ),
            (
                "storage.tsdb.min-block-duration",
                ember_config::format_duration(self.min_block_duration),
            ),
            (
                "storage.tsdb.max-block-duration",
                self.max_block_duration
                    .map(ember_config::format_duration)
                    .unwrap_or_default(),
            ),
            ("web.listen-address", self.listen_address.to_string()),
            ("web.enable-lifecycle", self.enable_lifecycle.to_string()),
            ("web.enable-admin-api", self.enable_admin_api.to_string()),
            ("web.cors.origin", self.cors_origin.pattern().to_owned()),
            ("log.level", format!("{:?}", self.log_level).to_lowercase()),
            (
                "log.format",
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            (
                "query.timeout",
                ember_config::format_duration(self.query_timeout),
            ),
            ("query.max-samples", self.query_max_samples.to_string()),
            (
                "query.max-concurrency",
                self.query_max_concurrency.to_string(),
            ),
            (
                "query.lookback-delta",
                ember_config::format_duration(self.query_lookback_delta),
            ),
            (
                "web.enable-remote-write-receiver",
                self.enable_remote_write_receiver.to_string(),
            ),
            (
                "web.enable-otlp-receiver",
                self.enable_otlp_receiver.to_string(),
            ),
            (
                "web.remote-write-receiver.max-body-bytes",
                self.remote_write_max_body_bytes.to_string(),
            ),
            (
                "storage.remote.read-sample-limit",
                self.remote_read_sample_limit.to_string(),
            ),
            (
                "storage.remote.read-concurrent-limit",
                self.remote_read_concurrent_limit.to_string(),
            ),
            (
                "storage.remote.read-max-bytes-in-frame",
                self.remote_read_max_bytes_in_frame.to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_flag_names_parse() {
        let cli = Cli::try_parse_from([
            "ember",
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path",
            "/var/lib/ember",
            "--web.listen-address=127.0.0.1:9999",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            "--log.level=debug",
            "--log.format=json",
        ])
        .expect("prometheus-style flags parse");
        let s = cli.server;
        assert_eq!(
            s.config_file.as_deref(),
            Some("/etc/prometheus/prometheus.yml".as_ref())
        );
        assert_eq!(s.storage_path, PathBuf::from("/var/lib/ember"));
        assert_eq!(s.listen_address, "127.0.0.1:9999".parse().unwrap());
        assert!(s.enable_lifecycle && s.enable_admin_api);
        assert_eq!(s.log_level, LogLevel::Debug);
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(cli.command.is_none());
    }

    #[test]
    fn defaults_match_prometheus() {
        let s = Cli::try_parse_from(["ember"]).unwrap().server;
        assert_eq!(s.storage_path, PathBuf::from("data/"));
        assert_eq!(s.listen_address, "0.0.0.0:9090".parse().unwrap());
        assert!(!s.enable_lifecycle && !s.enable_admin_api);
        assert_eq!(s.log_format, LogFormat::Logfmt);
        assert_eq!(s.query_timeout, Duration::from_secs(120));
        assert_eq!(s.query_max_samples, 50_000_000);
        assert_eq!(s.query_max_concurrency, 20);
        assert_eq!(s.query_lookback_delta, Duration::from_secs(300));
    }

    #[test]
    fn storage_flags_reach_the_tsdb_options() {
        let defaults = Cli::try_parse_from(["ember"]).unwrap().server;
        let o = defaults.tsdb_options(&ember_config::RetentionConfig::default());
        assert_eq!(o.block_duration_ms, 2 * 3_600_000);
        assert_eq!(o.retention_ms, 15 * 24 * 3_600_000);
        assert_eq!(o.max_block_duration_ms, 36 * 3_600_000);
        assert_eq!(o.retention_bytes, 0);
        assert_eq!(o.compaction_interval, Some(Duration::from_secs(60)));

        let s = Cli::try_parse_from([
            "ember",
            "--storage.tsdb.retention.size=1GB",
            "--storage.tsdb.min-block-duration=2s",
        ])
        .expect("storage flags parse")
        .server;
        let o = s.tsdb_options(&ember_config::RetentionConfig::default());
        // Only a size limit: no time limit.
        assert_eq!((o.retention_ms, o.retention_bytes), (0, 1 << 30));
        assert_eq!(o.block_duration_ms, 2_000);
        assert_eq!(o.compaction_interval, Some(Duration::from_millis(500)));

        // The configuration file applies where no flag is given.
        let file = ember_config::RetentionConfig {
            time: Some(Duration::from_secs(3_600)),
            size: 5,
            percentage: 0,
        };
        let o = defaults.tsdb_options(&file);
        assert_eq!((o.retention_ms, o.retention_bytes), (3_600_000, 5));
        let s = Cli::try_parse_from(["ember", "--storage.tsdb.retention.time=1d"])
            .unwrap()
            .server;
        assert_eq!(s.tsdb_options(&file).retention_ms, 86_400_000);

        assert!(Cli::try_parse_from(["ember", "--storage.tsdb.retention.size=lots"]).is_err());
    }

    #[test]
    fn query_flags_reach_the_engine_and_the_flags_api() {
        let s = Cli::try_parse_from([
            "ember",
            "--query.timeout=30s",
            "--query.max-samples=10",
            "--query.max-concurrency",
            "4",
            "--query.lookback-delta=1m30s",
        ])
        .expect("query flags parse")
        .server;
        let options = s.engine_options();
        assert_eq!(options.timeout, Duration::from_secs(30));
        assert_eq!(options.max_samples, 10);
        assert_eq!(options.max_concurrency, 4);
        assert_eq!(options.lookback_delta, 90_000);
        let pairs: std::collections::HashMap<_, _> = s.as_pairs().into_iter().collect();
        assert_eq!(pairs["query.timeout"], "30s");
        assert_eq!(pairs["query.lookback-delta"], "1m30s");
        assert_eq!(pairs["query.max-samples"], "10");
        assert!(Cli::try_parse_from(["ember", "--query.timeout=soon"]).is_err());
    }

    #[test]
    fn cors_origin_is_an_anchored_regex() {
        let default = Cli::try_parse_from(["ember"]).unwrap().server.cors_origin;
        assert!(default.allows_any() && default.allows("https://anything"));
        let s = Cli::try_parse_from(["ember", r"--web.cors.origin=https?://grafana\.example"])
            .unwrap()
            .server;
        assert!(!s.cors_origin.allows_any());
        assert!(s.cors_origin.allows("https://grafana.example"));
        assert!(!s.cors_origin.allows("https://grafana.example.evil"));
        assert!(Cli::try_parse_from(["ember", "--web.cors.origin=("]).is_err());
    }

    #[test]
    fn check_config_takes_several_files() {
        let cli = Cli::try_parse_from(["ember", "check", "config", "a.yml", "b.yml"]).unwrap();
        match cli.command {
            Some(Command::Check(CheckCommand::Config { files })) => assert_eq!(files.len(), 2),
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    #[test]
    fn unknown_log_format_is_rejected() {
        assert!(Cli::try_parse_from(["ember", "--log.format=xml"]).is_err());
    }
}
