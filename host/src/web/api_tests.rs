//! The HTTP API served in-process over known data: exact response bytes,
//! Prometheus's error texts and status codes, limits, and cancellation of
//! a query whose client went away.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use clap::Parser as _;
use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::storage::{
    Annotations, Appendable, Appender, LabelQueryResult, MemStorage, Querier, Queryable,
    SelectHints, Series, SeriesSet, Storage, StorageError,
};
use ember_promql::engine::Engine;
use tokio::sync::mpsc;

use super::{AppState, QuerySlots, ReadSlots, Readiness, router};
use crate::cli::Cli;
use crate::reload::{ConfigManager, ConfigSource};
use crate::scrape::ScrapeManager;
use crate::self_metrics::SelfMetrics;
use crate::version::BUILD_INFO;

/// A client for plain HTTP. reqwest is built without a default TLS crypto
/// provider; installing ring's (once per process) lets it construct.
fn client(timeout: Option<Duration>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder();
    let builder = match timeout {
        Some(timeout) => builder.timeout(timeout),
        None => builder,
    };
    builder.build().expect("HTTP client")
}

/// A server on a loopback port over `storage`, started with `flags`.
struct TestServer {
    base: String,
    client: reqwest::Client,
}

impl TestServer {
    async fn start(storage: Arc<dyn Storage>, flags: &[&str]) -> Self {
        let flags = Cli::try_parse_from(std::iter::once("ember").chain(flags.iter().copied()))
            .expect("flags")
            .server;
        let metrics = SelfMetrics::new(&BUILD_INFO).expect("metrics");
        let config = ConfigManager::load_initial(ConfigSource::Embedded, metrics.clone())
            .expect("embedded configuration");
        let scrape = ScrapeManager::new(storage.clone(), metrics.registry()).expect("scrape");
        let (quit, _) = mpsc::channel(1);
        let state = AppState {
            config: Arc::new(config),
            metrics,
            lifecycle_enabled: false,
            readiness: Readiness::default(),
            quit,
            scrape: Arc::new(scrape),
            plugins: crate::plugins::PluginManager::new(None, &prometheus::Registry::new())
                .expect("plugin runtime"),
            storage,
            tsdb: None,
            engine: Arc::new(Engine::new(flags.engine_options())),
            query_slots: QuerySlots::new(flags.query_max_concurrency),
            otlp: Default::default(),
            remote_read_slots: ReadSlots::new(flags.remote_read_concurrent_limit),
            flags: Arc::new(flags),
            started: SystemTime::now(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Self {
            base: format!("http://{address}"),
            client: client(None),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn post_form(&self, path: &str, form: &str) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }
}

/// `up` for two jobs every 15s over the first minute, and a counter.
fn fixture() -> Arc<dyn Storage> {
    let storage = MemStorage::new();
    let mut app = storage.appender();
    for job in ["a", "b"] {
        let up = Labels::new([("__name__", "up"), ("instance", "x:1"), ("job", job)]).unwrap();
        let requests = Labels::new([
            ("__name__", "requests_total"),
            ("code", "200"),
            ("job", job),
        ])
        .unwrap();
        for step in 0..=4 {
            let t = step * 15_000;
            app.append(None, &up, t, 1.0).unwrap();
            app.append(None, &requests, t, (step * 30) as f64).unwrap();
        }
    }
    app.commit().unwrap();
    Arc::new(storage)
}

#[tokio::test]
async fn instant_and_range_queries_render_byte_for_byte() {
    let server = TestServer::start(fixture(), &[]).await;
    let (status, body) = server.get("/api/v1/query?query=up&time=30").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"x:1","job":"a"},"value":[30,"1"]},{"metric":{"__name__":"up","instance":"x:1","job":"b"},"value":[30,"1"]}]}}"#
    );

    let (status, body) = server
        .get("/api/v1/query_range?query=sum(rate(requests_total[30s]))&start=30&end=60&step=15s")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[30,"4"],[45,"4"],[60,"4"]]}]}}"#
    );

    let (_, body) = server.get("/api/v1/query?query=1/3&time=1.5").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"0.3333333333333333"]}}"#
    );
    let (_, body) = server
        .get("/api/v1/query?query=%22a%3Cb%22&time=2015-07-01T20:10:51.781Z")
        .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[1435781451.781,"a\u003cb"]}}"#
    );
    let (_, body) = server.get("/api/v1/query?query=up[20s]&time=30").await;
    assert!(
        body.contains(r#""values":[[15,"1"],[30,"1"]]"#),
        "matrix of an instant query: {body}"
    );

    // Statistics on request.
    let (_, body) = server.get("/api/v1/query?query=up&time=30&stats=all").await;
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let samples = &value["data"]["stats"]["samples"];
    assert!(
        samples["totalQueryableSamples"].as_u64().unwrap() >= 2,
        "{body}"
    );
    assert_eq!(samples["peakSamples"], 2, "{body}");
    assert!(body.contains(r#""resultSortTime":0,"#), "{body}");
    assert!(
        value["data"]["stats"]["timings"]["execTotalTime"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // Form POSTs are read like GETs.
    let (status, body) = server
        .post_form("/api/v1/query", "query=count(up)&time=30")
        .await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""value":[30,"2"]"#), "{body}");
}

#[tokio::test]
async fn answers_are_compressed_when_the_client_accepts_it() {
    let server = TestServer::start(fixture(), &[]).await;
    // reqwest would decompress transparently and drop the header.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let response = raw
        .get(format!(
            "{}/api/v1/query_range?query=up&start=0&end=60&step=1",
            server.base
        ))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    // Without the header the body is plain JSON.
    let (_, body) = server.get("/api/v1/query?query=1&time=1").await;
    assert!(body.starts_with("{\"status\":\"success\""), "{body}");
}

#[tokio::test]
async fn browsers_get_prometheus_cors_headers() {
    let server = TestServer::start(fixture(), &[]).await;
    let url = format!("{}/api/v1/query?query=1", server.base);
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://grafana.example")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(preflight.status(), 204);
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-methods").as_deref(),
        Some("GET, POST, OPTIONS")
    );
    let plain = server.client.get(&url).send().await.expect("GET");
    assert_eq!(
        header(&plain, "access-control-allow-origin"),
        None,
        "no Origin, no CORS"
    );

    let strict =
        TestServer::start(fixture(), &[r"--web.cors.origin=https://grafana\.example"]).await;
    let url = format!("{}/api/v1/labels", strict.base);
    for (origin, allowed) in [
        ("https://grafana.example", Some("https://grafana.example")),
        ("https://evil.example", None),
    ] {
        let response = strict
            .client
            .get(&url)
            .header("origin", origin)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "access-control-allow-origin").as_deref(),
            allowed
        );
        assert_eq!(header(&response, "vary").as_deref(), Some("Origin"));
    }
}

#[tokio::test]
async fn limits_truncate_with_a_warning() {
    let server = TestServer::start(fixture(), &[]).await;
    let (_, body) = server.get("/api/v1/query?query=up&time=30&limit=1").await;
    assert!(
        body.contains(r#""job":"a""#) && !body.contains(r#""job":"b""#),
        "{body}"
    );
    assert!(
        body.ends_with(r#","warnings":["results truncated due to limit"]}"#),
        "{body}"
    );
    let (_, body) = server.get("/api/v1/labels?limit=2").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","code"],"warnings":["results truncated due to limit"]}"#
    );
}

#[tokio::test]
async fn bad_requests_get_prometheus_errors() {
    let server = TestServer::start(fixture(), &[]).await;
    let cases: &[(&str, u16, &str)] = &[
        (
            "/api/v1/query_range?query=up&start=60&end=30&step=15",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": end timestamp must not be before start time"}"#,
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=30&step=0",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"}"#,
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=11001&step=1",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#,
        ),
        (
            "/api/v1/query_range?query=up&start=yesterday&end=30&step=15",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": cannot parse \"yesterday\" to a valid timestamp"}"#,
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=30",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": cannot parse \"\" to a valid duration"}"#,
        ),
        (
            "/api/v1/query?query=up&time=later",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": Invalid time value for 'time': cannot parse \"later\" to a valid timestamp"}"#,
        ),
        (
            "/api/v1/query?query=up&timeout=soon",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration"}"#,
        ),
        (
            "/api/v1/query?query=up&limit=-1",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"limit\": limit must be non-negative"}"#,
        ),
        (
            "/api/v1/query?query=up&lookback_delta=x",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"error parsing lookback delta duration: cannot parse \"x\" to a valid duration"}"#,
        ),
        (
            "/api/v1/query_range?query=up[5m]&start=0&end=30&step=15",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"}"#,
        ),
        (
            "/api/v1/series",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}"#,
        ),
        (
            "/api/v1/metadata?limit=x",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"limit must be a number"}"#,
        ),
        (
            "/api/v1/status/tsdb?limit=0",
            400,
            r#"{"status":"error","errorType":"bad_data","error":"limit must be a positive number"}"#,
        ),
    ];
    for (path, status, expected) in cases {
        let (got_status, body) = server.get(path).await;
        assert_eq!((got_status, body.as_str()), (*status, *expected), "{path}");
    }
    let (status, body) = server.get("/api/v1/query?query=sum(up").await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with(
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": "#
        ),
        "{body}"
    );
}

