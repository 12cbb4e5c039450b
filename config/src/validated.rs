//! The validated configuration: every default applied, every value parsed.
//!
//! These are the types the rest of Ember reads. Durations are [`Duration`]s, sizes are
//! byte counts, URLs are [`Url`]s, regexes are compiled, relative file names are
//! resolved against the configuration file's directory (as Prometheus does), and each
//! scrape config carries its effective settings, with the `global` defaults filled in.
//! All types are `Clone + PartialEq`, so a reload can tell whether anything changed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::names::{EscapingScheme, ValidationScheme};
use crate::raw::Opaque;
use crate::relabel::{RelabelConfig, RelabelStep};

/// Default `global.scrape_interval`.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Default `global.scrape_timeout` (capped at the scrape interval).
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `global.evaluation_interval`.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// Default `runtime.gogc`.
pub const DEFAULT_GOGC: i64 = 75;
/// Default `file_sd_configs[].refresh_interval`.
pub const DEFAULT_FILE_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default `http_sd_configs[].refresh_interval`, also used for `plugin_sd_configs`.
pub const DEFAULT_HTTP_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Default `alertmanagers[].timeout`.
pub const DEFAULT_ALERTMANAGER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `remote_write[].remote_timeout`.
pub const DEFAULT_REMOTE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `remote_read[].remote_timeout`.
pub const DEFAULT_REMOTE_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `storage.exemplars.max_exemplars`.
pub const DEFAULT_MAX_EXEMPLARS: i64 = 100_000;
/// Default `remote_read[].chunked_read_limit`: 50 MB frames, about 100k XOR chunks.
pub const DEFAULT_CHUNKED_READ_LIMIT: u64 = 50_000_000;
/// Default `tracing.timeout`.
pub const DEFAULT_TRACING_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `plugins[].limits.memory` (Ember): 64 MiB of linear memory.
pub const DEFAULT_PLUGIN_MEMORY: u64 = 64 * 1024 * 1024;
/// Default `plugins[].limits.call_timeout` (Ember).
pub const DEFAULT_PLUGIN_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A secret value: compared and cloned normally, but never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the code that has to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// A secret given inline or read from a file (`password` / `password_file`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value itself.
    Inline(Secret),
    /// A file holding the value, resolved against the configuration directory.
    File(PathBuf),
}

/// A non-secret value given inline or read from a file (`ca` / `ca_file`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// The value itself.
    Inline(String),
    /// A file holding the value, resolved against the configuration directory.
    File(PathBuf),
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// Plain HTTP (the default).
    #[default]
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The URL scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// An exposition format a scrape can negotiate (`scrape_protocols`): the
/// model's type, which also knows each protocol's media type and parser.
pub use ember_model::exposition::ScrapeProtocol;

/// The whole validated configuration.
///
/// A `Config` is plain owned data (`Send + Sync`) and is never modified after loading:
/// share one behind an `Arc` and replace it wholesale on reload, comparing with `==` to
/// skip reloads that change nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `global`.
    pub global: GlobalConfig,
    /// `runtime`.
    pub runtime: RuntimeConfig,
    /// `rule_files` globs, resolved against the configuration directory but not expanded.
    pub rule_files: Vec<PathBuf>,
    /// `scrape_config_files` globs, resolved against the configuration directory. They are
    /// recorded only: loading the scrape configs they match is not implemented yet.
    pub scrape_config_files: Vec<PathBuf>,
    /// `scrape_configs`, with global defaults applied.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// `alerting`.
    pub alerting: AlertingConfig,
    /// `remote_write`.
    pub remote_write: Vec<RemoteWriteConfig>,
    /// `remote_read`.
    pub remote_read: Vec<RemoteReadConfig>,
    /// `otlp`.
    pub otlp: OtlpConfig,
    /// `storage`.
    pub storage: StorageConfig,
    /// `tracing`, when the section is present.
    pub tracing: Option<TracingConfig>,
    /// `plugins` (Ember).
    pub plugins: Vec<PluginConfig>,
    /// Settings that loaded but that Ember does not act on, such as Kubernetes discovery,
    /// each as a `file:line:col: path: message` line for the operator.
    pub warnings: Vec<String>,
    /// Where the configuration came from, and its text as written, which
    /// `/api/v1/status/config` shows.
    pub source: ConfigSource,
}

impl Config {
    /// The scrape config of `job_name`.
    pub fn scrape_config(&self, job_name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs
            .iter()
            .find(|config| config.job_name == job_name)
    }

