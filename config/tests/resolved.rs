//! What validation produces: defaults, inheritance from `global`, parsed values,
//! resolved paths and warnings, checked on the fixtures in `testdata/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ember_config::*;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn test_env(name: &str) -> Option<String> {
    (name == "EMBER_TEST_REPLICA").then(|| "replica-a".to_owned())
}

fn fixture(name: &str) -> Config {
    let path = testdata().join(name);
    let text = std::fs::read_to_string(&path).expect("fixture is readable");
    parse_with_env(&text, &path, &test_env).unwrap_or_else(|error| panic!("{error}"))
}

fn parse_str(yaml: &str) -> Result<Config, ConfigError> {
    parse_with_env(yaml, Path::new("prometheus.yml"), &test_env)
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

#[test]
fn minimal_config_gets_every_documented_default() {
    let config = fixture("minimal.good.yml");
    let global = &config.global;
    assert_eq!(global.scrape_interval, secs(60));
    assert_eq!(global.scrape_timeout, secs(10));
    assert_eq!(global.evaluation_interval, secs(60));
    assert_eq!(global.rule_query_offset, Duration::ZERO);
    assert_eq!(global.metric_name_validation_scheme, ValidationScheme::Utf8);
    assert_eq!(global.limits, ScrapeLimits::default());
    assert_eq!(config.runtime.gogc, 75);

    let job = &config.scrape_configs[0];
    assert_eq!(job.scrape_interval, secs(60));
    assert_eq!(job.scrape_timeout, secs(10));
    assert_eq!(job.scrape_protocols, ScrapeProtocol::DEFAULT.to_vec());
    assert_eq!(job.fallback_scrape_protocol, None);
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(job.scheme, Scheme::Http);
    assert!(!job.honor_labels);
    assert!(job.honor_timestamps);
    assert!(!job.track_timestamps_staleness);
    assert!(job.enable_compression);
    assert!(job.http_client.follow_redirects);
    assert!(job.http_client.enable_http2);
    assert_eq!(job.metric_name_escaping_scheme, EscapingScheme::AllowUtf8);
    assert_eq!(
        job.service_discovery.static_configs[0].targets,
        ["localhost:9100"]
    );

    assert_eq!(config.storage.exemplars.max_exemplars, 100_000);
    assert_eq!(config.storage.tsdb, TsdbConfig::default());
    assert_eq!(config.otlp, OtlpConfig::default());
    assert!(config.otlp.label_name_underscore_sanitization);
    assert_eq!(config.tracing, None);
    assert!(config.alerting.alertmanagers.is_empty());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn scrape_timeout_defaults_to_the_shorter_of_timeout_and_interval() {
    let config = parse_str(
        "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 3s\n  - job_name: c\n    scrape_interval: 1m\n",
    )
    .expect("valid");
    assert_eq!(config.global.scrape_timeout, secs(5));
    let timeouts: Vec<Duration> = config
        .scrape_configs
        .iter()
        .map(|job| job.scrape_timeout)
        .collect();
    assert_eq!(timeouts, [secs(5), secs(3), secs(5)]);
}

#[test]
fn zero_intervals_mean_the_default() {
    let config =
        parse_str("global:\n  scrape_interval: 0s\n  evaluation_interval: 0\n").expect("valid");
    assert_eq!(config.global.scrape_interval, secs(60));
    assert_eq!(config.global.evaluation_interval, secs(60));
}

#[test]
fn native_histograms_change_the_default_protocols() {
    let config =
        parse_str("global:\n  scrape_native_histograms: true\nscrape_configs:\n  - job_name: a\n")
            .expect("valid");
    assert_eq!(
        config.scrape_configs[0].scrape_protocols,
        ScrapeProtocol::DEFAULT_PROTO_FIRST.to_vec()
    );
}

#[test]
fn escaping_scheme_follows_prometheus_inference() {
    let config = parse_str(
        "global:
  metric_name_escaping_scheme: dots
scrape_configs:
  - job_name: inherits-global
  - job_name: own-legacy
    metric_name_validation_scheme: legacy
  - job_name: own-utf8
    metric_name_validation_scheme: utf8
  - job_name: explicit
    metric_name_escaping_scheme: values
",
    )
    .expect("valid");
    let escaping: Vec<EscapingScheme> = config
        .scrape_configs
        .iter()
        .map(|job| job.metric_name_escaping_scheme)
        .collect();
    assert_eq!(
        escaping,
        [
            EscapingScheme::Dots,
            EscapingScheme::Underscores,
            EscapingScheme::AllowUtf8,
            EscapingScheme::Values
        ]
    );
    let legacy_global = parse_str(
        "global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: a\n",
    )
    .expect("valid");
    assert_eq!(
        legacy_global.scrape_configs[0].metric_name_escaping_scheme,
        EscapingScheme::Underscores
    );
    assert_eq!(
        legacy_global.scrape_configs[0].metric_name_validation_scheme,
        ValidationScheme::Legacy
    );
}

#[test]
fn url_targets_are_allowed_when_relabelling_can_fix_them() {
    let config = fixture("blackbox.good.yml");
    let job = &config.scrape_configs[0];
    assert_eq!(
        job.service_discovery.static_configs[0].targets[0],
        "https://example.org"
    );
    assert_eq!(job.params["module"], ["http_2xx"]);
}

#[test]
fn comprehensive_global_section() {
    let config = fixture("comprehensive.good.yml");
    let global = &config.global;
    assert_eq!(global.scrape_interval, secs(30));
    assert_eq!(global.scrape_timeout, secs(20));
    assert_eq!(
        global.scrape_protocols,
        Some(vec![
            ScrapeProtocol::PrometheusProto,
            ScrapeProtocol::OpenMetricsText1_0_0,
            ScrapeProtocol::PrometheusText0_0_4
        ])
    );
    assert_eq!(global.evaluation_interval, secs(45));
    assert_eq!(global.rule_query_offset, secs(15));
    let labels: BTreeMap<&str, &str> = global
        .external_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        BTreeMap::from([
            ("price", "$5"),
            ("region", "eu-west-1"),
            ("replica", "replica-a")
        ])
    );
    assert_eq!(
        global.query_log_file,
        Some(testdata().join("logs/queries.log"))
    );
    assert_eq!(
        global.scrape_failure_log_file,
        Some(PathBuf::from("/var/log/ember/scrape-failures.log"))
    );
    assert_eq!(global.limits.body_size_limit, 100 * 1024 * 1024);
    assert_eq!(global.limits.sample_limit, 50_000);
    assert_eq!(global.limits.keep_dropped_targets, 100);
    assert_eq!(
        global.metric_name_escaping_scheme,
        Some(EscapingScheme::Underscores)
    );
    assert!(global.scrape_native_histograms && global.convert_classic_histograms_to_nhcb);
    assert!(global.always_scrape_classic_histograms && global.extra_scrape_metrics);
    assert_eq!(config.runtime.gogc, 50);
    assert_eq!(
        config.rule_files,
        [
            testdata().join("rules/*.yml"),
            PathBuf::from("/etc/ember/rules/alerts.yml")
        ]
    );
    assert_eq!(
        config.scrape_config_files,
        [testdata().join("scrape.d/*.yml")]
    );
}

#[test]
fn comprehensive_scrape_config_with_every_field() {
    let config = fixture("comprehensive.good.yml");
    let job = config.scrape_config("everything").expect("job");
    assert_eq!(job.scrape_interval, secs(90));
    assert_eq!(job.scrape_timeout, secs(60));
    assert_eq!(
        job.scrape_protocols,
        [
            ScrapeProtocol::OpenMetricsText1_0_0,
            ScrapeProtocol::PrometheusText1_0_0
        ]
    );
    assert_eq!(
        job.fallback_scrape_protocol,
        Some(ScrapeProtocol::PrometheusText0_0_4)
    );
    assert_eq!(job.metrics_path, "/custom/metrics");
    assert!(job.honor_labels && !job.honor_timestamps && job.track_timestamps_staleness);
    assert_eq!(job.scheme, Scheme::Https);
    assert_eq!(job.params["match[]"], ["{job=\"x\"}", "up"]);
    assert!(!job.enable_compression);
    assert_eq!(
        job.scrape_failure_log_file,
        Some(testdata().join("failures.log"))
    );

    let http = &job.http_client;
    let basic = http.basic_auth.as_ref().expect("basic auth");
    assert_eq!(
        basic.username,
        Some(SecretSource::Inline(Secret::new("ember")))
    );
    assert_eq!(
        basic.password,
        Some(SecretSource::File(testdata().join("secrets/password")))
    );
    assert!(!http.follow_redirects && !http.enable_http2);
    assert_eq!(
        http.tls.ca,
        Some(ValueSource::File(testdata().join("certs/ca.pem")))
    );
    assert_eq!(
        http.tls.key,
        Some(SecretSource::File(testdata().join("certs/client-key.pem")))
    );
    assert_eq!(http.tls.server_name.as_deref(), Some("targets.example.org"));
    assert!(http.tls.insecure_skip_verify);
    assert_eq!(
        (http.tls.min_version, http.tls.max_version),
        (Some(TlsVersion::Tls12), Some(TlsVersion::Tls13))
    );
    assert_eq!(
        http.proxy.url.as_ref().map(|url| url.as_str()),
        Some("http://proxy.example.org:3128/")
    );
    assert_eq!(http.proxy.no_proxy.as_deref(), Some("localhost,10.0.0.0/8"));
    assert_eq!(http.proxy.connect_headers["Proxy-Token"].len(), 2);
    let header = &http.http_headers["X-Tenant"];
    assert_eq!(header.values, ["team-a"]);
    assert_eq!(header.secrets, [Secret::new("s3cr3t")]);
    assert_eq!(header.files, [testdata().join("secrets/header")]);

    let discovery = &job.service_discovery;
    assert_eq!(discovery.static_configs.len(), 2);
    assert_eq!(discovery.static_configs[0].labels["env"], "prod");
    assert_eq!(discovery.file_sd_configs[0].refresh_interval, secs(600));
    assert_eq!(
        discovery.file_sd_configs[0].files[0],
        testdata().join("targets/*.json")
    );
    let http_sd = &discovery.http_sd_configs[0];
    assert_eq!(
        http_sd.url.as_str(),
        "https://sd.example.org/targets?zone=a"
    );
    assert_eq!(http_sd.refresh_interval, secs(120));
    let authorization = http_sd
        .http_client
        .authorization
        .as_ref()
        .expect("authorization");
    assert_eq!(authorization.kind, "Token");
    assert!(
        matches!(http_sd.http_client.tls.ca, Some(ValueSource::Inline(ref pem)) if pem.contains("BEGIN CERTIFICATE"))
    );

    let rules = ember_config::rules_only(&job.relabel_configs).expect("built-in rules only");
    let actions: Vec<RelabelAction> = rules.iter().map(|rule| rule.action).collect();
    assert_eq!(
        actions,
        [
            RelabelAction::Replace,
            RelabelAction::Replace,
            RelabelAction::HashMod,
            RelabelAction::Keep,
            RelabelAction::Drop,
            RelabelAction::KeepEqual,
            RelabelAction::DropEqual,
            RelabelAction::LabelMap,
            RelabelAction::LabelDrop,
            RelabelAction::LabelKeep,
            RelabelAction::Lowercase,
            RelabelAction::Uppercase,
        ]
    );
    let first = &rules[0];
    assert_eq!(first.separator, "|");
    assert_eq!(first.regex.as_str(), r"(.*):\d+");
    assert!(first.regex.is_match("host:9100") && !first.regex.is_match("x host:9100 y"));
    assert_eq!(first.replacement, "${1}");
    assert_eq!(rules[2].modulus, 8);
    assert_eq!(
        job.metric_relabel_configs[0].rule().map(|rule| rule.action),
        Some(RelabelAction::Drop)
    );

    let limits = job.limits;
    assert_eq!(limits.body_size_limit, 10 * 1024 * 1024);
    assert_eq!((limits.sample_limit, limits.label_limit), (1000, 30));
    assert_eq!(
        (
            limits.label_name_length_limit,
            limits.label_value_length_limit
        ),
        (64, 512)
    );
    assert_eq!((limits.target_limit, limits.keep_dropped_targets), (10, 5));
    assert_eq!(job.metric_name_validation_scheme, ValidationScheme::Legacy);
    assert_eq!(job.metric_name_escaping_scheme, EscapingScheme::Dots);
    assert_eq!(job.native_histogram_bucket_limit, 160);
    assert_eq!(job.native_histogram_min_bucket_factor, 1.1);
    assert!(!job.scrape_native_histograms && !job.convert_classic_histograms_to_nhcb);
    assert!(!job.always_scrape_classic_histograms && !job.extra_scrape_metrics);
}

#[test]
fn scrape_configs_inherit_from_global() {
    let config = fixture("comprehensive.good.yml");
    let job = config.scrape_config("inherits").expect("job");
    assert_eq!(job.scrape_interval, secs(30));
    assert_eq!(job.scrape_timeout, secs(20));
    assert_eq!(
        job.scrape_protocols,
        config
            .global
            .scrape_protocols
            .clone()
            .expect("global protocols")
    );
    assert_eq!(job.limits, config.global.limits);
    assert_eq!(
        job.scrape_failure_log_file,
        config.global.scrape_failure_log_file
    );
    assert_eq!(job.metric_name_escaping_scheme, EscapingScheme::Underscores);
    assert!(job.scrape_native_histograms && job.convert_classic_histograms_to_nhcb);
    assert!(job.always_scrape_classic_histograms && job.extra_scrape_metrics);
    let oauth2 = job.http_client.oauth2.as_ref().expect("oauth2");
    assert_eq!(oauth2.client_id, "ember");
    assert_eq!(oauth2.grant_type, "client_credentials");
    assert_eq!(oauth2.signature_algorithm, "RS256");
    assert_eq!(oauth2.token_url.as_str(), "https://auth.example.org/token");
    assert_eq!(
        oauth2.client_secret,
        Some(SecretSource::File(testdata().join("secrets/oauth")))
    );
    assert!(oauth2.tls.insecure_skip_verify && oauth2.proxy.from_environment);
    assert_eq!(
        job.service_discovery.static_configs[0].labels["app.kubernetes.io/name"],
        "shop"
    );

    let bearer = config.scrape_config("bearer").expect("job");
    let authorization = bearer
        .http_client
        .authorization
        .as_ref()
        .expect("authorization");
    assert_eq!(authorization.kind, "Bearer");
    assert_eq!(
        authorization.credentials,
        Some(SecretSource::Inline(Secret::new("t0ken")))
    );
}

#[test]
fn comprehensive_alerting_and_remote_sections() {
    let config = fixture("comprehensive.good.yml");
    assert_eq!(
        config.alerting.alert_relabel_configs[0].action,
        RelabelAction::LabelDrop
    );
    let am = &config.alerting.alertmanagers[0];
    assert_eq!(am.timeout, secs(5));
    assert_eq!(am.path_prefix, "/alertmanager");
    assert_eq!(am.scheme, Scheme::Https);
    assert_eq!(
        am.service_discovery.static_configs[0].targets,
        ["am-1:9093", "am-2:9093"]
    );
    assert_eq!(
        am.service_discovery.file_sd_configs[0].refresh_interval,
        secs(300)
    );
    assert_eq!(am.relabel_configs[0].target_label, "__alerts_path__");
    assert_eq!(am.alert_relabel_configs.len(), 1);

    let primary = &config.remote_write[0];
    assert_eq!(
        primary.url().expect("an endpoint").as_str(),
        "https://metrics.example.org/api/v1/push"
    );
    assert_eq!(primary.name.as_deref(), Some("primary"));
    assert_eq!(primary.remote_timeout, secs(45));
    assert_eq!(primary.headers["X-Scope-OrgID"], "tenant-1");
    assert_eq!(primary.protobuf_message, RemoteWriteMessage::V2);
    assert!(primary.send_exemplars && primary.send_native_histograms && primary.round_robin_dns);
    assert!(primary.http_client.enable_http2);
    let queue = primary.queue_config;
    assert_eq!(
        (
            queue.capacity,
            queue.max_shards,
            queue.min_shards,
            queue.max_samples_per_send
        ),
        (20_000, 100, 2, 5_000)
    );
    assert_eq!(
        (
            queue.batch_send_deadline,
            queue.min_backoff,
            queue.max_backoff
        ),
        (secs(10), Duration::from_millis(50), secs(10))
    );
    assert!(queue.retry_on_http_429);
    assert_eq!(queue.sample_age_limit, secs(3600));
    assert_eq!(
        primary.metadata_config,
        MetadataConfig {
            send: false,
            send_interval: secs(120),
            max_samples_per_send: 500
        }
    );

    let secondary = &config.remote_write[1];
    assert_eq!(secondary.protobuf_message, RemoteWriteMessage::V1);
    assert!(
        !secondary.http_client.enable_http2,
        "remote write defaults HTTP/2 off"
    );
    assert_eq!(secondary.remote_timeout, secs(30));
    assert_eq!(secondary.queue_config, QueueConfig::default());
    assert_eq!(
        secondary.queue_config.min_backoff,
        Duration::from_millis(30)
    );
    assert_eq!(secondary.metadata_config, MetadataConfig::default());
    assert!(secondary.sigv4.is_some());

    let read = &config.remote_read[0];
    assert_eq!(read.required_matchers["source"], "archive");
    assert_eq!(read.remote_timeout, secs(120));
    assert!(read.read_recent && !read.filter_external_labels);
}

#[test]
fn comprehensive_otlp_storage_tracing_plugins() {
    let config = fixture("comprehensive.good.yml");
    let otlp = &config.otlp;
    assert!(otlp.promote_all_resource_attributes);
    assert_eq!(
        otlp.ignore_resource_attributes,
        ["process.pid", "host.arch"]
    );
    assert_eq!(
        otlp.translation_strategy,
        TranslationStrategy::NoUtf8EscapingWithSuffixes
    );
    assert!(
        otlp.keep_identifying_resource_attributes
            && otlp.convert_histograms_to_nhcb
            && otlp.promote_scope_metadata
    );
    assert!(
        !otlp.label_name_underscore_sanitization && !otlp.label_name_preserve_multiple_underscores
    );

    let tsdb = &config.storage.tsdb;
    assert_eq!(tsdb.out_of_order_time_window, secs(1800));
    assert_eq!(tsdb.stale_series_compaction_threshold, 0.5);
    assert_eq!(tsdb.float_chunk_encoding, Some(FloatChunkEncoding::Xor2));
    assert_eq!(
        tsdb.retention,
        RetentionConfig {
            time: Some(secs(30 * 86_400)),
            size: 50 << 30,
            percentage: 80
        }
    );
    assert_eq!(config.storage.exemplars.max_exemplars, 500_000);

    let tracing = config.tracing.as_ref().expect("tracing");
    assert_eq!(tracing.client_type, TracingClientType::Http);
    assert_eq!(tracing.endpoint, "otel-collector:4318");
    assert_eq!(tracing.sampling_fraction, 0.25);
    assert!(tracing.insecure && tracing.gzip_compression);
    assert_eq!(tracing.timeout, secs(5));
    assert_eq!(tracing.tls.server_name.as_deref(), Some("otel.example.org"));

    assert_eq!(config.plugins[0].kind, PluginKind::Relabeler);
    assert_eq!(config.plugins[0].limits, PluginLimits::default());
}

#[test]
fn comprehensive_warnings_name_their_location() {
    let config = fixture("comprehensive.good.yml");
    let file = testdata().join("comprehensive.good.yml");
    let prefix = file.display().to_string();
    assert_eq!(config.warnings.len(), 2, "{:#?}", config.warnings);
    assert!(
        config.warnings[0].starts_with(&format!("{prefix}:")),
        "{}",
        config.warnings[0]
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains(": scrape_config_files: scrape_config_files are only read when"))
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains(": remote_write[1].sigv4: Ember does not implement sigv4"))
    );
}

