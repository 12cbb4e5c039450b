//! The `prometheus.yml` document exactly as written: serde types that mirror the YAML.
//!
//! Every struct denies unknown fields, so a typo is an error with a position rather than
//! a silently ignored setting. Scalars that need parsing (durations, sizes, URLs, regular
//! expressions) stay strings here and are parsed during validation, which knows
//! each field's path and so can say where a bad value is. Optional settings are
//! `Option`s, and lists and maps are `Option`s too, because Prometheus accepts an empty
//! (null) value for them: its own example file has `rule_files:` followed by comments
//! only. The documented defaults are applied during validation, in one place.
//!
//! Two groups of fields recur in several sections and are spliced in by macros rather
//! than `#[serde(flatten)]`, which would disable `deny_unknown_fields` and lose error
//! positions: the HTTP client settings (`<http_config>`) and the service discovery lists.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An opaque YAML value: a section Ember stores but does not interpret, such as a plugin's
/// own configuration or a service discovery mechanism Ember does not implement.
pub type Opaque = serde_json::Value;

/// Adds the `<http_config>` fields to a struct, plus `http_client()` to collect them.
macro_rules! with_http_client_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
            /// `basic_auth`: username and password for the `Authorization` header.
            pub basic_auth: Option<RawBasicAuth>,
            /// `authorization`: a typed credential for the `Authorization` header.
            pub authorization: Option<RawAuthorization>,
            /// `oauth2`: client credentials flow.
            pub oauth2: Option<RawOAuth2>,
            /// `bearer_token`: deprecated spelling of `authorization.credentials`.
            pub bearer_token: Option<String>,
            /// `bearer_token_file`: deprecated spelling of `authorization.credentials_file`.
            pub bearer_token_file: Option<String>,
            /// `follow_redirects` (default true).
            pub follow_redirects: Option<bool>,
            /// `enable_http2` (default true; false for remote write).
            pub enable_http2: Option<bool>,
            /// `tls_config`.
            pub tls_config: Option<RawTlsConfig>,
            /// `proxy_url`.
            pub proxy_url: Option<String>,
            /// `no_proxy`: comma-separated hosts, IPs and CIDRs that bypass the proxy.
            pub no_proxy: Option<String>,
            /// `proxy_from_environment` (default false).
            pub proxy_from_environment: Option<bool>,
            /// `proxy_connect_header`: headers sent to the proxy on `CONNECT`.
            pub proxy_connect_header: Option<BTreeMap<String, Vec<String>>>,
            /// `http_headers`: extra request headers.
            pub http_headers: Option<BTreeMap<String, RawHttpHeader>>,
        }

        impl $name {
            /// The `<http_config>` fields of this section, gathered for validation.
            pub fn http_client(&self) -> RawHttpClientConfig {
                RawHttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    oauth2: self.oauth2.clone(),
                    bearer_token: self.bearer_token.clone(),
                    bearer_token_file: self.bearer_token_file.clone(),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    tls_config: self.tls_config.clone(),
                    proxy_url: self.proxy_url.clone(),
                    no_proxy: self.no_proxy.clone(),
                    proxy_from_environment: self.proxy_from_environment,
                    proxy_connect_header: self.proxy_connect_header.clone(),
                    http_headers: self.http_headers.clone(),
                }
            }
        }
    };
}