    /// The declared plugin called `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.iter().find(|plugin| plugin.name == name)
    }
}

/// The origin and text of a configuration.
///
/// `Debug` shows the text's length rather than the text, which holds secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The file name given to [`crate::load_file`] or [`crate::parse`].
    pub path: PathBuf,
    /// The YAML text as read.
    pub text: String,
}

impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSource")
            .field("path", &self.path)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .finish()
    }
}

/// `global`, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// Default scrape interval (1m).
    pub scrape_interval: Duration,
    /// Default scrape timeout (10s, or the interval if shorter).
    pub scrape_timeout: Duration,
    /// Negotiation order, if set globally.
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// Rule evaluation interval (1m).
    pub evaluation_interval: Duration,
    /// Offset of rule query timestamps into the past (0s).
    pub rule_query_offset: Duration,
    /// External labels after environment expansion, sorted by name.
    pub external_labels: BTreeMap<String, String>,
    /// File to log PromQL queries to.
    pub query_log_file: Option<PathBuf>,
    /// File to log scrape failures to.
    pub scrape_failure_log_file: Option<PathBuf>,
    /// Default limits for every scrape config.
    pub limits: ScrapeLimits,
    /// Name validation scheme (utf8).
    pub metric_name_validation_scheme: ValidationScheme,
    /// Name escaping scheme, if set globally; otherwise it follows the validation scheme.
    pub metric_name_escaping_scheme: Option<EscapingScheme>,
    /// Ingest native histograms (false).
    pub scrape_native_histograms: bool,
    /// Convert classic histograms to NHCB (false).
    pub convert_classic_histograms_to_nhcb: bool,
    /// Also keep classic histograms (false).
    pub always_scrape_classic_histograms: bool,
    /// Record `scrape_timeout_seconds` and friends (false).
    pub extra_scrape_metrics: bool,
}

/// `runtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Go's `GOGC` (75); recorded for compatibility, Ember has no Go runtime.
    pub gogc: i64,
}

/// Per-scrape limits; 0 means "no limit" throughout, as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeLimits {
    /// Maximum uncompressed body size in bytes.
    pub body_size_limit: u64,
    /// Maximum samples per scrape after metric relabelling.
    pub sample_limit: u64,
    /// Maximum labels per sample.
    pub label_limit: u64,
    /// Maximum label name length in bytes.
    pub label_name_length_limit: u64,
    /// Maximum label value length in bytes.
    pub label_value_length_limit: u64,
    /// Maximum targets per scrape config after relabelling.
    pub target_limit: u64,
    /// Maximum dropped targets kept in memory for the targets page.
    pub keep_dropped_targets: u64,
}

/// One scrape job with its effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeConfig {
    /// Unique job name; the default `job` label.
    pub job_name: String,
    /// How often to scrape.
    pub scrape_interval: Duration,
    /// Per-scrape timeout, never longer than the interval.
    pub scrape_timeout: Duration,
    /// Negotiation order, resolved from the job, the global setting or the default.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Protocol assumed when the response's `Content-Type` is unusable.
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    /// Path of the metrics endpoint (`/metrics`).
    pub metrics_path: String,
    /// Keep scraped labels on conflict (false).
    pub honor_labels: bool,
    /// Use timestamps from the scraped data (true).
    pub honor_timestamps: bool,
    /// Write staleness markers for series with explicit timestamps (false).
    pub track_timestamps_staleness: bool,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// URL query parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// Ask for compressed responses (true).
    pub enable_compression: bool,
    /// File to log this job's scrape failures to (default: global).
    pub scrape_failure_log_file: Option<PathBuf>,
    /// HTTP client settings.
    pub http_client: HttpClientConfig,
    /// Where targets come from.
    pub service_discovery: ServiceDiscoveryConfigs,
    /// Target relabelling: built-in rules and relabel plugin steps, in order.
    pub relabel_configs: Vec<RelabelStep>,
    /// Metric relabelling: built-in rules and relabel plugin steps, in order.
    pub metric_relabel_configs: Vec<RelabelStep>,
    /// The exporter plugin (Ember) that collects every target of the job instead of an
    /// HTTP request, when set.
    pub plugin: Option<String>,
    /// Limits, defaulted from global.
    pub limits: ScrapeLimits,
    /// Name validation scheme.
    pub metric_name_validation_scheme: ValidationScheme,
    /// Name escaping scheme requested from targets.
    pub metric_name_escaping_scheme: EscapingScheme,
    /// Maximum native histogram buckets (0 = none).
    pub native_histogram_bucket_limit: u64,
    /// Minimum native histogram bucket growth factor (0 = none).
    pub native_histogram_min_bucket_factor: f64,
    /// Ingest native histograms.
    pub scrape_native_histograms: bool,
    /// Convert classic histograms to NHCB.
    pub convert_classic_histograms_to_nhcb: bool,
    /// Also keep classic histograms.
    pub always_scrape_classic_histograms: bool,
    /// Record the extra scrape metrics.
    pub extra_scrape_metrics: bool,
}