#[test]
fn unsupported_discovery_loads_with_warnings() {
    let config = fixture("kubernetes-consul.good.yml");
    let mechanisms: Vec<&str> = config
        .scrape_configs
        .iter()
        .flat_map(|job| {
            job.service_discovery
                .unsupported
                .iter()
                .map(|sd| sd.mechanism.as_str())
        })
        .collect();
    assert_eq!(
        mechanisms,
        [
            "kubernetes_sd_configs",
            "kubernetes_sd_configs",
            "consul_sd_configs",
            "dns_sd_configs"
        ]
    );
    let pods = config.scrape_config("kubernetes-pods").expect("job");
    assert_eq!(pods.service_discovery.unsupported[0].config["role"], "pod");
    assert_eq!(pods.relabel_configs.len(), 6);
    assert_eq!(
        config.alerting.alertmanagers[0]
            .service_discovery
            .unsupported
            .len(),
        1
    );

    assert_eq!(config.warnings.len(), 5, "{:#?}", config.warnings);
    assert!(
        config.warnings[0].ends_with(
            ":10:5: scrape_configs[0].kubernetes_sd_configs: Ember does not implement kubernetes_sd_configs service discovery; this job will find no targets from it"
        ),
        "{}",
        config.warnings[0]
    );
    assert!(config.warnings[4].contains("alerting.alertmanagers[0].kubernetes_sd_configs"));

    let apiserver = config.scrape_config("kubernetes-apiservers").expect("job");
    let authorization = apiserver
        .http_client
        .authorization
        .as_ref()
        .expect("bearer_token_file becomes authorization");
    assert_eq!(authorization.kind, "Bearer");
    assert_eq!(
        authorization.credentials,
        Some(SecretSource::File(PathBuf::from(
            "/var/run/secrets/kubernetes.io/serviceaccount/token"
        )))
    );
    assert_eq!(config.global.external_labels["cluster"], "production");
}