/// Adds the service discovery lists and the `<http_config>` fields to a struct.
///
/// `static_configs`, `file_sd_configs`, `http_sd_configs` and Ember's `plugin_sd_configs`
/// are modelled; every other Prometheus mechanism is accepted as [`Opaque`] values so an
/// unmodified `prometheus.yml` loads, and reported by `unsupported_discovery()`.
macro_rules! with_discovery_and_http_client_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        // Every discovery mechanism of Prometheus 3 that Ember does not implement; the
        // registry is shared by scrape configs and Alertmanager configs, as upstream.
        with_discovery_and_http_client_fields! {
            @expand
            $(#[$meta])*
            pub struct $name {
                $( $(#[$field_meta])* pub $field: $ty, )*
            }
            unsupported: [
                aws_sd_configs, azure_sd_configs, consul_sd_configs, digitalocean_sd_configs,
                docker_sd_configs, dockerswarm_sd_configs, dns_sd_configs, ec2_sd_configs,
                eureka_sd_configs, gce_sd_configs, hetzner_sd_configs, ionos_sd_configs,
                kubernetes_sd_configs, kuma_sd_configs, lightsail_sd_configs, linode_sd_configs,
                marathon_sd_configs, nerve_sd_configs, nomad_sd_configs, oci_sd_configs,
                openstack_sd_configs, outscale_sd_configs, ovhcloud_sd_configs,
                puppetdb_sd_configs, scaleway_sd_configs, serverset_sd_configs,
                stackit_sd_configs, triton_sd_configs, uyuni_sd_configs, vultr_sd_configs,
            ]
        }
    };
    (
        @expand
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
        unsupported: [ $( $sd:ident ),* $(,)? ]
    ) => {
        with_http_client_fields! {
            $(#[$meta])*
            pub struct $name {
                $( $(#[$field_meta])* pub $field: $ty, )*
                /// `static_configs`: fixed target groups.
                pub static_configs: Option<Vec<RawStaticConfig>>,
                /// `file_sd_configs`.
                pub file_sd_configs: Option<Vec<RawFileSdConfig>>,
                /// `http_sd_configs`.
                pub http_sd_configs: Option<Vec<RawHttpSdConfig>>,
                /// `plugin_sd_configs` (Ember): targets from a discovery plugin.
                pub plugin_sd_configs: Option<Vec<RawPluginSdConfig>>,
                $(
                    #[doc = concat!("`", stringify!($sd), "`: not implemented by Ember; kept opaque.")]
                    pub $sd: Option<Vec<Opaque>>,
                )*
            }
        }

        impl $name {
            /// The service discovery sections Ember does not implement that are present,
            /// as `(field name, configs)` in declaration order.
            pub fn unsupported_discovery(&self) -> Vec<(&'static str, &[Opaque])> {
                let mut present = Vec::new();
                $(
                    if let Some(configs) = &self.$sd {
                        present.push((stringify!($sd), configs.as_slice()));
                    }
                )*
                present
            }
        }
    };
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `global`: defaults for every other section.
    pub global: Option<RawGlobalConfig>,
    /// `runtime`: Go runtime settings; recorded for compatibility.
    pub runtime: Option<RawRuntimeConfig>,
    /// `rule_files`: globs of rule files.
    pub rule_files: Option<Vec<String>>,
    /// `scrape_config_files`: globs of files holding more scrape configs.
    pub scrape_config_files: Option<Vec<String>>,
    /// `scrape_configs`.
    pub scrape_configs: Option<Vec<RawScrapeConfig>>,
    /// `alerting`.
    pub alerting: Option<RawAlertingConfig>,
    /// `remote_write`.
    pub remote_write: Option<Vec<RawRemoteWriteConfig>>,
    /// `remote_read`.
    pub remote_read: Option<Vec<RawRemoteReadConfig>>,
    /// `otlp`: the OTLP receiver.
    pub otlp: Option<RawOtlpConfig>,
    /// `storage`: runtime-reloadable storage settings.
    pub storage: Option<RawStorageConfig>,
    /// `tracing`: export of Ember's own traces.
    pub tracing: Option<RawTracingConfig>,
    /// `plugins` (Ember): WebAssembly plugins to load.
    pub plugins: Option<Vec<RawPluginConfig>>,
}

/// A file matched by `scrape_config_files`: a `scrape_configs` list and nothing else.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScrapeConfigFile {
    /// `scrape_configs`, validated against the main file's `global` section.
    pub scrape_configs: Option<Vec<RawScrapeConfig>>,
}

/// `global`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobalConfig {
    /// `scrape_interval` (default 1m).
    pub scrape_interval: Option<String>,
    /// `scrape_timeout` (default 10s, capped at the interval).
    pub scrape_timeout: Option<String>,
    /// `scrape_protocols`: negotiation order.
    pub scrape_protocols: Option<Vec<String>>,
    /// `evaluation_interval` (default 1m).
    pub evaluation_interval: Option<String>,
    /// `rule_query_offset` (default 0s).
    pub rule_query_offset: Option<String>,
    /// `external_labels`, with `$VAR` / `${VAR}` expansion.
    pub external_labels: Option<BTreeMap<String, String>>,
    /// `query_log_file`.
    pub query_log_file: Option<String>,
    /// `scrape_failure_log_file`.
    pub scrape_failure_log_file: Option<String>,
    /// `body_size_limit` (`<size>`, default 0 = none).
    pub body_size_limit: Option<String>,
    /// `sample_limit` (default 0 = none).
    pub sample_limit: Option<u64>,
    /// `label_limit`.
    pub label_limit: Option<u64>,
    /// `label_name_length_limit`.
    pub label_name_length_limit: Option<u64>,
    /// `label_value_length_limit`.
    pub label_value_length_limit: Option<u64>,
    /// `target_limit`.
    pub target_limit: Option<u64>,
    /// `keep_dropped_targets`.
    pub keep_dropped_targets: Option<u64>,
    /// `metric_name_validation_scheme`: `utf8` (default) or `legacy`.
    pub metric_name_validation_scheme: Option<String>,
    /// `metric_name_escaping_scheme`.
    pub metric_name_escaping_scheme: Option<String>,
    /// `scrape_native_histograms` (default false).
    pub scrape_native_histograms: Option<bool>,
    /// `convert_classic_histograms_to_nhcb` (default false).
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    /// `always_scrape_classic_histograms` (default false).
    pub always_scrape_classic_histograms: Option<bool>,
    /// `extra_scrape_metrics` (default false).
    pub extra_scrape_metrics: Option<bool>,
}

/// `runtime`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntimeConfig {
    /// `gogc` (default 75). Ember has no Go garbage collector; the value is only recorded.
    pub gogc: Option<i64>,
}

with_discovery_and_http_client_fields! {
    /// One entry of `scrape_configs`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawScrapeConfig {
        /// `job_name` (required, unique).
        pub job_name: String,
        /// `scrape_interval` (default: global).
        pub scrape_interval: Option<String>,
        /// `scrape_timeout` (default: global, capped at the interval).
        pub scrape_timeout: Option<String>,
        /// `scrape_protocols` (default: global, else depends on native histograms).
        pub scrape_protocols: Option<Vec<String>>,
        /// `fallback_scrape_protocol`.
        pub fallback_scrape_protocol: Option<String>,
        /// `metrics_path` (default `/metrics`).
        pub metrics_path: Option<String>,
        /// `honor_labels` (default false).
        pub honor_labels: Option<bool>,
        /// `honor_timestamps` (default true).
        pub honor_timestamps: Option<bool>,
        /// `track_timestamps_staleness` (default false).
        pub track_timestamps_staleness: Option<bool>,
        /// `scheme` (default http).
        pub scheme: Option<String>,
        /// `params`: URL query parameters.
        pub params: Option<BTreeMap<String, Vec<String>>>,
        /// `enable_compression` (default true).
        pub enable_compression: Option<bool>,
        /// `scrape_failure_log_file` (default: global).
        pub scrape_failure_log_file: Option<String>,
        /// `relabel_configs`.
        pub relabel_configs: Option<Vec<RawRelabelConfig>>,
        /// `metric_relabel_configs`.
        pub metric_relabel_configs: Option<Vec<RawRelabelConfig>>,
        /// `body_size_limit` (default: global).
        pub body_size_limit: Option<String>,
        /// `sample_limit` (default: global).
        pub sample_limit: Option<u64>,
        /// `label_limit` (default: global).
        pub label_limit: Option<u64>,
        /// `label_name_length_limit` (default: global).
        pub label_name_length_limit: Option<u64>,
        /// `label_value_length_limit` (default: global).
        pub label_value_length_limit: Option<u64>,
        /// `target_limit` (default: global).
        pub target_limit: Option<u64>,
        /// `keep_dropped_targets` (default: global).
        pub keep_dropped_targets: Option<u64>,
        /// `metric_name_validation_scheme` (default: global).
        pub metric_name_validation_scheme: Option<String>,
        /// `metric_name_escaping_scheme` (default: depends on the validation scheme).
        pub metric_name_escaping_scheme: Option<String>,
        /// `native_histogram_bucket_limit` (default 0 = none).
        pub native_histogram_bucket_limit: Option<u64>,
        /// `native_histogram_min_bucket_factor` (default 0).
        pub native_histogram_min_bucket_factor: Option<f64>,
        /// `scrape_native_histograms` (default: global).
        pub scrape_native_histograms: Option<bool>,
        /// `convert_classic_histograms_to_nhcb` (default: global).
        pub convert_classic_histograms_to_nhcb: Option<bool>,
        /// `always_scrape_classic_histograms` (default: global).
        pub always_scrape_classic_histograms: Option<bool>,
        /// `extra_scrape_metrics` (default: global).
        pub extra_scrape_metrics: Option<bool>,
        /// `plugin` (Ember): the `name` of a declared exporter plugin; each target of
        /// the job is then collected by calling the plugin instead of over HTTP.
        pub plugin: Option<String>,
    }
}