/// The discovery mechanisms of a scrape job or Alertmanager set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDiscoveryConfigs {
    /// Fixed target groups.
    pub static_configs: Vec<StaticConfig>,
    /// File-based discovery.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// HTTP-based discovery.
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// Discovery plugins (Ember).
    pub plugin_sd_configs: Vec<PluginSdConfig>,
    /// Mechanisms Ember does not implement, kept as written; they find no targets.
    pub unsupported: Vec<UnsupportedSdConfig>,
}

/// A fixed target group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    pub labels: BTreeMap<String, String>,
}

/// File-based discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSdConfig {
    /// File patterns, resolved against the configuration directory.
    pub files: Vec<PathBuf>,
    /// Re-read period (5m), on top of change notifications.
    pub refresh_interval: Duration,
}

/// HTTP-based discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSdConfig {
    /// Endpoint returning target groups as JSON.
    pub url: Url,
    /// Poll period (60s).
    pub refresh_interval: Duration,
    /// HTTP client settings.
    pub http_client: HttpClientConfig,
}

/// Discovery through a plugin (Ember).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSdConfig {
    /// Name of a declared plugin of kind `discovery`.
    pub plugin: String,
    /// Configuration entries that override the plugin's own `config` for this discovery
    /// (empty when absent); a non-empty map gives this discovery its own plugin instance.
    pub config: BTreeMap<String, String>,
    /// Refresh period (60s).
    pub refresh_interval: Duration,
}

/// A discovery mechanism Ember accepts but does not implement.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedSdConfig {
    /// The YAML key, e.g. `kubernetes_sd_configs`.
    pub mechanism: String,
    /// The configuration as written.
    pub config: Opaque,
}

/// `<http_config>`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpClientConfig {
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header (also set by the deprecated `bearer_token` fields).
    pub authorization: Option<Authorization>,
    /// OAuth 2.0 client credentials.
    pub oauth2: Option<OAuth2>,
    /// Follow 3xx redirects (true).
    pub follow_redirects: bool,
    /// Allow HTTP/2 (true; false for remote write).
    pub enable_http2: bool,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Proxy settings.
    pub proxy: ProxyConfig,
    /// Extra headers, by name.
    pub http_headers: BTreeMap<String, HttpHeader>,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// The user name.
    pub username: Option<SecretSource>,
    /// The password.
    pub password: Option<SecretSource>,
}

/// An `Authorization: <type> <credentials>` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The scheme (`Bearer` by default).
    pub kind: String,
    /// The credentials.
    pub credentials: Option<SecretSource>,
}