#[test]
fn prometheus_example_config() {
    let config = fixture("prometheus-example.good.yml");
    assert_eq!(config.global.scrape_interval, secs(15));
    assert_eq!(config.global.evaluation_interval, secs(15));
    assert_eq!(config.global.scrape_timeout, secs(10));
    assert!(config.rule_files.is_empty());
    let am = &config.alerting.alertmanagers[0];
    assert!(am.service_discovery.static_configs[0].targets.is_empty());
    assert_eq!(am.timeout, secs(10));
    assert_eq!(am.path_prefix, "/");
    let job = &config.scrape_configs[0];
    assert_eq!(job.job_name, "prometheus");
    assert_eq!(job.scrape_interval, secs(15));
    assert_eq!(
        job.service_discovery.static_configs[0].labels["app"],
        "prometheus"
    );
}

#[test]
fn plugin_section_and_plugin_discovery() {
    let config = fixture("plugins.good.yml");
    let netbox = config.plugin("netbox").expect("plugin");
    assert_eq!(netbox.kind, PluginKind::Discovery);
    assert_eq!(
        netbox.path,
        testdata().join("plugins/netbox_discovery.wasm")
    );
    assert_eq!(netbox.config["site"], "ams1,fra1");
    assert_eq!(netbox.config["endpoint"], "https://netbox.example.org/api");
    assert_eq!(
        netbox.limits,
        PluginLimits {
            memory: 32 << 20,
            call_timeout: secs(2),
            fuel: Some(50_000_000)
        }
    );
    assert_eq!(netbox.capabilities.allowed_hosts, ["netbox.example.org"]);
    assert_eq!(netbox.capabilities.env, ["NETBOX_TOKEN"]);
    assert_eq!(
        netbox.capabilities.read_only_dir,
        Some(PathBuf::from("/etc/ember/netbox"))
    );
    assert_eq!(
        config.plugin("redis").expect("plugin").path,
        PathBuf::from("/opt/ember/plugins/redis_exporter.wasm")
    );
    assert_eq!(
        config.plugin("kafka").expect("plugin").kind,
        PluginKind::RemoteStorage
    );
    assert!(config.plugin("redis").expect("plugin").config.is_empty());
    assert_eq!(
        config.plugin("kafka").expect("plugin").config["brokers"],
        "kafka-1:9092"
    );

    let sd = &config.scrape_configs[0].service_discovery.plugin_sd_configs;
    assert_eq!(sd.len(), 2);
    assert_eq!(sd[0].refresh_interval, secs(120));
    assert_eq!(sd[0].config["role"], "device");
    assert_eq!(sd[1].refresh_interval, secs(60));
    assert!(sd[1].config.is_empty());
    assert_eq!(sd[0].config["tags"], "monitored");

    let redis = config.scrape_config("redis").expect("exporter job");
    assert_eq!(redis.plugin.as_deref(), Some("redis"));
    assert_eq!(
        redis.service_discovery.static_configs[0].targets,
        ["redis://cache-1:6379/0"]
    );
    let steps: Vec<Option<&str>> = redis
        .relabel_configs
        .iter()
        .map(RelabelStep::plugin)
        .collect();
    assert_eq!(steps, [None, Some("tenant-rewrite")]);
    assert_eq!(
        redis.metric_relabel_configs[0],
        RelabelStep::Plugin("tenant-rewrite".to_owned())
    );
    assert!(redis.metric_relabel_configs[1].rule().is_some());
    assert_eq!(config.remote_write[0].plugin(), Some("kafka"));
    assert!(config.remote_write[0].url().is_none());
    assert_eq!(
        config.remote_write[1].destination,
        RemoteWriteDestination::Url("http://vm:8428/api/v1/write".parse().expect("url"))
    );
}