/// The `<http_config>` fields of a section, gathered by the section's `http_client()`.
#[derive(Debug, Clone, Default)]
pub struct RawHttpClientConfig {
    /// See the field of the same name on the section.
    pub basic_auth: Option<RawBasicAuth>,
    /// See the field of the same name on the section.
    pub authorization: Option<RawAuthorization>,
    /// See the field of the same name on the section.
    pub oauth2: Option<RawOAuth2>,
    /// See the field of the same name on the section.
    pub bearer_token: Option<String>,
    /// See the field of the same name on the section.
    pub bearer_token_file: Option<String>,
    /// See the field of the same name on the section.
    pub follow_redirects: Option<bool>,
    /// See the field of the same name on the section.
    pub enable_http2: Option<bool>,
    /// See the field of the same name on the section.
    pub tls_config: Option<RawTlsConfig>,
    /// See the field of the same name on the section.
    pub proxy_url: Option<String>,
    /// See the field of the same name on the section.
    pub no_proxy: Option<String>,
    /// See the field of the same name on the section.
    pub proxy_from_environment: Option<bool>,
    /// See the field of the same name on the section.
    pub proxy_connect_header: Option<BTreeMap<String, Vec<String>>>,
    /// See the field of the same name on the section.
    pub http_headers: Option<BTreeMap<String, RawHttpHeader>>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    /// `username`.
    pub username: Option<String>,
    /// `username_file`.
    pub username_file: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `password_file`.
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorization {
    /// `type` (default `Bearer`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `credentials`.
    pub credentials: Option<String>,
    /// `credentials_file`.
    pub credentials_file: Option<String>,
}

/// `oauth2`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    /// `client_id` (required).
    pub client_id: Option<String>,
    /// `grant_type` (default `client_credentials`).
    pub grant_type: Option<String>,
    /// `client_secret`.
    pub client_secret: Option<String>,
    /// `client_secret_file`.
    pub client_secret_file: Option<String>,
    /// `client_certificate_key` (JWT bearer grant).
    pub client_certificate_key: Option<String>,
    /// `client_certificate_key_file`.
    pub client_certificate_key_file: Option<String>,
    /// `client_certificate_key_id`.
    pub client_certificate_key_id: Option<String>,
    /// `signature_algorithm` (default RS256).
    pub signature_algorithm: Option<String>,
    /// `iss`.
    pub iss: Option<String>,
    /// `audience`.
    pub audience: Option<String>,
    /// `claims`.
    pub claims: Option<BTreeMap<String, Opaque>>,
    /// `scopes`.
    pub scopes: Option<Vec<String>>,
    /// `token_url` (required).
    pub token_url: Option<String>,
    /// `endpoint_params`.
    pub endpoint_params: Option<BTreeMap<String, String>>,
    /// `tls_config` for the token request.
    pub tls_config: Option<RawTlsConfig>,
    /// `proxy_url` for the token request.
    pub proxy_url: Option<String>,
    /// `no_proxy`.
    pub no_proxy: Option<String>,
    /// `proxy_from_environment`.
    pub proxy_from_environment: Option<bool>,
    /// `proxy_connect_header`.
    pub proxy_connect_header: Option<BTreeMap<String, Vec<String>>>,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsConfig {
    /// `ca`: PEM text.
    pub ca: Option<String>,
    /// `ca_file`.
    pub ca_file: Option<String>,
    /// `cert`: PEM text.
    pub cert: Option<String>,
    /// `cert_file`.
    pub cert_file: Option<String>,
    /// `key`: PEM text.
    pub key: Option<String>,
    /// `key_file`.
    pub key_file: Option<String>,
    /// `server_name`.
    pub server_name: Option<String>,
    /// `insecure_skip_verify` (default false).
    pub insecure_skip_verify: Option<bool>,
    /// `min_version`: TLS10..TLS13.
    pub min_version: Option<String>,
    /// `max_version`: TLS10..TLS13.
    pub max_version: Option<String>,
}

/// One entry of `http_headers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpHeader {
    /// `values`: plain values.
    pub values: Option<Vec<String>>,
    /// `secrets`: values hidden from the configuration page.
    pub secrets: Option<Vec<String>>,
    /// `files`: files to read values from.
    pub files: Option<Vec<String>>,
}