/// OAuth 2.0 token acquisition.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2 {
    /// Client identifier.
    pub client_id: String,
    /// Grant type (`client_credentials` by default).
    pub grant_type: String,
    /// Client secret.
    pub client_secret: Option<SecretSource>,
    /// Key to sign a JWT bearer assertion with.
    pub client_certificate_key: Option<SecretSource>,
    /// `kid` of the JWT.
    pub client_certificate_key_id: Option<String>,
    /// JWT signature algorithm (RS256 by default).
    pub signature_algorithm: String,
    /// JWT issuer.
    pub iss: Option<String>,
    /// JWT audience.
    pub audience: Option<String>,
    /// Extra JWT claims.
    pub claims: BTreeMap<String, Opaque>,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Token endpoint.
    pub token_url: Url,
    /// Extra token request parameters.
    pub endpoint_params: BTreeMap<String, String>,
    /// TLS for the token request.
    pub tls: TlsConfig,
    /// Proxy for the token request.
    pub proxy: ProxyConfig,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLS10`.
    Tls10,
    /// `TLS11`.
    Tls11,
    /// `TLS12`.
    Tls12,
    /// `TLS13`.
    Tls13,
}

impl TlsVersion {
    /// Parses `TLS10` .. `TLS13`.
    pub fn from_config(text: &str) -> Option<Self> {
        match text {
            "TLS10" => Some(Self::Tls10),
            "TLS11" => Some(Self::Tls11),
            "TLS12" => Some(Self::Tls12),
            "TLS13" => Some(Self::Tls13),
            _ => None,
        }
    }
}

/// `tls_config`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// CA certificates (PEM).
    pub ca: Option<ValueSource>,
    /// Client certificate (PEM).
    pub cert: Option<ValueSource>,
    /// Client key (PEM).
    pub key: Option<SecretSource>,
    /// SNI server name.
    pub server_name: Option<String>,
    /// Skip server certificate verification.
    pub insecure_skip_verify: bool,
    /// Minimum TLS version (TLS 1.2 when unset).
    pub min_version: Option<TlsVersion>,
    /// Maximum TLS version (TLS 1.3 when unset).
    pub max_version: Option<TlsVersion>,
}

/// Proxy settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyConfig {
    /// Proxy URL (`http`, `https` or `socks5`).
    pub url: Option<Url>,
    /// Hosts, IPs and CIDRs that bypass the proxy, comma separated.
    pub no_proxy: Option<String>,
    /// Take the proxy from `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`.
    pub from_environment: bool,
    /// Headers for `CONNECT` requests.
    pub connect_headers: BTreeMap<String, Vec<Secret>>,
}

/// One extra request header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpHeader {
    /// Plain values.
    pub values: Vec<String>,
    /// Secret values.
    pub secrets: Vec<Secret>,
    /// Files to read values from, resolved against the configuration directory.
    pub files: Vec<PathBuf>,
}

/// `alerting`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertingConfig {
    /// Relabelling of every alert.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// Alertmanager sets.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One set of Alertmanagers.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// Per-request timeout (10s).
    pub timeout: Duration,
    /// Path prefix (`/`).
    pub path_prefix: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// HTTP client settings.
    pub http_client: HttpClientConfig,
    /// Where the Alertmanagers come from.
    pub service_discovery: ServiceDiscoveryConfigs,
    /// Relabelling of discovered Alertmanagers.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabelling of alerts sent to this set.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// AWS SigV4 settings as written; not implemented by Ember.
    pub sigv4: Option<Opaque>,
}

/// The protobuf message a remote write endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemoteWriteMessage {
    /// `prometheus.WriteRequest`: remote write 1.0 (the default).
    #[default]
    V1,
    /// `io.prometheus.write.v2.Request`: remote write 2.0.
    V2,
}

impl RemoteWriteMessage {
    /// Parses the fully qualified message name.
    pub fn from_config(text: &str) -> Option<Self> {
        match text {
            "prometheus.WriteRequest" => Some(Self::V1),
            "io.prometheus.write.v2.Request" => Some(Self::V2),
            _ => None,
        }
    }
}

/// Where a `remote_write` entry sends its samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteWriteDestination {
    /// A remote write endpoint (`url`).
    Url(Url),
    /// A declared remote-storage plugin (`plugin`, Ember), by name. The HTTP settings of
    /// the entry (`headers`, `<http_config>`, `protobuf_message`, `round_robin_dns`) do not
    /// apply; the queue settings and `write_relabel_configs` do.
    Plugin(String),
}

/// One remote write endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    /// Endpoint or plugin.
    pub destination: RemoteWriteDestination,
    /// Unique name for metrics and logs.
    pub name: Option<String>,
    /// Request timeout (30s).
    pub remote_timeout: Duration,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Relabelling before sending.
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Wire message.
    pub protobuf_message: RemoteWriteMessage,
    /// Send exemplars (false).
    pub send_exemplars: bool,
    /// Send native histograms (false; always for 2.0).
    pub send_native_histograms: bool,
    /// Connect to a random resolved address (false).
    pub round_robin_dns: bool,
    /// HTTP client settings (`enable_http2` defaults to false here).
    pub http_client: HttpClientConfig,
    /// Queue tuning.
    pub queue_config: QueueConfig,
    /// Metadata sending.
    pub metadata_config: MetadataConfig,
    /// AWS SigV4 as written; not implemented by Ember.
    pub sigv4: Option<Opaque>,
    /// Azure AD as written; not implemented by Ember.
    pub azuread: Option<Opaque>,
    /// Google IAM as written; not implemented by Ember.
    pub google_iam: Option<Opaque>,
}

/// `queue_config` with Prometheus's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Samples buffered per shard (10000).
    pub capacity: u64,
    /// Maximum shards (50).
    pub max_shards: u64,
    /// Minimum shards (1).
    pub min_shards: u64,
    /// Samples per request (2000).
    pub max_samples_per_send: u64,
    /// Longest wait before sending a partial batch (5s).
    pub batch_send_deadline: Duration,
    /// First retry delay (30ms).
    pub min_backoff: Duration,
    /// Longest retry delay (5s).
    pub max_backoff: Duration,
    /// Retry on HTTP 429 (false).
    pub retry_on_http_429: bool,
    /// Drop samples older than this (0 = never).
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::ZERO,
        }
    }
}

/// `metadata_config` with Prometheus's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataConfig {
    /// Send metadata (true).
    pub send: bool,
    /// How often (1m).
    pub send_interval: Duration,
    /// Entries per request (2000).
    pub max_samples_per_send: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2_000,
        }
    }
}

impl RemoteWriteConfig {
    /// The endpoint, when the destination is one.
    pub fn url(&self) -> Option<&Url> {
        match &self.destination {
            RemoteWriteDestination::Url(url) => Some(url),
            RemoteWriteDestination::Plugin(_) => None,
        }
    }

    /// The remote-storage plugin's name, when the destination is a plugin.
    pub fn plugin(&self) -> Option<&str> {
        match &self.destination {
            RemoteWriteDestination::Url(_) => None,
            RemoteWriteDestination::Plugin(name) => Some(name),
        }
    }
}

/// One remote read endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteReadConfig {
    /// Endpoint.
    pub url: Url,
    /// Unique name.
    pub name: Option<String>,
    /// Equality matchers a selector must contain for this endpoint to be queried.
    pub required_matchers: BTreeMap<String, String>,
    /// Request timeout (1m).
    pub remote_timeout: Duration,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Query even ranges local storage covers (false).
    pub read_recent: bool,
    /// Largest frame of a streamed response, in bytes (50000000).
    pub chunked_read_limit: u64,
    /// Add external labels as matchers (true).
    pub filter_external_labels: bool,
    /// HTTP client settings.
    pub http_client: HttpClientConfig,
}

/// How OTLP metric names are translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TranslationStrategy {
    /// `UnderscoreEscapingWithSuffixes` (the default).
    #[default]
    UnderscoreEscapingWithSuffixes,
    /// `UnderscoreEscapingWithoutSuffixes`.
    UnderscoreEscapingWithoutSuffixes,
    /// `NoUTF8EscapingWithSuffixes`.
    NoUtf8EscapingWithSuffixes,
    /// `NoTranslation`.
    NoTranslation,
}

impl TranslationStrategy {
    /// Parses the configuration spelling.
    pub fn from_config(text: &str) -> Option<Self> {
        match text {
            "UnderscoreEscapingWithSuffixes" => Some(Self::UnderscoreEscapingWithSuffixes),
            "UnderscoreEscapingWithoutSuffixes" => Some(Self::UnderscoreEscapingWithoutSuffixes),
            "NoUTF8EscapingWithSuffixes" => Some(Self::NoUtf8EscapingWithSuffixes),
            "NoTranslation" => Some(Self::NoTranslation),
            _ => None,
        }
    }

    /// Whether the strategy keeps UTF-8 names, which the legacy scheme forbids.
    pub fn needs_utf8(self) -> bool {
        matches!(self, Self::NoUtf8EscapingWithSuffixes | Self::NoTranslation)
    }
}

/// `otlp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Resource attributes promoted to labels.
    pub promote_resource_attributes: Vec<String>,
    /// Promote all resource attributes (false).
    pub promote_all_resource_attributes: bool,
    /// Attributes not promoted when promoting all.
    pub ignore_resource_attributes: Vec<String>,
    /// Name translation.
    pub translation_strategy: TranslationStrategy,
    /// Keep `service.*` attributes on `target_info` (false).
    pub keep_identifying_resource_attributes: bool,
    /// Convert explicit-bucket histograms to NHCB (false).
    pub convert_histograms_to_nhcb: bool,
    /// Promote scope metadata to labels (false).
    pub promote_scope_metadata: bool,
    /// Prefix `key_` to labels starting with `_` (true).
    pub label_name_underscore_sanitization: bool,
    /// Keep runs of underscores in label names (true).
    pub label_name_preserve_multiple_underscores: bool,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            promote_resource_attributes: Vec::new(),
            promote_all_resource_attributes: false,
            ignore_resource_attributes: Vec::new(),
            translation_strategy: TranslationStrategy::default(),
            keep_identifying_resource_attributes: false,
            convert_histograms_to_nhcb: false,
            promote_scope_metadata: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
        }
    }
}