#[test]
fn embedded_default_config_scrapes_itself() {
    let config =
        parse(DEFAULT_CONFIG_YAML, Path::new("<default>")).expect("default config is valid");
    assert_eq!(config.global.scrape_interval, secs(15));
    assert_eq!(config.global.evaluation_interval, secs(15));
    let job = config.scrape_config("ember").expect("self-scrape job");
    assert_eq!(
        job.service_discovery.static_configs[0].targets,
        ["localhost:9090"]
    );
    assert_eq!(job.scrape_interval, secs(15));
    assert!(config.warnings.is_empty());
}

#[test]
fn configs_compare_equal_only_when_the_same() {
    let text =
        std::fs::read_to_string(testdata().join("comprehensive.good.yml")).expect("readable");
    let path = Path::new("prometheus.yml");
    let first = parse_with_env(&text, path, &test_env).expect("valid");
    let second = parse_with_env(&text, path, &test_env).expect("valid");
    assert_eq!(first, second);
    let changed = text.replace("region: eu-west-1", "region: eu-west-2");
    assert_ne!(
        first,
        parse_with_env(&changed, path, &test_env).expect("valid")
    );
}

#[test]
fn debug_output_hides_secrets() {
    let config = fixture("comprehensive.good.yml");
    let debug = format!("{config:?}");
    for secret in ["hunter2", "s3cr3t", "t0ken", "am-password"] {
        assert!(
            config.source.text.contains(secret),
            "the fixture sets {secret}"
        );
        assert!(!debug.contains(secret), "{secret} leaked through Debug");
    }
}