/// `<static_config>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaticConfig {
    /// `targets`: `host:port` addresses.
    pub targets: Option<Vec<String>>,
    /// `labels`: added to every target of the group.
    pub labels: Option<BTreeMap<String, String>>,
}

/// `<file_sd_config>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSdConfig {
    /// `files`: patterns of `.json`, `.yml` or `.yaml` files.
    pub files: Option<Vec<String>>,
    /// `refresh_interval` (default 5m).
    pub refresh_interval: Option<String>,
}

with_http_client_fields! {
    /// `<http_sd_config>`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawHttpSdConfig {
        /// `url` (required).
        pub url: Option<String>,
        /// `refresh_interval` (default 60s).
        pub refresh_interval: Option<String>,
    }
}

/// `plugin_sd_configs` entry (Ember).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginSdConfig {
    /// `plugin`: the `name` of a declared discovery plugin.
    pub plugin: String,
    /// `config`: passed to the plugin verbatim.
    pub config: Option<Opaque>,
    /// `refresh_interval` (default 60s).
    pub refresh_interval: Option<String>,
}

/// `<relabel_config>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelabelConfig {
    /// `source_labels`.
    pub source_labels: Option<Vec<String>>,
    /// `separator` (default `;`); `Some(None)` is an explicit null, meaning `""`.
    #[serde(default, deserialize_with = "present")]
    pub separator: Option<Option<String>>,
    /// `target_label`.
    pub target_label: Option<String>,
    /// `regex` (default `(.*)`); `Some(None)` is an explicit null, meaning the empty regex.
    #[serde(default, deserialize_with = "present")]
    pub regex: Option<Option<String>>,
    /// `modulus`.
    pub modulus: Option<u64>,
    /// `replacement` (default `$1`); `Some(None)` is an explicit null, meaning `""`.
    #[serde(default, deserialize_with = "present")]
    pub replacement: Option<Option<String>>,
    /// `action` (default `replace`); Ember adds `plugin`.
    pub action: Option<String>,
    /// `plugin` (Ember, with `action: plugin`): the `name` of a declared relabeler plugin.
    pub plugin: Option<String>,
}

