//! `remote_write` and `remote_read`.

use super::*;

impl Validator<'_> {
    pub(super) fn remote_writes(
        &mut self,
        raws: Vec<RawRemoteWriteConfig>,
        global: &GlobalConfig,
        plugins: &[PluginConfig],
    ) -> Result<Vec<RemoteWriteConfig>> {
        let mut configs = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for (index, raw) in raws.into_iter().enumerate() {
            let path = child_index("remote_write", index);
            let field = |name: &str| child_key(&path, name);
            let destination = match (raw.url.as_deref(), raw.plugin.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(self.error(
                        &field("plugin"),
                        "remote_write takes either url or plugin, not both",
                    ));
                }
                (None, Some(name)) => {
                    self.plugin_reference(
                        &field("plugin"),
                        name,
                        PluginKind::RemoteStorage,
                        "remote_write",
                        plugins,
                    )?;
                    RemoteWriteDestination::Plugin(name.to_owned())
                }
                (Some(text), None) if !text.is_empty() => {
                    RemoteWriteDestination::Url(self.http_url(&field("url"), text)?)
                }
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
                destination,
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

    pub(super) fn queue_config(
        &self,
        path: &str,
        raw: Option<&RawQueueConfig>,
    ) -> Result<QueueConfig> {
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

    pub(super) fn metadata_config(
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

    pub(super) fn remote_reads(
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
}