#[test]
fn external_labels_expand_environment_variables() {
    let config = parse_str("global:\n  external_labels:\n    replica: ${EMBER_TEST_REPLICA}\n    dc: $UNSET_VARIABLE\n    cost: $$1\n")
        .expect("valid");
    let labels = &config.global.external_labels;
    assert_eq!(labels["replica"], "replica-a");
    assert_eq!(labels["cost"], "$1");
    assert!(
        !labels.contains_key("dc"),
        "a label expanding to nothing is dropped"
    );
}

/// The full configurations quoted in the Prometheus documentation must load.
/// Schema blocks (with `<placeholders>`) and rule files are skipped.
#[test]
fn configs_in_the_prometheus_reference_docs_load() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/prometheus");
    let Ok(entries) = std::fs::read_dir(&reference) else {
        eprintln!("skipping: {} is absent", reference.display());
        return;
    };
    let top_level = [
        "global:",
        "runtime:",
        "rule_files:",
        "scrape_config_files:",
        "scrape_configs:",
        "alerting:",
        "remote_write:",
        "remote_read:",
        "otlp:",
        "storage:",
        "tracing:",
    ];
    let mut checked = 0;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for path in paths
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
    {
        let text = std::fs::read_to_string(path).expect("readable");
        for (index, block) in text.split("```yaml\n").skip(1).enumerate() {
            let Some((block, _)) = block.split_once("```") else {
                continue;
            };
            let is_schema = block.contains("[ ") || (block.contains('<') && block.contains('>'));
            let first_key = block
                .lines()
                .find(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'));
            let is_config =
                first_key.is_some_and(|line| top_level.iter().any(|key| line.starts_with(key)));
            if is_schema || !is_config {
                continue;
            }
            let origin = PathBuf::from(format!("{}#block{index}", path.display()));
            if let Err(error) = parse(block, &origin) {
                panic!("{error}\n{block}");
            }
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no full configuration found in {}",
        reference.display()
    );
    eprintln!("{checked} reference configurations loaded");
}

#[test]
fn config_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Config>();
    assert_send_sync::<ConfigError>();
}