/// Distinguishes a field written as null (`Some(None)`) from an absent one (`None`).
///
/// Prometheus's YAML decoder sets a field written as `regex:` (null) to its zero value,
/// the empty string, where an absent field keeps its default (`(.*)` for `regex`). The
/// difference changes what a relabel rule matches, so it is preserved here.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `alerting`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertingConfig {
    /// `alert_relabel_configs`.
    pub alert_relabel_configs: Option<Vec<RawRelabelConfig>>,
    /// `alertmanagers`.
    pub alertmanagers: Option<Vec<RawAlertmanagerConfig>>,
}

with_discovery_and_http_client_fields! {
    /// `<alertmanager_config>`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawAlertmanagerConfig {
        /// `timeout` (default 10s).
        pub timeout: Option<String>,
        /// `api_version` (default v2, the only one).
        pub api_version: Option<String>,
        /// `path_prefix` (default `/`).
        pub path_prefix: Option<String>,
        /// `scheme` (default http).
        pub scheme: Option<String>,
        /// `sigv4`: AWS request signing; not implemented by Ember.
        pub sigv4: Option<Opaque>,
        /// `relabel_configs`: select and rewrite discovered Alertmanagers.
        pub relabel_configs: Option<Vec<RawRelabelConfig>>,
        /// `alert_relabel_configs`: per-Alertmanager alert relabelling.
        pub alert_relabel_configs: Option<Vec<RawRelabelConfig>>,
    }
}