/// `storage`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageConfig {
    /// `storage.tsdb`.
    pub tsdb: TsdbConfig,
    /// `storage.exemplars`.
    pub exemplars: ExemplarsConfig,
}

/// Float chunk encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatChunkEncoding {
    /// Gorilla XOR.
    Xor,
    /// XOR2, with start timestamps.
    Xor2,
}

/// `storage.tsdb`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TsdbConfig {
    /// Accept samples this much older than the newest (0s = in order only).
    pub out_of_order_time_window: Duration,
    /// Stale-series ratio that triggers compaction (0 = off).
    pub stale_series_compaction_threshold: f64,
    /// Float chunk encoding, when set.
    pub float_chunk_encoding: Option<FloatChunkEncoding>,
    /// Retention.
    pub retention: RetentionConfig,
}

/// `storage.tsdb.retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionConfig {
    /// Retention time, when set (the server's flag default applies otherwise).
    pub time: Option<Duration>,
    /// Size limit in bytes (0 = none).
    pub size: u64,
    /// Disk percentage limit (0 = none).
    pub percentage: u8,
}

/// `storage.exemplars`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExemplarsConfig {
    /// Size of the exemplar ring buffer (100000); 0 or less disables exemplar storage.
    pub max_exemplars: i64,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        Self {
            max_exemplars: DEFAULT_MAX_EXEMPLARS,
        }
    }
}