#[test]
fn anchors_aliases_and_merge_keys_are_resolved() {
    let config = fixture("anchors.good.yml");
    let canary = config.scrape_config("node-canary").expect("merged job");
    assert_eq!(canary.scrape_interval, secs(30), "merged from the anchor");
    assert!(canary.http_client.tls.insecure_skip_verify);
    assert_eq!(
        canary.service_discovery.static_configs[0].targets,
        ["canary-1:9100"]
    );
    assert!(
        config
            .scrape_config("api")
            .expect("job")
            .http_client
            .tls
            .insecure_skip_verify
    );
}

#[test]
fn load_file_reads_scrape_config_files() {
    let dir = testdata().join("scrape-config-files");
    let config = load_file(&dir.join("prometheus.yml")).expect("loads");
    let jobs: Vec<&str> = config
        .scrape_configs
        .iter()
        .map(|job| job.job_name.as_str())
        .collect();
    assert_eq!(jobs, ["main", "a", "b"]);
    let a = config.scrape_config("a").expect("job from jobs/a.yml");
    assert_eq!(
        a.scrape_interval,
        secs(20),
        "global defaults apply to included jobs"
    );
    assert_eq!(
        a.http_client
            .basic_auth
            .as_ref()
            .and_then(|auth| auth.password.clone()),
        Some(SecretSource::File(dir.join("jobs/secrets/password"))),
        "relative paths resolve against the including file's directory"
    );
    assert_eq!(
        a.service_discovery.file_sd_configs[0].files,
        [dir.join("jobs/targets/*.json")]
    );
    assert_eq!(
        config.scrape_config("b").expect("job").scrape_interval,
        secs(60)
    );
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    let b_file = dir.join("jobs/b.yml").display().to_string();
    assert!(
        config.warnings[0].starts_with(&format!(
            "{b_file}:4:5: scrape_configs[0].kubernetes_sd_configs:"
        )),
        "{}",
        config.warnings[0]
    );
}