with_http_client_fields! {
    /// `<remote_write>`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawRemoteWriteConfig {
        /// `url` (required unless `plugin` is set).
        pub url: Option<String>,
        /// `plugin` (Ember): the `name` of a declared remote-storage plugin that receives
        /// the samples instead of a remote write endpoint.
        pub plugin: Option<String>,
        /// `name`: unique among remote write configs.
        pub name: Option<String>,
        /// `remote_timeout` (default 30s).
        pub remote_timeout: Option<String>,
        /// `headers`.
        pub headers: Option<BTreeMap<String, String>>,
        /// `write_relabel_configs`.
        pub write_relabel_configs: Option<Vec<RawRelabelConfig>>,
        /// `protobuf_message` (default `prometheus.WriteRequest`).
        pub protobuf_message: Option<String>,
        /// `send_exemplars` (default false).
        pub send_exemplars: Option<bool>,
        /// `send_native_histograms` (default false).
        pub send_native_histograms: Option<bool>,
        /// `round_robin_dns` (default false).
        pub round_robin_dns: Option<bool>,
        /// `sigv4`: not implemented by Ember.
        pub sigv4: Option<Opaque>,
        /// `azuread`: not implemented by Ember.
        pub azuread: Option<Opaque>,
        /// `google_iam`: not implemented by Ember.
        pub google_iam: Option<Opaque>,
        /// `queue_config`.
        pub queue_config: Option<RawQueueConfig>,
        /// `metadata_config`.
        pub metadata_config: Option<RawMetadataConfig>,
    }
}

/// `queue_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueueConfig {
    /// `capacity` (default 10000).
    pub capacity: Option<u64>,
    /// `max_shards` (default 50).
    pub max_shards: Option<u64>,
    /// `min_shards` (default 1).
    pub min_shards: Option<u64>,
    /// `max_samples_per_send` (default 2000).
    pub max_samples_per_send: Option<u64>,
    /// `batch_send_deadline` (default 5s).
    pub batch_send_deadline: Option<String>,
    /// `min_backoff` (default 30ms).
    pub min_backoff: Option<String>,
    /// `max_backoff` (default 5s).
    pub max_backoff: Option<String>,
    /// `retry_on_http_429` (default false).
    pub retry_on_http_429: Option<bool>,
    /// `sample_age_limit` (default 0s = none).
    pub sample_age_limit: Option<String>,
}

/// `metadata_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetadataConfig {
    /// `send` (default true).
    pub send: Option<bool>,
    /// `send_interval` (default 1m).
    pub send_interval: Option<String>,
    /// `max_samples_per_send` (default 2000).
    pub max_samples_per_send: Option<u64>,
}

with_http_client_fields! {
    /// `<remote_read>`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawRemoteReadConfig {
        /// `url` (required).
        pub url: Option<String>,
        /// `name`: unique among remote read configs.
        pub name: Option<String>,
        /// `required_matchers`.
        pub required_matchers: Option<BTreeMap<String, String>>,
        /// `remote_timeout` (default 1m).
        pub remote_timeout: Option<String>,
        /// `headers`.
        pub headers: Option<BTreeMap<String, String>>,
        /// `read_recent` (default false).
        pub read_recent: Option<bool>,
        /// `chunked_read_limit`: largest streamed frame in bytes (default 50000000).
        pub chunked_read_limit: Option<u64>,
        /// `filter_external_labels` (default true).
        pub filter_external_labels: Option<bool>,
    }
}