#[tokio::test]
async fn series_and_labels_answer_from_storage() {
    let server = TestServer::start(fixture(), &[]).await;
    let (status, body) = server
        .get("/api/v1/series?match[]=up&match[]=requests_total%7Bjob%3D%22b%22%7D&start=0&end=60")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"requests_total","code":"200","job":"b"},{"__name__":"up","instance":"x:1","job":"a"},{"__name__":"up","instance":"x:1","job":"b"}]}"#
    );
    let (_, body) = server.get("/api/v1/labels").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","code","instance","job"]}"#
    );
    let (_, body) = server.get("/api/v1/labels?match[]=up").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","instance","job"]}"#
    );
    let (_, body) = server
        .post_form("/api/v1/labels", "match[]=requests_total&start=0&end=60")
        .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","code","job"]}"#
    );
    let (_, body) = server.get("/api/v1/label/job/values").await;
    assert_eq!(body, r#"{"status":"success","data":["a","b"]}"#);
    let (_, body) = server
        .get("/api/v1/label/__name__/values?match[]=%7Bjob%3D%22a%22%7D")
        .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["requests_total","up"]}"#
    );
    let (_, body) = server.get("/api/v1/label/nope/values").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    // Outside the data's time range nothing is found.
    let (_, body) = server
        .get("/api/v1/series?match[]=up&start=1000&end=2000")
        .await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
}