#[test]
fn scrape_config_files_errors_name_the_included_file() {
    let dir = testdata().join("scrape-config-files-duplicate");
    let error = load_file(&dir.join("prometheus.yml")).expect_err("duplicate job");
    let more = dir.join("jobs/more.yml").display().to_string();
    let main = dir.join("prometheus.yml").display().to_string();
    assert_eq!(
        error.to_string(),
        format!(
            "{more}:3:5: scrape_configs[1].job_name: found multiple scrape configs with job name \"a\", first found in {main}"
        )
    );

    let dir = testdata().join("scrape-config-files-invalid");
    let error = load_file(&dir.join("prometheus.yml")).expect_err("global is not allowed there");
    let bad = dir.join("jobs/bad.yml").display().to_string();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{bad}:4:1: global: unknown field `global`")),
        "{error}"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let yaml = "global:\n  metric_name_validation_scheme: legacy\n  external_labels: {é_ok: 1, bad-name: 2}\n";
    let error = parse_str(yaml).expect_err("é_ok and bad-name are not legacy names");
    let located = error.location().expect("located");
    // `é_ok` sorts after `bad-name` in the label map, so `bad-name` is reported first.
    assert_eq!((located.line, located.column), (3, 30), "{error}");
    assert_eq!(located.field, "global.external_labels.bad-name");

    let yaml = "scrape_configs:\n  - {job_name: 'é', scheme: ftp}\n";
    let error = parse_str(yaml).expect_err("bad scheme");
    let located = error.location().expect("located");
    assert_eq!((located.line, located.column), (2, 21), "{error}"); // the `scheme` key, after `'é'`
}

