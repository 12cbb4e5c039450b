//! Scrape configs and their service discovery sections.

use super::*;

impl Validator<'_> {
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
                _ if scrape_native_histograms => ScrapeProtocol::DEFAULT_PROTO_FIRST.to_vec(),
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

        if let Some(name) = &raw.plugin {
            self.plugin_reference(
                &field("plugin"),
                name,
                PluginKind::Exporter,
                "a scrape config's plugin",
                plugins,
            )?;
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
                // An exporter plugin's targets are whatever the plugin understands
                // (a URL to probe, a database name), not necessarily `host:port`.
                check_target_addresses: raw.plugin.is_none()
                    && raw.relabel_configs.as_ref().is_none_or(Vec::is_empty),
            },
            validation,
            plugins,
            "this job",
        )?;
        let relabel_configs = self.relabel_steps(
            &field("relabel_configs"),
            raw.relabel_configs.as_ref(),
            validation,
            plugins,
        )?;
        let metric_relabel_configs = self.relabel_steps(
            &field("metric_relabel_configs"),
            raw.metric_relabel_configs.as_ref(),
            validation,
            plugins,
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
            plugin: raw.plugin.clone(),
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

    pub(super) fn service_discovery(
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
            self.plugin_reference(
                &child_key(&item, "plugin"),
                &raw.plugin,
                PluginKind::Discovery,
                "plugin_sd_configs",
                plugins,
            )?;
            discovery.plugin_sd_configs.push(PluginSdConfig {
                plugin: raw.plugin.clone(),
                config: self.plugin_config_map(&child_key(&item, "config"), raw.config.as_ref())?,
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
    pub(super) fn positive_duration(
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

    pub(super) fn static_config(
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

    pub(super) fn file_sd_config(&self, path: &str, raw: &RawFileSdConfig) -> Result<FileSdConfig> {
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
}