#[tokio::test]
async fn format_and_parse_query() {
    let server = TestServer::start(fixture(), &[]).await;
    let (_, body) = server.get("/api/v1/format_query?query=foo/bar").await;
    assert_eq!(body, r#"{"status":"success","data":"foo / bar"}"#);
    let (_, body) = server.post_form("/api/v1/parse_query", "query=-x").await;
    assert!(
        body.contains(r#""op":"-""#) && body.contains(r#""type":"unaryExpr""#),
        "{body}"
    );
    let (status, _) = server.get("/api/v1/format_query?query=foo/").await;
    assert_eq!(status, 400);
    let (status, body) = server
        .get("/api/v1/query_exemplars?query=up&start=0&end=60")
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"status":"success","data":[]}"#)
    );
}

#[tokio::test]
async fn too_many_samples_is_an_execution_error() {
    let server = TestServer::start(fixture(), &["--query.max-samples=3"]).await;
    let (status, body) = server
        .get("/api/v1/query_range?query=up&start=0&end=60&step=15")
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.starts_with(r#"{"status":"error","errorType":"execution","error":"#),
        "{body}"
    );
}

#[tokio::test]
async fn status_endpoints_describe_the_server() {
    let server = TestServer::start(fixture(), &["--query.timeout=30s"]).await;
    let (_, body) = server.get("/api/v1/status/buildinfo").await;
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["data"]["version"], BUILD_INFO.version);
    assert_eq!(value["data"]["goVersion"], BUILD_INFO.rust_version);
    let (_, body) = server.get("/api/v1/status/flags").await;
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["data"]["query.timeout"], "30s");
    assert_eq!(value["data"]["query.max-concurrency"], "20");
    let (_, body) = server.get("/api/v1/status/runtimeinfo").await;
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["data"]["reloadConfigSuccess"], true);
    assert!(value["data"]["GOMAXPROCS"].as_u64().unwrap() >= 1);
    assert!(value["data"]["startTime"].as_str().unwrap().ends_with('Z'));
    let (_, body) = server.get("/api/v1/status/tsdb").await;
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["data"]["headStats"]["numSeries"], 4);
    assert_eq!(value["data"]["headStats"]["minTime"], 0);
    assert_eq!(value["data"]["headStats"]["maxTime"], 60_000);
    assert_eq!(
        value["data"]["seriesCountByMetricName"],
        serde_json::json!([{"name": "requests_total", "value": 2}, {"name": "up", "value": 2}])
    );
}

