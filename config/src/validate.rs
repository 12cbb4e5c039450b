//! From [`RawConfig`] to [`Config`]: parse every scalar, apply every default, enforce
//! Prometheus's rules, and say precisely where a rule is broken.
//!
//! Validation stops at the first problem, as Prometheus does, and reports it with the
//! field path and the position of that field in the file (see [`SourceMap`]). Checks
//! follow Prometheus's own (`config.Load`, `relabel.Config.Validate`, the common HTTP
//! client config), using its messages where they are clear and adding the values
//! involved where they are not.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use url::Url;

use crate::duration::{format_duration, parse_duration};
use crate::error::{ConfigError, Located};
use crate::expand::expand_env;
use crate::names::{EscapingScheme, ValidationScheme};
use crate::raw::*;
use crate::relabel::RelabelConfig;
use crate::size::parse_size;
use crate::source_map::{SourceMap, child_index, child_key};
use crate::validated::*;

type Result<T> = std::result::Result<T, ConfigError>;

/// Headers the common HTTP client refuses in `http_headers`: Prometheus sets them itself.
const RESERVED_HTTP_HEADERS: [&str; 18] = [
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-prometheus-scrape-timeout-seconds",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Headers remote write and remote read refuse in their `headers` map.
const RESERVED_REMOTE_HEADERS: [&str; 17] = [
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Resolves a [`RawConfig`] into a [`Config`].
pub(crate) struct Validator<'a> {
    file: &'a Path,
    base_dir: PathBuf,
    map: &'a SourceMap,
    env: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<String>,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(
        file: &'a Path,
        map: &'a SourceMap,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Self {
            file,
            base_dir,
            map,
            env,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn config(mut self, raw: RawConfig, text: &str) -> Result<Config> {
        let global = self.global(raw.global.unwrap_or_default())?;
        let runtime = RuntimeConfig {
            gogc: raw
                .runtime
                .and_then(|runtime| runtime.gogc)
                .unwrap_or(DEFAULT_GOGC),
        };
        let rule_files = self.glob_list("rule_files", raw.rule_files)?;
        let scrape_config_files = self.glob_list("scrape_config_files", raw.scrape_config_files)?;
        let plugins = self.plugins(raw.plugins.unwrap_or_default())?;

        let mut scrape_configs = Vec::new();
        let mut job_paths: HashMap<String, String> = HashMap::new();
        for (index, raw_scrape) in raw.scrape_configs.unwrap_or_default().iter().enumerate() {
            let path = child_index("scrape_configs", index);
            let scrape = self.scrape_config(&path, raw_scrape, &global, &plugins)?;
            if let Some(first) = job_paths.get(&scrape.job_name) {
                return Err(self.error(
                    &child_key(&path, "job_name"),
                    format!(
                        "found multiple scrape configs with job name {:?} (first at {first})",
                        scrape.job_name
                    ),
                ));
            }
            job_paths.insert(scrape.job_name.clone(), path);
            scrape_configs.push(scrape);
        }

        let alerting = self.alerting(raw.alerting.unwrap_or_default(), &global, &plugins)?;
        let remote_write = self.remote_writes(raw.remote_write.unwrap_or_default(), &global)?;
        let remote_read = self.remote_reads(raw.remote_read.unwrap_or_default(), &global)?;
        let otlp = self.otlp(raw.otlp.unwrap_or_default(), &global)?;
        let storage = self.storage(raw.storage.unwrap_or_default())?;
        let tracing = raw
            .tracing
            .map(|tracing| self.tracing(tracing))
            .transpose()?;

        Ok(Config {
            global,
            runtime,
            rule_files,
            scrape_config_files,
            scrape_configs,
            alerting,
            remote_write,
            remote_read,
            otlp,
            storage,
            tracing,
            plugins,
            warnings: self.warnings,
            source: ConfigSource {
                path: self.file.to_path_buf(),
                text: text.to_owned(),
            },
        })
    }

    // ----- reporting -------------------------------------------------------------------

    pub(crate) fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid(Box::new(Located::new(
            self.file,
            self.map.position_of(path),
            path,
            message,
        )))
    }

    /// The warnings gathered so far, for validation that does not build a whole `Config`.
    pub(crate) fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        let located = Located::new(self.file, self.map.position_of(path), path, message);
        self.warnings.push(located.to_string());
    }

    // ----- scalars ---------------------------------------------------------------------

    fn duration(&self, path: &str, text: Option<&str>) -> Result<Option<Duration>> {
        text.map(|text| parse_duration(text).map_err(|error| self.error(path, error.to_string())))
            .transpose()
    }

    /// A duration where `0` or absence means `default`, as for Prometheus's intervals.
    fn interval(&self, path: &str, text: Option<&str>, default: Duration) -> Result<Duration> {
        Ok(self
            .duration(path, text)?
            .filter(|d| !d.is_zero())
            .unwrap_or(default))
    }

    fn size(&self, path: &str, text: Option<&str>) -> Result<Option<u64>> {
        text.map(|text| parse_size(text).map_err(|error| self.error(path, error.to_string())))
            .transpose()
    }

    /// Resolves a file name against the configuration directory, as Prometheus's
    /// `SetDirectory` does: absolute and empty names are kept as they are.
    fn file_path(&self, name: &str) -> PathBuf {
        let path = Path::new(name);
        if name.is_empty() || path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    fn file_list(&self, names: Option<Vec<String>>) -> Vec<PathBuf> {
        names
            .unwrap_or_default()
            .iter()
            .map(|name| self.file_path(name))
            .collect()
    }

    /// `rule_files` / `scrape_config_files`: globs whose `*` may only appear in the last
    /// path segment, as Prometheus requires.
    fn glob_list(&self, path: &str, patterns: Option<Vec<String>>) -> Result<Vec<PathBuf>> {
        static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
        let pattern = PATTERN.get_or_init(|| Regex::new(r"^[^*]*(\*[^/]*)?$").ok());
        let patterns = patterns.unwrap_or_default();
        for (index, glob) in patterns.iter().enumerate() {
            if !pattern
                .as_ref()
                .is_some_and(|pattern| pattern.is_match(glob))
            {
                return Err(self.error(
                    &child_index(path, index),
                    format!(
                        "invalid file path {glob:?}: only the last path segment may contain a '*'"
                    ),
                ));
            }
        }
        Ok(patterns.iter().map(|glob| self.file_path(glob)).collect())
    }

    fn http_url(&self, path: &str, text: &str) -> Result<Url> {
        let url = Url::parse(text)
            .map_err(|error| self.error(path, format!("invalid URL {text:?}: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.error(
                path,
                format!(
                    "URL scheme must be 'http' or 'https', got {:?}",
                    url.scheme()
                ),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(self.error(path, format!("host is missing in URL {text:?}")));
        }
        Ok(url)
    }

    fn scheme(&self, path: &str, text: Option<&str>) -> Result<Scheme> {
        match text {
            None | Some("http") => Ok(Scheme::Http),
            Some("https") => Ok(Scheme::Https),
            Some(other) => Err(self.error(
                path,
                format!("unknown scheme {other:?}, expected http or https"),
            )),
        }
    }

    fn label_names<'n>(
        &self,
        path: &str,
        names: impl IntoIterator<Item = &'n String>,
        scheme: ValidationScheme,
    ) -> Result<()> {
        for name in names {
            if !scheme.is_valid_label_name(name) {
                return Err(self.error(
                    &child_key(path, name),
                    format!("{name:?} is not a valid label name (metric_name_validation_scheme: {scheme})"),
                ));
            }
        }
        Ok(())
    }

    fn relabel_configs(
        &self,
        path: &str,
        raws: Option<&Vec<RawRelabelConfig>>,
        scheme: ValidationScheme,
    ) -> Result<Vec<RelabelConfig>> {
        let mut configs = Vec::new();
        for (index, raw) in raws.into_iter().flatten().enumerate() {
            let item = child_index(path, index);
            let config = RelabelConfig::from_raw(raw, scheme).map_err(|error| {
                let field = error
                    .field
                    .map_or_else(|| item.clone(), |field| child_key(&item, field));
                self.error(&field, error.message)
            })?;
            configs.push(config);
        }
        Ok(configs)
    }

    fn scrape_protocols(&self, path: &str, texts: &[String]) -> Result<Vec<ScrapeProtocol>> {
        if texts.is_empty() {
            return Err(self.error(path, "scrape_protocols cannot be empty"));
        }
        let mut protocols = Vec::new();
        for (index, text) in texts.iter().enumerate() {
            let item = child_index(path, index);
            let protocol = self.scrape_protocol(&item, text)?;
            if protocols.contains(&protocol) {
                return Err(self.error(
                    &item,
                    format!("duplicated protocol {text:?} in scrape_protocols"),
                ));
            }
            protocols.push(protocol);
        }
        Ok(protocols)
    }

    fn scrape_protocol(&self, path: &str, text: &str) -> Result<ScrapeProtocol> {
        ScrapeProtocol::from_config(text).ok_or_else(|| {
            let known: Vec<&str> = ScrapeProtocol::ALL.iter().map(|p| p.as_str()).collect();
            self.error(
                path,
                format!(
                    "unknown scrape protocol {text:?}, supported: {}",
                    known.join(", ")
                ),
            )
        })
    }

    fn validation_scheme(
        &self,
        path: &str,
        text: Option<&str>,
    ) -> Result<Option<ValidationScheme>> {
        match text {
            None | Some("") => Ok(None),
            Some(text) => ValidationScheme::from_config(text).map(Some).ok_or_else(|| {
                self.error(
                    path,
                    format!("unknown name validation scheme {text:?}, must be either '', 'legacy' or 'utf8'"),
                )
            }),
        }
    }

    fn escaping_scheme(&self, path: &str, text: Option<&str>) -> Result<Option<EscapingScheme>> {
        match text {
            None | Some("") => Ok(None),
            Some(text) => EscapingScheme::from_config(text).map(Some).ok_or_else(|| {
                self.error(
                    path,
                    format!(
                        "unknown name escaping scheme {text:?}, must be one of 'allow-utf-8', 'underscores', 'dots' or 'values'"
                    ),
                )
            }),
        }
    }

    // ----- global ----------------------------------------------------------------------

    fn global(&self, raw: RawGlobalConfig) -> Result<GlobalConfig> {
        let field = |name: &str| child_key("global", name);
        let scrape_interval = self.interval(
            &field("scrape_interval"),
            raw.scrape_interval.as_deref(),
            DEFAULT_SCRAPE_INTERVAL,
        )?;
        let explicit_timeout = self
            .duration(&field("scrape_timeout"), raw.scrape_timeout.as_deref())?
            .filter(|d| !d.is_zero());
        let scrape_timeout = match explicit_timeout {
            Some(timeout) if timeout > scrape_interval => {
                return Err(self.error(
                    &field("scrape_timeout"),
                    timeout_message(timeout, scrape_interval),
                ));
            }
            Some(timeout) => timeout,
            None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
        };
        let scrape_protocols = raw
            .scrape_protocols
            .as_deref()
            .map(|texts| self.scrape_protocols(&field("scrape_protocols"), texts))
            .transpose()?;
        let evaluation_interval = self.interval(
            &field("evaluation_interval"),
            raw.evaluation_interval.as_deref(),
            DEFAULT_EVALUATION_INTERVAL,
        )?;
        let rule_query_offset = self
            .duration(
                &field("rule_query_offset"),
                raw.rule_query_offset.as_deref(),
            )?
            .unwrap_or_default();

        let validation = self
            .validation_scheme(
                &field("metric_name_validation_scheme"),
                raw.metric_name_validation_scheme.as_deref(),
            )?
            .unwrap_or_default();
        let escaping = self.escaping_scheme(
            &field("metric_name_escaping_scheme"),
            raw.metric_name_escaping_scheme.as_deref(),
        )?;
        if validation == ValidationScheme::Legacy && escaping == Some(EscapingScheme::AllowUtf8) {
            return Err(self.error(
                &field("metric_name_escaping_scheme"),
                "metric_name_escaping_scheme allow-utf-8 requires metric_name_validation_scheme utf8",
            ));
        }

        let labels_path = field("external_labels");
        let raw_labels = raw.external_labels.unwrap_or_default();
        self.label_names(&labels_path, raw_labels.keys(), validation)?;
        let external_labels = raw_labels
            .into_iter()
            .map(|(name, value)| (name, expand_env(&value, self.env)))
            // An empty value is the same as no label in Prometheus's data model.
            .filter(|(_, value)| !value.is_empty())
            .collect();

        let limits = ScrapeLimits {
            body_size_limit: self
                .size(&field("body_size_limit"), raw.body_size_limit.as_deref())?
                .unwrap_or(0),
            sample_limit: raw.sample_limit.unwrap_or(0),
            label_limit: raw.label_limit.unwrap_or(0),
            label_name_length_limit: raw.label_name_length_limit.unwrap_or(0),
            label_value_length_limit: raw.label_value_length_limit.unwrap_or(0),
            target_limit: raw.target_limit.unwrap_or(0),
            keep_dropped_targets: raw.keep_dropped_targets.unwrap_or(0),
        };

        Ok(GlobalConfig {
            scrape_interval,
            scrape_timeout,
            scrape_protocols,
            evaluation_interval,
            rule_query_offset,
            external_labels,
            query_log_file: raw
                .query_log_file
                .as_deref()
                .map(|name| self.file_path(name)),
            scrape_failure_log_file: raw
                .scrape_failure_log_file
                .as_deref()
                .map(|name| self.file_path(name)),
            limits,
            metric_name_validation_scheme: validation,
            metric_name_escaping_scheme: escaping,
            scrape_native_histograms: raw.scrape_native_histograms.unwrap_or(false),
            convert_classic_histograms_to_nhcb: raw
                .convert_classic_histograms_to_nhcb
                .unwrap_or(false),
            always_scrape_classic_histograms: raw.always_scrape_classic_histograms.unwrap_or(false),
            extra_scrape_metrics: raw.extra_scrape_metrics.unwrap_or(false),
        })
    }

    // ----- scrape configs --------------------------------------------------------------

    pub(crate) fn scrape_config(
        &mut self,
        path: &str,
        raw: &RawScrapeConfig,
        global: &GlobalConfig,
        plugins: &[PluginConfig],
    ) -> Result<ScrapeConfig> {
        let field = |name: &str| child_key(path, name);
        if raw.job_name.is_empty() {
            return Err(self.error(&field("job_name"), "job_name is empty"));
        }
        let scrape_interval = self.interval(
            &field("scrape_interval"),
            raw.scrape_interval.as_deref(),
            global.scrape_interval,
        )?;
        let explicit_timeout = self
            .duration(&field("scrape_timeout"), raw.scrape_timeout.as_deref())?
            .filter(|d| !d.is_zero());
        let scrape_timeout = match explicit_timeout {
            Some(timeout) if timeout > scrape_interval => {
                return Err(self.error(
                    &field("scrape_timeout"),
                    timeout_message(timeout, scrape_interval),
                ));
            }
            Some(timeout) => timeout,
            None => global.scrape_timeout.min(scrape_interval),
        };

        let scrape_native_histograms = raw
            .scrape_native_histograms
            .unwrap_or(global.scrape_native_histograms);
        let scrape_protocols = match raw.scrape_protocols.as_deref() {
            Some(texts) => self.scrape_protocols(&field("scrape_protocols"), texts)?,
            None => match &global.scrape_protocols {
                Some(protocols) => protocols.clone(),
                _ if scrape_native_histograms => ScrapeProtocol::DEFAULT_NATIVE_HISTOGRAMS.to_vec(),
                _ => ScrapeProtocol::DEFAULT.to_vec(),
            },
        };
        let fallback_scrape_protocol = raw
            .fallback_scrape_protocol
            .as_deref()
            .filter(|text| !text.is_empty())
            .map(|text| self.scrape_protocol(&field("fallback_scrape_protocol"), text))
            .transpose()?;

        let own_validation = self.validation_scheme(
            &field("metric_name_validation_scheme"),
            raw.metric_name_validation_scheme.as_deref(),
        )?;
        let validation = own_validation.unwrap_or(global.metric_name_validation_scheme);
        // Like Prometheus: an unset escaping scheme follows the job's own validation
        // scheme when the job sets one, so that a job asking only for `legacy` does not
        // inherit the global `allow-utf-8`; otherwise it follows the global settings.
        let own_escaping = self.escaping_scheme(
            &field("metric_name_escaping_scheme"),
            raw.metric_name_escaping_scheme.as_deref(),
        )?;
        let escaping = match (own_escaping, own_validation) {
            (Some(escaping), _) => escaping,
            (None, Some(own)) => own.default_escaping(),
            (None, None) => global
                .metric_name_escaping_scheme
                .unwrap_or_else(|| global.metric_name_validation_scheme.default_escaping()),
        };
        if escaping == EscapingScheme::AllowUtf8 && validation != ValidationScheme::Utf8 {
            let at = if raw.metric_name_escaping_scheme.is_some() {
                field("metric_name_escaping_scheme")
            } else {
                field("metric_name_validation_scheme")
            };
            return Err(self.error(
                &at,
                "utf8 metric names requested (metric_name_escaping_scheme allow-utf-8) but the validation scheme is not utf8",
            ));
        }

        let metrics_path = raw
            .metrics_path
            .clone()
            .unwrap_or_else(|| "/metrics".to_owned());
        if !metrics_path.starts_with('/') {
            return Err(self.error(
                &field("metrics_path"),
                format!("metrics_path {metrics_path:?} must start with '/'"),
            ));
        }

        let limit = |own: Option<u64>, global: u64| own.filter(|v| *v != 0).unwrap_or(global);
        let limits = ScrapeLimits {
            body_size_limit: limit(
                self.size(&field("body_size_limit"), raw.body_size_limit.as_deref())?,
                global.limits.body_size_limit,
            ),
            sample_limit: limit(raw.sample_limit, global.limits.sample_limit),
            label_limit: limit(raw.label_limit, global.limits.label_limit),
            label_name_length_limit: limit(
                raw.label_name_length_limit,
                global.limits.label_name_length_limit,
            ),
            label_value_length_limit: limit(
                raw.label_value_length_limit,
                global.limits.label_value_length_limit,
            ),
            target_limit: limit(raw.target_limit, global.limits.target_limit),
            keep_dropped_targets: limit(
                raw.keep_dropped_targets,
                global.limits.keep_dropped_targets,
            ),
        };
        let native_histogram_min_bucket_factor =
            raw.native_histogram_min_bucket_factor.unwrap_or(0.0);
        if !(native_histogram_min_bucket_factor >= 0.0
            && native_histogram_min_bucket_factor.is_finite())
        {
            return Err(self.error(
                &field("native_histogram_min_bucket_factor"),
                format!("native_histogram_min_bucket_factor must be a non-negative number, got {native_histogram_min_bucket_factor}"),
            ));
        }

        let http_client = self.http_client(path, raw.http_client(), true)?;
        let service_discovery = self.service_discovery(
            path,
            DiscoveryFields {
                static_configs: raw.static_configs.as_deref(),
                file_sd_configs: raw.file_sd_configs.as_deref(),
                http_sd_configs: raw.http_sd_configs.as_deref(),
                plugin_sd_configs: raw.plugin_sd_configs.as_deref(),
                unsupported: raw.unsupported_discovery(),
                check_target_addresses: raw.relabel_configs.as_ref().is_none_or(Vec::is_empty),
            },
            validation,
            plugins,
            "this job",
        )?;
        let relabel_configs = self.relabel_configs(
            &field("relabel_configs"),
            raw.relabel_configs.as_ref(),
            validation,
        )?;
        let metric_relabel_configs = self.relabel_configs(
            &field("metric_relabel_configs"),
            raw.metric_relabel_configs.as_ref(),
            validation,
        )?;

        Ok(ScrapeConfig {
            job_name: raw.job_name.clone(),
            scrape_interval,
            scrape_timeout,
            scrape_protocols,
            fallback_scrape_protocol,
            metrics_path,
            honor_labels: raw.honor_labels.unwrap_or(false),
            honor_timestamps: raw.honor_timestamps.unwrap_or(true),
            track_timestamps_staleness: raw.track_timestamps_staleness.unwrap_or(false),
            scheme: self.scheme(&field("scheme"), raw.scheme.as_deref())?,
            params: raw.params.clone().unwrap_or_default(),
            enable_compression: raw.enable_compression.unwrap_or(true),
            scrape_failure_log_file: raw
                .scrape_failure_log_file
                .as_deref()
                .map(|name| self.file_path(name))
                .or_else(|| global.scrape_failure_log_file.clone()),
            http_client,
            service_discovery,
            relabel_configs,
            metric_relabel_configs,
            limits,
            metric_name_validation_scheme: validation,
            metric_name_escaping_scheme: escaping,
            native_histogram_bucket_limit: raw.native_histogram_bucket_limit.unwrap_or(0),
            native_histogram_min_bucket_factor,
            scrape_native_histograms,
            convert_classic_histograms_to_nhcb: raw
                .convert_classic_histograms_to_nhcb
                .unwrap_or(global.convert_classic_histograms_to_nhcb),
            always_scrape_classic_histograms: raw
                .always_scrape_classic_histograms
                .unwrap_or(global.always_scrape_classic_histograms),
            extra_scrape_metrics: raw
                .extra_scrape_metrics
                .unwrap_or(global.extra_scrape_metrics),
        })
    }

    // ----- service discovery -----------------------------------------------------------

    fn service_discovery(
        &mut self,
        path: &str,
        fields: DiscoveryFields<'_>,
        scheme: ValidationScheme,
        plugins: &[PluginConfig],
        owner: &str,
    ) -> Result<ServiceDiscoveryConfigs> {
        let mut discovery = ServiceDiscoveryConfigs::default();
        let static_path = child_key(path, "static_configs");
        for (index, raw) in fields.static_configs.unwrap_or_default().iter().enumerate() {
            let item = child_index(&static_path, index);
            discovery.static_configs.push(self.static_config(
                &item,
                raw,
                scheme,
                fields.check_target_addresses,
            )?);
        }
        let file_path = child_key(path, "file_sd_configs");
        for (index, raw) in fields
            .file_sd_configs
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item = child_index(&file_path, index);
            discovery
                .file_sd_configs
                .push(self.file_sd_config(&item, raw)?);
        }
        let http_path = child_key(path, "http_sd_configs");
        for (index, raw) in fields
            .http_sd_configs
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item = child_index(&http_path, index);
            let url_path = child_key(&item, "url");
            let url = match raw.url.as_deref() {
                Some(text) if !text.is_empty() => self.http_url(&url_path, text)?,
                _ => return Err(self.error(&url_path, "URL is missing")),
            };
            discovery.http_sd_configs.push(HttpSdConfig {
                url,
                refresh_interval: self.positive_duration(
                    &child_key(&item, "refresh_interval"),
                    raw.refresh_interval.as_deref(),
                    DEFAULT_HTTP_SD_REFRESH_INTERVAL,
                )?,
                http_client: self.http_client(&item, raw.http_client(), true)?,
            });
        }
        let plugin_path = child_key(path, "plugin_sd_configs");
        for (index, raw) in fields
            .plugin_sd_configs
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item = child_index(&plugin_path, index);
            let name_path = child_key(&item, "plugin");
            match plugins.iter().find(|plugin| plugin.name == raw.plugin) {
                None => {
                    return Err(self.error(
                        &name_path,
                        format!(
                            "plugin {:?} is not declared in the plugins section",
                            raw.plugin
                        ),
                    ));
                }
                Some(plugin) if plugin.kind != PluginKind::Discovery => {
                    return Err(self.error(
                        &name_path,
                        format!("plugin {:?} has kind {}, but plugin_sd_configs needs a discovery plugin", raw.plugin, plugin.kind),
                    ));
                }
                Some(_) => {}
            }
            discovery.plugin_sd_configs.push(PluginSdConfig {
                plugin: raw.plugin.clone(),
                config: raw.config.clone().unwrap_or_default(),
                refresh_interval: self.positive_duration(
                    &child_key(&item, "refresh_interval"),
                    raw.refresh_interval.as_deref(),
                    DEFAULT_HTTP_SD_REFRESH_INTERVAL,
                )?,
            });
        }
        for (mechanism, configs) in fields.unsupported {
            self.warn(
                &child_key(path, mechanism),
                format!(
                    "Ember does not implement {mechanism} service discovery; {owner} will find no targets from it"
                ),
            );
            discovery
                .unsupported
                .extend(configs.iter().map(|config| UnsupportedSdConfig {
                    mechanism: mechanism.to_owned(),
                    config: config.clone(),
                }));
        }
        Ok(discovery)
    }

    /// A duration that must not be zero, defaulting when absent.
    fn positive_duration(
        &self,
        path: &str,
        text: Option<&str>,
        default: Duration,
    ) -> Result<Duration> {
        match self.duration(path, text)? {
            Some(duration) if duration.is_zero() => {
                Err(self.error(path, "must be greater than zero"))
            }
            Some(duration) => Ok(duration),
            None => Ok(default),
        }
    }

    fn static_config(
        &self,
        path: &str,
        raw: &RawStaticConfig,
        scheme: ValidationScheme,
        check_addresses: bool,
    ) -> Result<StaticConfig> {
        let targets = raw.targets.clone().unwrap_or_default();
        let targets_path = child_key(path, "targets");
        for (index, target) in targets.iter().enumerate().filter(|_| check_addresses) {
            // Prometheus's CheckTargetAddress: an address is host[:port], never a URL path.
            if target.contains('/') {
                return Err(self.error(
                    &child_index(&targets_path, index),
                    format!("{target:?} is not a valid hostname: a target is host:port, without scheme or path"),
                ));
            }
        }
        let labels = raw.labels.clone().unwrap_or_default();
        self.label_names(&child_key(path, "labels"), labels.keys(), scheme)?;
        Ok(StaticConfig { targets, labels })
    }

    fn file_sd_config(&self, path: &str, raw: &RawFileSdConfig) -> Result<FileSdConfig> {
        static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
        let files_path = child_key(path, "files");
        let names = raw.files.clone().unwrap_or_default();
        if names.is_empty() {
            return Err(self.error(
                &files_path,
                "file service discovery config must contain at least one path name",
            ));
        }
        let pattern = PATTERN
            .get_or_init(|| Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$").ok());
        for (index, name) in names.iter().enumerate() {
            if !pattern
                .as_ref()
                .is_some_and(|pattern| pattern.is_match(name))
            {
                return Err(self.error(
                    &child_index(&files_path, index),
                    format!(
                        "path name {name:?} is not valid for file discovery: it must end in .json, .yml or .yaml and only the last path segment may contain a '*'"
                    ),
                ));
            }
        }
        Ok(FileSdConfig {
            files: names.iter().map(|name| self.file_path(name)).collect(),
            refresh_interval: self.positive_duration(
                &child_key(path, "refresh_interval"),
                raw.refresh_interval.as_deref(),
                DEFAULT_FILE_SD_REFRESH_INTERVAL,
            )?,
        })
    }

    // ----- HTTP client -----------------------------------------------------------------

    fn http_client(
        &self,
        path: &str,
        raw: RawHttpClientConfig,
        enable_http2_default: bool,
    ) -> Result<HttpClientConfig> {
        let field = |name: &str| child_key(path, name);
        let has_bearer = raw.bearer_token.as_deref().is_some_and(|t| !t.is_empty())
            || raw
                .bearer_token_file
                .as_deref()
                .is_some_and(|t| !t.is_empty());
        if raw.bearer_token.is_some() && raw.bearer_token_file.is_some() {
            return Err(self.error(
                &field("bearer_token_file"),
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if raw.basic_auth.is_some() && has_bearer {
            return Err(self.error(
                &field("basic_auth"),
                "at most one of basic_auth, bearer_token & bearer_token_file must be configured",
            ));
        }

        let basic_auth = match &raw.basic_auth {
            None => None,
            Some(basic) => {
                let auth_path = field("basic_auth");
                Some(BasicAuth {
                    username: self.secret_source(
                        &auth_path,
                        "username",
                        basic.username.as_deref(),
                        basic.username_file.as_deref(),
                    )?,
                    password: self.secret_source(
                        &auth_path,
                        "password",
                        basic.password.as_deref(),
                        basic.password_file.as_deref(),
                    )?,
                })
            }
        };

        let authorization = match &raw.authorization {
            Some(authorization) => {
                let auth_path = field("authorization");
                if has_bearer {
                    return Err(self.error(
                        &auth_path,
                        "authorization is not compatible with bearer_token & bearer_token_file",
                    ));
                }
                if raw.basic_auth.is_some() || raw.oauth2.is_some() {
                    return Err(self.error(
                        &auth_path,
                        "at most one of basic_auth, oauth2 & authorization must be configured",
                    ));
                }
                let kind = authorization
                    .kind
                    .as_deref()
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .unwrap_or("Bearer");
                if kind.eq_ignore_ascii_case("basic") {
                    return Err(self.error(
                        &child_key(&auth_path, "type"),
                        r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
                    ));
                }
                Some(Authorization {
                    kind: kind.to_owned(),
                    credentials: self.secret_source(
                        &auth_path,
                        "credentials",
                        authorization.credentials.as_deref(),
                        authorization.credentials_file.as_deref(),
                    )?,
                })
            }
            // The deprecated bearer token fields become an `authorization` of type Bearer.
            None => match (
                raw.bearer_token.as_deref(),
                raw.bearer_token_file.as_deref(),
            ) {
                (Some(token), _) if !token.is_empty() => Some(Authorization {
                    kind: "Bearer".to_owned(),
                    credentials: Some(SecretSource::Inline(Secret::new(token))),
                }),
                (_, Some(file)) if !file.is_empty() => Some(Authorization {
                    kind: "Bearer".to_owned(),
                    credentials: Some(SecretSource::File(self.file_path(file))),
                }),
                _ => None,
            },
        };

        let oauth2 = match &raw.oauth2 {
            None => None,
            Some(oauth2) => {
                let oauth_path = field("oauth2");
                if raw.basic_auth.is_some() {
                    return Err(self.error(
                        &oauth_path,
                        "at most one of basic_auth, oauth2 & authorization must be configured",
                    ));
                }
                Some(self.oauth2(&oauth_path, oauth2)?)
            }
        };

        let mut http_headers = BTreeMap::new();
        for (name, header) in raw.http_headers.unwrap_or_default() {
            let header_path = child_key(&field("http_headers"), &name);
            if RESERVED_HTTP_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(self.error(
                    &header_path,
                    format!("setting header {name:?} is not allowed"),
                ));
            }
            http_headers.insert(
                name,
                HttpHeader {
                    values: header.values.unwrap_or_default(),
                    secrets: header
                        .secrets
                        .unwrap_or_default()
                        .into_iter()
                        .map(Secret::new)
                        .collect(),
                    files: self.file_list(header.files),
                },
            );
        }

        Ok(HttpClientConfig {
            basic_auth,
            authorization,
            oauth2,
            follow_redirects: raw.follow_redirects.unwrap_or(true),
            enable_http2: raw.enable_http2.unwrap_or(enable_http2_default),
            tls: self.tls(&field("tls_config"), raw.tls_config.as_ref())?,
            proxy: self.proxy(
                path,
                raw.proxy_url.as_deref(),
                raw.no_proxy.as_deref(),
                raw.proxy_from_environment,
                raw.proxy_connect_header,
            )?,
            http_headers,
        })
    }

    /// `<name>` / `<name>_file`, at most one of them.
    fn secret_source(
        &self,
        path: &str,
        name: &str,
        inline: Option<&str>,
        file: Option<&str>,
    ) -> Result<Option<SecretSource>> {
        let inline = inline.filter(|value| !value.is_empty());
        let file = file.filter(|value| !value.is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(self.error(
                &child_key(path, &format!("{name}_file")),
                format!("at most one of {name} & {name}_file must be configured"),
            )),
            (Some(value), None) => Ok(Some(SecretSource::Inline(Secret::new(value)))),
            (None, Some(file)) => Ok(Some(SecretSource::File(self.file_path(file)))),
            (None, None) => Ok(None),
        }
    }

    fn oauth2(&self, path: &str, raw: &RawOAuth2) -> Result<OAuth2> {
        let field = |name: &str| child_key(path, name);
        let client_id = raw.client_id.clone().filter(|id| !id.is_empty());
        let Some(client_id) = client_id else {
            return Err(self.error(&field("client_id"), "oauth2 client_id must be configured"));
        };
        let token_url = match raw.token_url.as_deref() {
            Some(text) if !text.is_empty() => self.http_url(&field("token_url"), text)?,
            _ => return Err(self.error(&field("token_url"), "oauth2 token_url must be configured")),
        };
        Ok(OAuth2 {
            client_id,
            grant_type: raw
                .grant_type
                .clone()
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "client_credentials".to_owned()),
            client_secret: self.secret_source(
                path,
                "client_secret",
                raw.client_secret.as_deref(),
                raw.client_secret_file.as_deref(),
            )?,
            client_certificate_key: self.secret_source(
                path,
                "client_certificate_key",
                raw.client_certificate_key.as_deref(),
                raw.client_certificate_key_file.as_deref(),
            )?,
            client_certificate_key_id: raw.client_certificate_key_id.clone(),
            signature_algorithm: raw
                .signature_algorithm
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "RS256".to_owned()),
            iss: raw.iss.clone(),
            audience: raw.audience.clone(),
            claims: raw.claims.clone().unwrap_or_default(),
            scopes: raw.scopes.clone().unwrap_or_default(),
            token_url,
            endpoint_params: raw.endpoint_params.clone().unwrap_or_default(),
            tls: self.tls(&field("tls_config"), raw.tls_config.as_ref())?,
            proxy: self.proxy(
                path,
                raw.proxy_url.as_deref(),
                raw.no_proxy.as_deref(),
                raw.proxy_from_environment,
                raw.proxy_connect_header.clone(),
            )?,
        })
    }

    fn tls(&self, path: &str, raw: Option<&RawTlsConfig>) -> Result<TlsConfig> {
        let Some(raw) = raw else {
            return Ok(TlsConfig::default());
        };
        let field = |name: &str| child_key(path, name);
        let value_source =
            |name: &str, inline: Option<&str>, file: Option<&str>| -> Result<Option<ValueSource>> {
                match (
                    inline.filter(|v| !v.is_empty()),
                    file.filter(|v| !v.is_empty()),
                ) {
                    (Some(_), Some(_)) => Err(self.error(
                        &field(&format!("{name}_file")),
                        format!("at most one of {name} and {name}_file must be configured"),
                    )),
                    (Some(value), None) => Ok(Some(ValueSource::Inline(value.to_owned()))),
                    (None, Some(file)) => Ok(Some(ValueSource::File(self.file_path(file)))),
                    (None, None) => Ok(None),
                }
            };
        let ca = value_source("ca", raw.ca.as_deref(), raw.ca_file.as_deref())?;
        let cert = value_source("cert", raw.cert.as_deref(), raw.cert_file.as_deref())?;
        let key = self.secret_source(path, "key", raw.key.as_deref(), raw.key_file.as_deref())?;
        match (&cert, &key) {
            (Some(_), None) => {
                return Err(self.error(path, "exactly one of key or key_file must be configured when a client certificate is configured"));
            }
            (None, Some(_)) => {
                return Err(self.error(path, "exactly one of cert or cert_file must be configured when a client key is configured"));
            }
            _ => {}
        }
        let version = |name: &str, text: Option<&str>| -> Result<Option<TlsVersion>> {
            text.filter(|t| !t.is_empty())
                .map(|text| {
                    TlsVersion::from_config(text).ok_or_else(|| {
                        self.error(&field(name), format!("unknown TLS version {text:?}, expected one of TLS10, TLS11, TLS12, TLS13"))
                    })
                })
                .transpose()
        };
        let min_version = version("min_version", raw.min_version.as_deref())?;
        let max_version = version("max_version", raw.max_version.as_deref())?;
        if let (Some(min), Some(max)) = (min_version, max_version)
            && max < min
        {
            return Err(self.error(
                &field("max_version"),
                "tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified",
            ));
        }
        Ok(TlsConfig {
            ca,
            cert,
            key,
            server_name: raw.server_name.clone().filter(|name| !name.is_empty()),
            insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
            min_version,
            max_version,
        })
    }

    fn proxy(
        &self,
        path: &str,
        url: Option<&str>,
        no_proxy: Option<&str>,
        from_environment: Option<bool>,
        connect_headers: Option<BTreeMap<String, Vec<String>>>,
    ) -> Result<ProxyConfig> {
        let field = |name: &str| child_key(path, name);
        let url = url.filter(|u| !u.is_empty());
        let no_proxy = no_proxy.filter(|n| !n.is_empty());
        let from_environment = from_environment.unwrap_or(false);
        let connect_headers = connect_headers.unwrap_or_default();
        if from_environment && url.is_some() {
            return Err(self.error(
                &field("proxy_url"),
                "if proxy_from_environment is configured, proxy_url must not be configured",
            ));
        }
        if from_environment && no_proxy.is_some() {
            return Err(self.error(
                &field("no_proxy"),
                "if proxy_from_environment is configured, no_proxy must not be configured",
            ));
        }
        if url.is_none() && no_proxy.is_some() {
            return Err(self.error(
                &field("no_proxy"),
                "if no_proxy is configured, proxy_url must also be configured",
            ));
        }
        if !connect_headers.is_empty() && url.is_none() && !from_environment {
            return Err(self.error(
                &field("proxy_connect_header"),
                "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
            ));
        }
        let url = url
            .map(|text| {
                let parsed = Url::parse(text).map_err(|error| {
                    self.error(
                        &field("proxy_url"),
                        format!("invalid proxy URL {text:?}: {error}"),
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https" | "socks5") {
                    return Err(self.error(
                        &field("proxy_url"),
                        format!(
                            "proxy URL scheme must be http, https or socks5, got {:?}",
                            parsed.scheme()
                        ),
                    ));
                }
                Ok(parsed)
            })
            .transpose()?;
        Ok(ProxyConfig {
            url,
            no_proxy: no_proxy.map(str::to_owned),
            from_environment,
            connect_headers: connect_headers
                .into_iter()
                .map(|(name, values)| (name, values.into_iter().map(Secret::new).collect()))
                .collect(),
        })
    }

    /// At most one way to authenticate a request may be configured.
    fn single_auth_method(&self, path: &str, methods: &[(&str, bool)]) -> Result<()> {
        let configured: Vec<&str> = methods
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();
        if configured.len() > 1 {
            let names: Vec<&str> = methods.iter().map(|(name, _)| *name).collect();
            return Err(self.error(
                &child_key(path, configured[1]),
                format!(
                    "at most one of {} must be configured, found {}",
                    names.join(", "),
                    configured.join(" and ")
                ),
            ));
        }
        Ok(())
    }

    fn remote_headers(
        &self,
        path: &str,
        headers: Option<BTreeMap<String, String>>,
    ) -> Result<BTreeMap<String, String>> {
        let headers = headers.unwrap_or_default();
        for name in headers.keys() {
            if name.eq_ignore_ascii_case("authorization") {
                return Err(self.error(
                    &child_key(path, name),
                    "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
                ));
            }
            if RESERVED_REMOTE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(self.error(
                    &child_key(path, name),
                    format!("{name} is a reserved header. It must not be changed"),
                ));
            }
        }
        Ok(headers)
    }

    // ----- alerting --------------------------------------------------------------------

    fn alerting(
        &mut self,
        raw: RawAlertingConfig,
        global: &GlobalConfig,
        plugins: &[PluginConfig],
    ) -> Result<AlertingConfig> {
        let scheme = global.metric_name_validation_scheme;
        let alert_relabel_configs = self.relabel_configs(
            "alerting.alert_relabel_configs",
            raw.alert_relabel_configs.as_ref(),
            scheme,
        )?;
        let mut alertmanagers = Vec::new();
        for (index, raw) in raw.alertmanagers.unwrap_or_default().iter().enumerate() {
            let path = child_index("alerting.alertmanagers", index);
            let field = |name: &str| child_key(&path, name);
            match raw.api_version.as_deref() {
                None | Some("") | Some("v2") => {}
                Some(other) => {
                    return Err(self.error(
                        &field("api_version"),
                        format!(
                            "expected Alertmanager api version to be one of [v2] but got {other:?}"
                        ),
                    ));
                }
            }
            self.single_auth_method(
                &path,
                &[
                    ("basic_auth", raw.basic_auth.is_some()),
                    (
                        "authorization",
                        raw.authorization.is_some()
                            || raw.bearer_token.is_some()
                            || raw.bearer_token_file.is_some(),
                    ),
                    ("oauth2", raw.oauth2.is_some()),
                    ("sigv4", raw.sigv4.is_some()),
                ],
            )?;
            if raw.sigv4.is_some() {
                self.warn(&field("sigv4"), "Ember does not implement sigv4 request signing; alerts to these Alertmanagers are sent unsigned");
            }
            let service_discovery = self.service_discovery(
                &path,
                DiscoveryFields {
                    static_configs: raw.static_configs.as_deref(),
                    file_sd_configs: raw.file_sd_configs.as_deref(),
                    http_sd_configs: raw.http_sd_configs.as_deref(),
                    plugin_sd_configs: raw.plugin_sd_configs.as_deref(),
                    unsupported: raw.unsupported_discovery(),
                    check_target_addresses: raw.relabel_configs.as_ref().is_none_or(Vec::is_empty),
                },
                scheme,
                plugins,
                "this Alertmanager set",
            )?;
            alertmanagers.push(AlertmanagerConfig {
                timeout: self.positive_duration(
                    &field("timeout"),
                    raw.timeout.as_deref(),
                    DEFAULT_ALERTMANAGER_TIMEOUT,
                )?,
                path_prefix: raw
                    .path_prefix
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/".to_owned()),
                scheme: self.scheme(&field("scheme"), raw.scheme.as_deref())?,
                http_client: self.http_client(&path, raw.http_client(), true)?,
                service_discovery,
                relabel_configs: self.relabel_configs(
                    &field("relabel_configs"),
                    raw.relabel_configs.as_ref(),
                    scheme,
                )?,
                alert_relabel_configs: self.relabel_configs(
                    &field("alert_relabel_configs"),
                    raw.alert_relabel_configs.as_ref(),
                    scheme,
                )?,
                sigv4: raw.sigv4.clone(),
            });
        }
        Ok(AlertingConfig {
            alert_relabel_configs,
            alertmanagers,
        })
    }

    // ----- remote write / read ---------------------------------------------------------

    fn remote_writes(
        &mut self,
        raws: Vec<RawRemoteWriteConfig>,
        global: &GlobalConfig,
    ) -> Result<Vec<RemoteWriteConfig>> {
        let mut configs = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for (index, raw) in raws.into_iter().enumerate() {
            let path = child_index("remote_write", index);
            let field = |name: &str| child_key(&path, name);
            let url = match raw.url.as_deref() {
                Some(text) if !text.is_empty() => self.http_url(&field("url"), text)?,
                _ => return Err(self.error(&path, "url for remote_write is empty")),
            };
            if let Some(name) = raw.name.as_deref().filter(|n| !n.is_empty()) {
                if let Some(first) = names.get(name) {
                    return Err(self.error(&field("name"), format!("found multiple remote write configs with name {name:?} (first at {first})")));
                }
                names.insert(name.to_owned(), path.clone());
            }
            self.single_auth_method(
                &path,
                &[
                    ("basic_auth", raw.basic_auth.is_some()),
                    (
                        "authorization",
                        raw.authorization.is_some()
                            || raw.bearer_token.is_some()
                            || raw.bearer_token_file.is_some(),
                    ),
                    ("oauth2", raw.oauth2.is_some()),
                    ("sigv4", raw.sigv4.is_some()),
                    ("azuread", raw.azuread.is_some()),
                    ("google_iam", raw.google_iam.is_some()),
                ],
            )?;
            for (name, set) in [
                ("sigv4", raw.sigv4.is_some()),
                ("azuread", raw.azuread.is_some()),
                ("google_iam", raw.google_iam.is_some()),
            ] {
                if set {
                    self.warn(
                        &field(name),
                        format!("Ember does not implement {name} authentication; requests to this endpoint are sent without it"),
                    );
                }
            }
            let protobuf_message = match raw.protobuf_message.as_deref() {
                None | Some("") => RemoteWriteMessage::V1,
                Some(text) => RemoteWriteMessage::from_config(text).ok_or_else(|| {
                    self.error(
                        &field("protobuf_message"),
                        format!("unknown remote write protobuf message {text:?}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"),
                    )
                })?,
            };
            let queue_config =
                self.queue_config(&field("queue_config"), raw.queue_config.as_ref())?;
            let metadata_config =
                self.metadata_config(&field("metadata_config"), raw.metadata_config.as_ref())?;
            configs.push(RemoteWriteConfig {
                url,
                name: raw.name.clone().filter(|n| !n.is_empty()),
                remote_timeout: self.positive_duration(
                    &field("remote_timeout"),
                    raw.remote_timeout.as_deref(),
                    DEFAULT_REMOTE_WRITE_TIMEOUT,
                )?,
                headers: self.remote_headers(&field("headers"), raw.headers.clone())?,
                write_relabel_configs: self.relabel_configs(
                    &field("write_relabel_configs"),
                    raw.write_relabel_configs.as_ref(),
                    global.metric_name_validation_scheme,
                )?,
                protobuf_message,
                send_exemplars: raw.send_exemplars.unwrap_or(false),
                send_native_histograms: raw.send_native_histograms.unwrap_or(false),
                round_robin_dns: raw.round_robin_dns.unwrap_or(false),
                // Prometheus defaults HTTP/2 off for remote write: one connection per shard
                // spreads load better than multiplexing all shards over one.
                http_client: self.http_client(&path, raw.http_client(), false)?,
                queue_config,
                metadata_config,
                sigv4: raw.sigv4,
                azuread: raw.azuread,
                google_iam: raw.google_iam,
            });
        }
        Ok(configs)
    }

    fn queue_config(&self, path: &str, raw: Option<&RawQueueConfig>) -> Result<QueueConfig> {
        let defaults = QueueConfig::default();
        let Some(raw) = raw else {
            return Ok(defaults);
        };
        let field = |name: &str| child_key(path, name);
        let config = QueueConfig {
            capacity: raw.capacity.unwrap_or(defaults.capacity),
            max_shards: raw.max_shards.unwrap_or(defaults.max_shards),
            min_shards: raw.min_shards.unwrap_or(defaults.min_shards),
            max_samples_per_send: raw
                .max_samples_per_send
                .unwrap_or(defaults.max_samples_per_send),
            batch_send_deadline: self
                .duration(
                    &field("batch_send_deadline"),
                    raw.batch_send_deadline.as_deref(),
                )?
                .unwrap_or(defaults.batch_send_deadline),
            min_backoff: self
                .duration(&field("min_backoff"), raw.min_backoff.as_deref())?
                .unwrap_or(defaults.min_backoff),
            max_backoff: self
                .duration(&field("max_backoff"), raw.max_backoff.as_deref())?
                .unwrap_or(defaults.max_backoff),
            retry_on_http_429: raw.retry_on_http_429.unwrap_or(defaults.retry_on_http_429),
            sample_age_limit: self
                .duration(&field("sample_age_limit"), raw.sample_age_limit.as_deref())?
                .unwrap_or(defaults.sample_age_limit),
        };
        if config.min_shards > config.max_shards {
            return Err(self.error(
                &field("min_shards"),
                format!(
                    "min_shards {} is greater than max_shards {}",
                    config.min_shards, config.max_shards
                ),
            ));
        }
        if config.min_backoff > config.max_backoff {
            return Err(self.error(
                &field("min_backoff"),
                format!(
                    "min_backoff {} is greater than max_backoff {}",
                    format_duration(config.min_backoff),
                    format_duration(config.max_backoff)
                ),
            ));
        }
        Ok(config)
    }

    fn metadata_config(
        &self,
        path: &str,
        raw: Option<&RawMetadataConfig>,
    ) -> Result<MetadataConfig> {
        let defaults = MetadataConfig::default();
        let Some(raw) = raw else {
            return Ok(defaults);
        };
        Ok(MetadataConfig {
            send: raw.send.unwrap_or(defaults.send),
            send_interval: self
                .duration(
                    &child_key(path, "send_interval"),
                    raw.send_interval.as_deref(),
                )?
                .unwrap_or(defaults.send_interval),
            max_samples_per_send: raw
                .max_samples_per_send
                .unwrap_or(defaults.max_samples_per_send),
        })
    }

    fn remote_reads(
        &self,
        raws: Vec<RawRemoteReadConfig>,
        global: &GlobalConfig,
    ) -> Result<Vec<RemoteReadConfig>> {
        let mut configs = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for (index, raw) in raws.into_iter().enumerate() {
            let path = child_index("remote_read", index);
            let field = |name: &str| child_key(&path, name);
            let url = match raw.url.as_deref() {
                Some(text) if !text.is_empty() => self.http_url(&field("url"), text)?,
                _ => return Err(self.error(&path, "url for remote_read is empty")),
            };
            if let Some(name) = raw.name.as_deref().filter(|n| !n.is_empty()) {
                if let Some(first) = names.get(name) {
                    return Err(self.error(&field("name"), format!("found multiple remote read configs with name {name:?} (first at {first})")));
                }
                names.insert(name.to_owned(), path.clone());
            }
            let required_matchers = raw.required_matchers.clone().unwrap_or_default();
            self.label_names(
                &field("required_matchers"),
                required_matchers.keys(),
                global.metric_name_validation_scheme,
            )?;
            configs.push(RemoteReadConfig {
                url,
                name: raw.name.clone().filter(|n| !n.is_empty()),
                required_matchers,
                remote_timeout: self.positive_duration(
                    &field("remote_timeout"),
                    raw.remote_timeout.as_deref(),
                    DEFAULT_REMOTE_READ_TIMEOUT,
                )?,
                headers: self.remote_headers(&field("headers"), raw.headers.clone())?,
                read_recent: raw.read_recent.unwrap_or(false),
                chunked_read_limit: raw
                    .chunked_read_limit
                    .filter(|limit| *limit != 0)
                    .unwrap_or(DEFAULT_CHUNKED_READ_LIMIT),
                filter_external_labels: raw.filter_external_labels.unwrap_or(true),
                http_client: self.http_client(&path, raw.http_client(), true)?,
            });
        }
        Ok(configs)
    }

    // ----- otlp, storage, tracing ------------------------------------------------------

    fn otlp(&self, raw: RawOtlpConfig, global: &GlobalConfig) -> Result<OtlpConfig> {
        let field = |name: &str| child_key("otlp", name);
        let defaults = OtlpConfig::default();
        let promote_path = field("promote_resource_attributes");
        let mut promote = Vec::new();
        let mut seen = HashSet::new();
        for (index, attribute) in raw
            .promote_resource_attributes
            .clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item = child_index(&promote_path, index);
            let attribute = attribute.trim();
            if attribute.is_empty() {
                return Err(self.error(&item, "empty promoted OTel resource attribute"));
            }
            if !seen.insert(attribute.to_owned()) {
                return Err(self.error(
                    &item,
                    format!("duplicated promoted OTel resource attribute {attribute:?}"),
                ));
            }
            promote.push(attribute.to_owned());
        }
        let promote_all = raw.promote_all_resource_attributes.unwrap_or(false);
        if promote_all && !promote.is_empty() {
            return Err(self.error(
                &promote_path,
                "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously",
            ));
        }
        let ignore_path = field("ignore_resource_attributes");
        let mut ignore = Vec::new();
        for (index, attribute) in raw
            .ignore_resource_attributes
            .clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let attribute = attribute.trim();
            if attribute.is_empty() {
                return Err(self.error(
                    &child_index(&ignore_path, index),
                    "empty ignored OTel resource attribute",
                ));
            }
            ignore.push(attribute.to_owned());
        }
        if !ignore.is_empty() && !promote_all {
            return Err(self.error(
                &ignore_path,
                "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true",
            ));
        }
        let translation_strategy = match raw.translation_strategy.as_deref() {
            None | Some("") => defaults.translation_strategy,
            Some(text) => TranslationStrategy::from_config(text).ok_or_else(|| {
                self.error(
                    &field("translation_strategy"),
                    format!("unsupported OTLP translation strategy {text:?}, expected one of UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, NoTranslation"),
                )
            })?,
        };
        if translation_strategy.needs_utf8()
            && global.metric_name_validation_scheme == ValidationScheme::Legacy
        {
            return Err(self.error(
                &field("translation_strategy"),
                "OTLP translation strategy keeps UTF-8 names, which is not allowed when metric_name_validation_scheme is legacy",
            ));
        }
        Ok(OtlpConfig {
            promote_resource_attributes: promote,
            promote_all_resource_attributes: promote_all,
            ignore_resource_attributes: ignore,
            translation_strategy,
            keep_identifying_resource_attributes: raw
                .keep_identifying_resource_attributes
                .unwrap_or(false),
            convert_histograms_to_nhcb: raw.convert_histograms_to_nhcb.unwrap_or(false),
            promote_scope_metadata: raw.promote_scope_metadata.unwrap_or(false),
            label_name_underscore_sanitization: raw
                .label_name_underscore_sanitization
                .unwrap_or(defaults.label_name_underscore_sanitization),
            label_name_preserve_multiple_underscores: raw
                .label_name_preserve_multiple_underscores
                .unwrap_or(defaults.label_name_preserve_multiple_underscores),
        })
    }

    fn storage(&self, raw: RawStorageConfig) -> Result<StorageConfig> {
        let tsdb = match raw.tsdb {
            None => TsdbConfig::default(),
            Some(tsdb) => {
                let field = |name: &str| child_key("storage.tsdb", name);
                let threshold = tsdb.stale_series_compaction_threshold.unwrap_or(0.0);
                if !(0.0..=1.0).contains(&threshold) {
                    return Err(self.error(
                        &field("stale_series_compaction_threshold"),
                        format!("stale_series_compaction_threshold must be between 0 and 1, got {threshold}"),
                    ));
                }
                let float_chunk_encoding = match tsdb
                    .chunk_encoding
                    .and_then(|encoding| encoding.floats)
                    .as_deref()
                {
                    None | Some("") => None,
                    Some("xor") => Some(FloatChunkEncoding::Xor),
                    Some("xor2") => Some(FloatChunkEncoding::Xor2),
                    Some(other) => {
                        return Err(self.error(
                            "storage.tsdb.chunk_encoding.floats",
                            format!("unknown float chunk encoding {other:?}, expected xor or xor2"),
                        ));
                    }
                };
                let retention = match tsdb.retention {
                    None => RetentionConfig::default(),
                    Some(retention) => {
                        let field = |name: &str| child_key("storage.tsdb.retention", name);
                        let percentage = retention.percentage.unwrap_or(0);
                        let percentage = u8::try_from(percentage).ok().filter(|p| *p <= 100).ok_or_else(|| {
                            self.error(&field("percentage"), format!("retention percentage must be between 0 and 100, got {percentage}"))
                        })?;
                        RetentionConfig {
                            time: self.duration(&field("time"), retention.time.as_deref())?,
                            size: self
                                .size(&field("size"), retention.size.as_deref())?
                                .unwrap_or(0),
                            percentage,
                        }
                    }
                };
                TsdbConfig {
                    out_of_order_time_window: self
                        .duration(
                            &field("out_of_order_time_window"),
                            tsdb.out_of_order_time_window.as_deref(),
                        )?
                        .unwrap_or_default(),
                    stale_series_compaction_threshold: threshold,
                    float_chunk_encoding,
                    retention,
                }
            }
        };
        let exemplars = ExemplarsConfig {
            max_exemplars: raw
                .exemplars
                .and_then(|exemplars| exemplars.max_exemplars)
                .unwrap_or(DEFAULT_MAX_EXEMPLARS),
        };
        Ok(StorageConfig { tsdb, exemplars })
    }

    fn tracing(&self, raw: RawTracingConfig) -> Result<TracingConfig> {
        let field = |name: &str| child_key("tracing", name);
        let client_type = match raw.client_type.as_deref() {
            None | Some("") | Some("grpc") => TracingClientType::Grpc,
            Some("http") => TracingClientType::Http,
            Some(other) => {
                return Err(self.error(
                    &field("client_type"),
                    format!(
                        "expected tracing client type to be one of [grpc, http], but got {other:?}"
                    ),
                ));
            }
        };
        let Some(endpoint) = raw.endpoint.clone().filter(|e| !e.is_empty()) else {
            return Err(self.error(&field("endpoint"), "tracing endpoint must be set"));
        };
        let headers = raw.headers.unwrap_or_default();
        for name in headers.keys() {
            let header_path = child_key(&field("headers"), name);
            if name.eq_ignore_ascii_case("authorization") {
                return Err(self.error(
                    &header_path,
                    "custom authorization header configuration is not yet supported",
                ));
            }
            if RESERVED_REMOTE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(self.error(
                    &header_path,
                    format!("{name} is a reserved header. It must not be changed"),
                ));
            }
        }
        let sampling_fraction = raw.sampling_fraction.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&sampling_fraction) {
            return Err(self.error(
                &field("sampling_fraction"),
                format!("sampling_fraction must be between 0 and 1, got {sampling_fraction}"),
            ));
        }
        let gzip_compression = match raw.compression.as_deref() {
            None | Some("") => false,
            Some("gzip") => true,
            Some(other) => {
                return Err(self.error(
                    &field("compression"),
                    format!("invalid compression type {other:?} provided, valid options: gzip"),
                ));
            }
        };
        Ok(TracingConfig {
            client_type,
            endpoint,
            sampling_fraction,
            insecure: raw.insecure.unwrap_or(false),
            headers,
            gzip_compression,
            timeout: self.interval(
                &field("timeout"),
                raw.timeout.as_deref(),
                DEFAULT_TRACING_TIMEOUT,
            )?,
            tls: self.tls(&field("tls_config"), raw.tls_config.as_ref())?,
        })
    }

    // ----- plugins ---------------------------------------------------------------------

    fn plugins(&self, raws: Vec<RawPluginConfig>) -> Result<Vec<PluginConfig>> {
        let mut plugins: Vec<PluginConfig> = Vec::new();
        let mut first_paths: HashMap<String, String> = HashMap::new();
        for (index, raw) in raws.into_iter().enumerate() {
            let path = child_index("plugins", index);
            let field = |name: &str| child_key(&path, name);
            if raw.name.is_empty() {
                return Err(self.error(&field("name"), "plugin name is empty"));
            }
            if let Some(first) = first_paths.get(&raw.name) {
                return Err(self.error(
                    &field("name"),
                    format!(
                        "plugin name {:?} is declared twice (first at {first})",
                        raw.name
                    ),
                ));
            }
            first_paths.insert(raw.name.clone(), path.clone());
            let kind = PluginKind::from_config(&raw.kind).ok_or_else(|| {
                let known: Vec<&str> = PluginKind::ALL.iter().map(|kind| kind.as_str()).collect();
                self.error(
                    &field("kind"),
                    format!(
                        "unknown plugin kind {:?}, expected one of {}",
                        raw.kind,
                        known.join(", ")
                    ),
                )
            })?;
            if raw.path.is_empty() {
                return Err(self.error(&field("path"), "plugin path is empty"));
            }
            let limits = match &raw.limits {
                None => PluginLimits::default(),
                Some(limits) => {
                    let limits_path = field("limits");
                    let memory_path = child_key(&limits_path, "memory");
                    let memory = self
                        .size(&memory_path, limits.memory.as_deref())?
                        .unwrap_or(DEFAULT_PLUGIN_MEMORY);
                    if memory == 0 {
                        return Err(self.error(
                            &memory_path,
                            "plugin memory limit must be greater than zero",
                        ));
                    }
                    if limits.fuel == Some(0) {
                        return Err(self.error(
                            &child_key(&limits_path, "fuel"),
                            "plugin fuel must be greater than zero when set",
                        ));
                    }
                    PluginLimits {
                        memory,
                        call_timeout: self.positive_duration(
                            &child_key(&limits_path, "call_timeout"),
                            limits.call_timeout.as_deref(),
                            DEFAULT_PLUGIN_CALL_TIMEOUT,
                        )?,
                        fuel: limits.fuel,
                    }
                }
            };
            let capabilities = match &raw.capabilities {
                None => PluginCapabilities::default(),
                Some(capabilities) => {
                    let capabilities_path = field("capabilities");
                    let allowed_hosts = capabilities.allowed_hosts.clone().unwrap_or_default();
                    let env = capabilities.env.clone().unwrap_or_default();
                    for (list, values) in [("allowed_hosts", &allowed_hosts), ("env", &env)] {
                        if let Some(index) = values.iter().position(|value| value.trim().is_empty())
                        {
                            return Err(self.error(
                                &child_index(&child_key(&capabilities_path, list), index),
                                format!("{list} entries must not be empty"),
                            ));
                        }
                    }
                    PluginCapabilities {
                        allowed_hosts,
                        env,
                        read_only_dir: capabilities
                            .read_only_dir
                            .as_deref()
                            .map(|dir| self.file_path(dir)),
                    }
                }
            };
            plugins.push(PluginConfig {
                name: raw.name,
                kind,
                path: self.file_path(&raw.path),
                config: raw.config.unwrap_or_default(),
                limits,
                capabilities,
            });
        }
        Ok(plugins)
    }
}

/// The discovery fields of a scrape config or Alertmanager config, borrowed.
struct DiscoveryFields<'r> {
    static_configs: Option<&'r [RawStaticConfig]>,
    file_sd_configs: Option<&'r [RawFileSdConfig]>,
    http_sd_configs: Option<&'r [RawHttpSdConfig]>,
    plugin_sd_configs: Option<&'r [RawPluginSdConfig]>,
    unsupported: Vec<(&'static str, &'r [Opaque])>,
    /// Prometheus rejects URL-like static targets only when no relabelling could turn
    /// them into addresses.
    check_target_addresses: bool,
}

fn timeout_message(timeout: Duration, interval: Duration) -> String {
    format!(
        "scrape timeout {} is greater than scrape interval {}",
        format_duration(timeout),
        format_duration(interval)
    )
}