/// OTLP transport for trace export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TracingClientType {
    /// gRPC (the default).
    #[default]
    Grpc,
    /// HTTP.
    Http,
}

/// `tracing`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// Transport.
    pub client_type: TracingClientType,
    /// `host:port` of the collector.
    pub endpoint: String,
    /// Probability of sampling a trace, 0 to 1.
    pub sampling_fraction: f64,
    /// Use plain text instead of TLS.
    pub insecure: bool,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Compress exports with gzip.
    pub gzip_compression: bool,
    /// Export timeout (10s).
    pub timeout: Duration,
    /// TLS settings.
    pub tls: TlsConfig,
}

/// The role a plugin plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// Finds targets.
    Discovery,
    /// Is a scrape target.
    Exporter,
    /// Rewrites label sets.
    Relabeler,
    /// Receives samples.
    RemoteStorage,
}

impl PluginKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [
        Self::Discovery,
        Self::Exporter,
        Self::Relabeler,
        Self::RemoteStorage,
    ];

    /// Parses the configuration spelling.
    pub fn from_config(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The configuration spelling, also the WIT world name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Exporter => "exporter",
            Self::Relabeler => "relabeler",
            Self::RemoteStorage => "remote-storage",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A declared plugin (Ember).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// Unique name.
    pub name: String,
    /// Role.
    pub kind: PluginKind,
    /// Component file, resolved against the configuration directory.
    pub path: PathBuf,
    /// Configuration handed to the plugin through `wasi:config/store`: each key of the
    /// YAML map with its scalar value as text, lists joined with commas (empty when
    /// absent).
    pub config: BTreeMap<String, String>,
    /// Resource limits.
    pub limits: PluginLimits,
    /// Sandbox grants.
    pub capabilities: PluginCapabilities,
}

/// Resource limits of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory cap in bytes (64 MiB).
    pub memory: u64,
    /// Deadline of one call (5s).
    pub call_timeout: Duration,
    /// Instruction budget per call, when metered.
    pub fuel: Option<u64>,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory: DEFAULT_PLUGIN_MEMORY,
            call_timeout: DEFAULT_PLUGIN_CALL_TIMEOUT,
            fuel: None,
        }
    }
}

/// What the sandbox lets a plugin reach; nothing unless granted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginCapabilities {
    /// Hosts reachable over HTTP.
    pub allowed_hosts: Vec<String>,
    /// Environment variables visible to the plugin.
    pub env: Vec<String>,
    /// Directory readable by the plugin, resolved against the configuration directory.
    pub read_only_dir: Option<PathBuf>,
}
