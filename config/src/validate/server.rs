//! Settings of the server itself: `otlp`, `storage` and `tracing`.

use super::*;

impl Validator<'_> {
    pub(super) fn otlp(&self, raw: RawOtlpConfig, global: &GlobalConfig) -> Result<OtlpConfig> {
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

    pub(super) fn storage(&self, raw: RawStorageConfig) -> Result<StorageConfig> {
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

    pub(super) fn tracing(&self, raw: RawTracingConfig) -> Result<TracingConfig> {
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
}
