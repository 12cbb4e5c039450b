//! From [`RawConfig`] to [`Config`]: parse every scalar, apply every default, enforce
//! Prometheus's rules, and say precisely where a rule is broken.
//!
//! Validation stops at the first problem, as Prometheus does, and reports it with the
//! field path and the position of that field in the file (see [`SourceMap`]). Checks
//! follow Prometheus's own (`config.Load`, `relabel.Config.Validate`, the common HTTP
//! client config), using its messages where they are clear and adding the values
//! involved where they are not.
//!
//! This module holds the [`Validator`], the scalar parsers every section shares and the
//! `global` section; each other section has a submodule adding its methods.

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
use crate::relabel::{
    PLUGIN_ACTION, RelabelConfig, RelabelStep, plugin_step_from_raw, relabel_from_raw,
};
use crate::size::parse_size;
use crate::source_map::{SourceMap, child_index, child_key};
use crate::validated::*;

mod alerting;
mod http_client;
mod plugins;
mod remote;
mod scrape;
mod server;

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
        let remote_write =
            self.remote_writes(raw.remote_write.unwrap_or_default(), &global, &plugins)?;
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
            if raw.action.as_deref() == Some(PLUGIN_ACTION) {
                return Err(self.error(
                    &child_key(&item, "action"),
                    "relabel action plugin is only available in a scrape config's relabel_configs and metric_relabel_configs",
                ));
            }
            let config = relabel_from_raw(raw, scheme).map_err(|error| {
                let field = error
                    .field
                    .map_or_else(|| item.clone(), |field| child_key(&item, field));
                self.error(&field, error.message)
            })?;
            configs.push(config);
        }
        Ok(configs)
    }

    /// `relabel_configs` or `metric_relabel_configs` of a scrape config: built-in rules
    /// and (Ember) `action: plugin` steps naming a declared relabeler plugin.
    fn relabel_steps(
        &self,
        path: &str,
        raws: Option<&Vec<RawRelabelConfig>>,
        scheme: ValidationScheme,
        plugins: &[PluginConfig],
    ) -> Result<Vec<RelabelStep>> {
        let mut steps = Vec::new();
        for (index, raw) in raws.into_iter().flatten().enumerate() {
            let item = child_index(path, index);
            let located = |error: crate::relabel::RuleError| {
                let field = error
                    .field
                    .map_or_else(|| item.clone(), |field| child_key(&item, field));
                self.error(&field, error.message)
            };
            let step = match plugin_step_from_raw(raw) {
                Some(name) => {
                    let name = name.map_err(located)?;
                    self.plugin_reference(
                        &child_key(&item, "plugin"),
                        &name,
                        PluginKind::Relabeler,
                        "a relabel step with action plugin",
                        plugins,
                    )?;
                    RelabelStep::Plugin(name)
                }
                None => RelabelStep::Rule(relabel_from_raw(raw, scheme).map_err(located)?),
            };
            steps.push(step);
        }
        Ok(steps)
    }

    /// Checks that `name` is a declared plugin of `kind`, for a reference at `path`
    /// made by `user` (for the message).
    pub(super) fn plugin_reference(
        &self,
        path: &str,
        name: &str,
        kind: PluginKind,
        user: &str,
        plugins: &[PluginConfig],
    ) -> Result<()> {
        match plugins.iter().find(|plugin| plugin.name == name) {
            None => Err(self.error(
                path,
                format!("plugin {name:?} is not declared in the plugins section"),
            )),
            Some(plugin) if plugin.kind != kind => Err(self.error(
                path,
                format!(
                    "plugin {name:?} has kind {}, but {user} needs a plugin of kind {kind}",
                    plugin.kind
                ),
            )),
            Some(_) => Ok(()),
        }
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
        text.parse::<ScrapeProtocol>().map_err(|_| {
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