/// `otlp`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtlpConfig {
    /// `promote_resource_attributes`.
    pub promote_resource_attributes: Option<Vec<String>>,
    /// `promote_all_resource_attributes` (default false).
    pub promote_all_resource_attributes: Option<bool>,
    /// `ignore_resource_attributes`.
    pub ignore_resource_attributes: Option<Vec<String>>,
    /// `translation_strategy` (default `UnderscoreEscapingWithSuffixes`).
    pub translation_strategy: Option<String>,
    /// `keep_identifying_resource_attributes` (default false).
    pub keep_identifying_resource_attributes: Option<bool>,
    /// `convert_histograms_to_nhcb` (default false).
    pub convert_histograms_to_nhcb: Option<bool>,
    /// `promote_scope_metadata` (default false).
    pub promote_scope_metadata: Option<bool>,
    /// `label_name_underscore_sanitization` (default true).
    pub label_name_underscore_sanitization: Option<bool>,
    /// `label_name_preserve_multiple_underscores` (default true).
    pub label_name_preserve_multiple_underscores: Option<bool>,
}

/// `storage`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorageConfig {
    /// `tsdb`.
    pub tsdb: Option<RawTsdbConfig>,
    /// `exemplars`.
    pub exemplars: Option<RawExemplarsConfig>,
}

/// `storage.tsdb`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsdbConfig {
    /// `out_of_order_time_window` (default 0s).
    pub out_of_order_time_window: Option<String>,
    /// `stale_series_compaction_threshold` (default 0 = disabled).
    pub stale_series_compaction_threshold: Option<f64>,
    /// `chunk_encoding`.
    pub chunk_encoding: Option<RawChunkEncoding>,
    /// `retention`.
    pub retention: Option<RawRetentionConfig>,
}

/// `storage.tsdb.chunk_encoding`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChunkEncoding {
    /// `floats`: `xor` or `xor2`.
    pub floats: Option<String>,
}

/// `storage.tsdb.retention`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetentionConfig {
    /// `time`.
    pub time: Option<String>,
    /// `size` (`<size>`).
    pub size: Option<String>,
    /// `percentage` of the disk (0..=100).
    pub percentage: Option<u64>,
}

/// `storage.exemplars`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExemplarsConfig {
    /// `max_exemplars` (default 100000; 0 or less disables exemplar storage).
    pub max_exemplars: Option<i64>,
}

/// `tracing`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracingConfig {
    /// `client_type`: `grpc` (default) or `http`.
    pub client_type: Option<String>,
    /// `endpoint`: `host:port`.
    pub endpoint: Option<String>,
    /// `sampling_fraction` (default 0).
    pub sampling_fraction: Option<f64>,
    /// `insecure` (default false).
    pub insecure: Option<bool>,
    /// `headers`.
    pub headers: Option<BTreeMap<String, String>>,
    /// `compression`: empty or `gzip`.
    pub compression: Option<String>,
    /// `timeout` (default 10s).
    pub timeout: Option<String>,
    /// `tls_config`.
    pub tls_config: Option<RawTlsConfig>,
}

/// One entry of the Ember-specific `plugins` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginConfig {
    /// `name`: unique among plugins.
    pub name: String,
    /// `kind`: `discovery`, `exporter`, `relabeler` or `remote-storage`.
    pub kind: String,
    /// `path`: the WebAssembly component file.
    pub path: String,
    /// `config`: passed to the plugin verbatim.
    pub config: Option<Opaque>,
    /// `limits`.
    pub limits: Option<RawPluginLimits>,
    /// `capabilities`: what the sandbox grants.
    pub capabilities: Option<RawPluginCapabilities>,
}

/// `plugins[].limits`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginLimits {
    /// `memory` (`<size>`).
    pub memory: Option<String>,
    /// `call_timeout` (`<duration>`).
    pub call_timeout: Option<String>,
    /// `fuel`: instructions per call.
    pub fuel: Option<u64>,
}

/// `plugins[].capabilities`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginCapabilities {
    /// `allowed_hosts`: hosts the plugin may reach over HTTP.
    pub allowed_hosts: Option<Vec<String>>,
    /// `env`: environment variables visible to the plugin.
    pub env: Option<Vec<String>>,
    /// `read_only_dir`: a directory the plugin may read.
    pub read_only_dir: Option<String>,
}