/// A storage whose series sets take `delay` per series and count how many
/// they have produced, to observe a query's progress from outside.
struct SlowStorage {
    inner: MemStorage,
    delay: Duration,
    produced: Arc<AtomicUsize>,
}

struct SlowQuerier {
    inner: Box<dyn Querier>,
    delay: Duration,
    produced: Arc<AtomicUsize>,
}

struct SlowSet<'q> {
    inner: Box<dyn SeriesSet<'q> + 'q>,
    delay: Duration,
    produced: Arc<AtomicUsize>,
}

impl Appendable for SlowStorage {
    fn appender(&self) -> Box<dyn Appender> {
        self.inner.appender()
    }
}

impl Queryable for SlowStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(SlowQuerier {
            inner: self.inner.querier(mint, maxt)?,
            delay: self.delay,
            produced: self.produced.clone(),
        }))
    }
}

impl Querier for SlowQuerier {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError> {
        Ok(Box::new(SlowSet {
            inner: self.inner.select(sorted, hints, matchers)?,
            delay: self.delay,
            produced: self.produced.clone(),
        }))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        self.inner.label_values(name, matchers, limit)
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        self.inner.label_names(matchers, limit)
    }
}

impl<'q> Iterator for SlowSet<'q> {
    type Item = Result<Box<dyn Series + 'q>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        std::thread::sleep(self.delay);
        let next = self.inner.next();
        if next.is_some() {
            self.produced.fetch_add(1, Ordering::SeqCst);
        }
        next
    }
}

impl<'q> SeriesSet<'q> for SlowSet<'q> {
    fn annotations(&self) -> &Annotations {
        self.inner.annotations()
    }
}

fn slow_storage(series: usize, delay: Duration) -> (Arc<dyn Storage>, Arc<AtomicUsize>) {
    let inner = MemStorage::new();
    let mut app = inner.appender();
    for n in 0..series {
        let labels = Labels::new([("__name__", "slow".to_owned()), ("n", n.to_string())]).unwrap();
        app.append(None, &labels, 0, 1.0).unwrap();
    }
    app.commit().unwrap();
    let produced = Arc::new(AtomicUsize::new(0));
    let storage = SlowStorage {
        inner,
        delay,
        produced: produced.clone(),
    };
    (Arc::new(storage), produced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_its_query() {
    // 2,000 series at 5ms each: the query would run for ten seconds.
    let (storage, produced) = slow_storage(2_000, Duration::from_millis(5));
    let server = TestServer::start(storage, &["--query.max-concurrency=1"]).await;
    let impatient = client(Some(Duration::from_millis(300)));
    let outcome = impatient
        .get(format!(
            "{}/api/v1/query?query=count(slow)&time=1",
            server.base
        ))
        .send()
        .await;
    assert!(outcome.is_err(), "the client gave up first");
    // The engine notices the cancellation between series.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_cancel = produced.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        produced.load(Ordering::SeqCst),
        after_cancel,
        "the query kept reading series after its client left"
    );
    assert!(after_cancel < 2_000, "{after_cancel}");
    // Its slot is free again: with one slot, another query runs at once.
    let (status, body) = server.get("/api/v1/query?query=1&time=1").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_reported_as_timeout_errors() {
    let (storage, _) = slow_storage(200, Duration::from_millis(5));
    let server = TestServer::start(storage, &[]).await;
    let (status, body) = server
        .get("/api/v1/query?query=count(slow)&time=1&timeout=100ms")
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(r#"{"status":"error","errorType":"timeout","error":"query timed out in "#),
        "{body}"
    );
}