/// Every prefix of a large valid file is either valid or an error with a position; none
/// may panic. Truncation produces unclosed flow collections, dangling keys, half
/// escapes and block scalars cut short.
#[test]
fn truncated_configs_fail_cleanly() {
    let text =
        std::fs::read_to_string(testdata().join("comprehensive.good.yml")).expect("readable");
    let path = Path::new("prometheus.yml");
    let mut errors = 0;
    for (end, _) in text.char_indices().step_by(7) {
        match parse_with_env(&text[..end], path, &test_env) {
            Ok(_) => {}
            Err(error) => {
                errors += 1;
                let located = error.location().expect("parse errors are located");
                assert!(located.line >= 1 && located.column >= 1, "{error}");
                assert!(
                    located.line as usize <= text[..end].lines().count().max(1) + 1,
                    "{error}"
                );
            }
        }
    }
    assert!(errors > 0);
}

#[test]
fn null_relabel_fields_mean_empty_not_default() {
    let yaml = "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex:\n        separator:\n        replacement: static\n        target_label: abc\n      - target_label: abc\n";
    let config = parse_str(yaml).expect("valid");
    let rules =
        ember_config::rules_only(&config.scrape_configs[0].relabel_configs).expect("rules only");
    assert_eq!(rules[0].regex.as_str(), "");
    assert!(rules[0].regex.is_match("") && !rules[0].regex.is_match("x"));
    assert_eq!(rules[0].separator, "");
    assert_eq!(rules[1].regex.as_str(), "(.*)");
    assert_eq!(rules[1].separator, ";");
    assert_eq!(rules[1].replacement, "$1");
}
