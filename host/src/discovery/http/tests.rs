use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use ember_config::{HttpClientConfig, HttpSdConfig};

use super::*;
use crate::discovery::test_support::{
    addresses, eventually, metrics, next_update, start, update_where,
};

/// What the test endpoint answers, changeable while it runs.
#[derive(Debug, Clone)]
struct Reply {
    status: StatusCode,
    content_type: Option<&'static str>,
    body: String,
    /// How long to wait before answering.
    delay: Duration,
}

impl Reply {
    fn json(body: &str) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: Some("application/json"),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Debug)]
struct Endpoint {
    reply: Mutex<Reply>,
    /// The headers of every request, in order.
    requests: Mutex<Vec<HeaderMap>>,
}

impl Endpoint {
    fn answer(&self, reply: Reply) {
        *self.reply.lock().unwrap_or_else(PoisonError::into_inner) = reply;
    }

    fn requests(&self) -> Vec<HeaderMap> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn handle(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
) -> axum::response::Response {
    endpoint
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(headers);
    let reply = endpoint
        .reply
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    tokio::time::sleep(reply.delay).await;
    let mut response = axum::response::Response::new(axum::body::Body::from(reply.body));
    *response.status_mut() = reply.status;
    if let Some(content_type) = reply.content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    }
    response
}

/// Serves `reply` on 127.0.0.1; returns the endpoint and its URL.
async fn serve(reply: Reply) -> (Arc<Endpoint>, String) {
    let endpoint = Arc::new(Endpoint {
        reply: Mutex::new(reply),
        requests: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/sd", get(handle))
        .with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, format!("http://{address}/sd"))
}

fn http_client_config() -> HttpClientConfig {
    HttpClientConfig {
        basic_auth: None,
        authorization: None,
        oauth2: None,
        follow_redirects: true,
        enable_http2: true,
        tls: Default::default(),
        proxy: Default::default(),
        http_headers: BTreeMap::new(),
    }
}

fn config(url: &str, refresh_interval: Duration) -> HttpSdConfig {
    HttpSdConfig {
        url: reqwest::Url::parse(url).unwrap(),
        refresh_interval,
        http_client: http_client_config(),
    }
}

const GROUPS: &str = r#"[
    {"targets": ["10.0.10.2:9100", "10.0.10.3:9100"],
     "labels": {"__meta_datacenter": "london", "__meta_prometheus_job": "node"}},
    {"targets": ["10.0.40.2:9093"], "labels": {"__meta_datacenter": "newyork"}}
]"#;

#[tokio::test]
async fn fetches_groups_with_sources_labels_and_the_url_label() {
    let (endpoint, url) = serve(Reply::json(GROUPS)).await;
    let metrics = metrics();
    let discoverer = HttpDiscoverer::new(&config(&url, Duration::from_secs(90)), &metrics).unwrap();
    let mut rx = start(discoverer);
    let groups = next_update(&mut rx, "the first fetch").await;
    let durations = metrics.refresh_duration.with_label_values(&["http"]);
    assert_eq!(durations.get_sample_count(), 1);

    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].source, format!("{url}:0"));
    assert_eq!(addresses(&groups[0]), ["10.0.10.2:9100", "10.0.10.3:9100"]);
    assert_eq!(
        groups[0].labels,
        BTreeMap::from([
            ("__meta_datacenter".to_owned(), "london".to_owned()),
            ("__meta_prometheus_job".to_owned(), "node".to_owned()),
            (URL_LABEL.to_owned(), url.clone()),
        ])
    );
    assert_eq!(groups[1].source, format!("{url}:1"));
    assert_eq!(addresses(&groups[1]), ["10.0.40.2:9093"]);
    assert_eq!(groups[1].labels[URL_LABEL], url);

    let request = &endpoint.requests()[0];
    assert_eq!(request[REFRESH_INTERVAL_HEADER], "90");
    assert_eq!(request[header::ACCEPT], "application/json");
}

#[tokio::test]
async fn polls_every_refresh_interval_and_empties_sources_that_disappear() {
    let (endpoint, url) = serve(Reply::json(GROUPS)).await;
    let discoverer =
        HttpDiscoverer::new(&config(&url, Duration::from_millis(50)), &metrics()).unwrap();
    let mut rx = start(discoverer);
    assert_eq!(next_update(&mut rx, "the first fetch").await.len(), 2);

    endpoint.answer(Reply::json(r#"[{"targets": ["only:1"]}]"#));
    let update = update_where(&mut rx, "the shorter list", |update| {
        update
            .first()
            .is_some_and(|group| addresses(group) == ["only:1"])
    })
    .await;
    assert_eq!(update.len(), 2);
    assert_eq!(update[1], TargetGroup::empty(format!("{url}:1")));
    let sent = endpoint.requests();
    assert_eq!(sent.last().unwrap()[REFRESH_INTERVAL_HEADER], "0.05");

    // The next poll has nothing left to remove.
    let update = next_update(&mut rx, "the following poll").await;
    assert_eq!(update.len(), 1);
}

#[tokio::test]
async fn failures_keep_the_previous_groups_and_are_counted() {
    let bad_replies = [
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            ..Reply::json("[]")
        },
        Reply {
            status: StatusCode::NO_CONTENT,
            ..Reply::json("")
        },
        Reply {
            content_type: Some("text/plain"),
            ..Reply::json("[]")
        },
        Reply {
            content_type: None,
            ..Reply::json("[]")
        },
        Reply::json("[{\"targets\": [\"a:1\"]"),
        Reply::json(r#"[{"targets": ["a:1"], "labels": {"": "x"}}]"#),
        Reply::json(r#"[{"targets": ["a:1"]}, null]"#),
        Reply::json(r#"{"targets": ["a:1"]}"#),
    ];
    let (endpoint, url) = serve(Reply::json(r#"[{"targets": ["good:0"]}]"#)).await;
    let metrics = metrics();
    let discoverer =
        HttpDiscoverer::new(&config(&url, Duration::from_millis(30)), &metrics).unwrap();
    let mut rx = start(discoverer);
    let first = next_update(&mut rx, "the first fetch").await;
    assert_eq!(addresses(&first[0]), ["good:0"]);

    let mut expected = "good:0".to_owned();
    for (index, bad) in bad_replies.into_iter().enumerate() {
        let failures = metrics.http_failures.get();
        endpoint.answer(bad.clone());
        let counter = metrics.http_failures.clone();
        eventually(&format!("a failure counted for {bad:?}"), || {
            counter.get() > failures
        })
        .await;

        // While the endpoint fails nothing new arrives: any update is one
        // fetched before the failure, with the groups already known.
        let good = format!("good:{}", index + 1);
        endpoint.answer(Reply::json(&format!(r#"[{{"targets": ["{good}"]}}]"#)));
        update_where(&mut rx, &format!("recovery after {bad:?}"), |update| {
            let found = addresses(&update[0]).join(",");
            assert!(
                found == expected || found == good,
                "unexpected update {update:?}"
            );
            found == good
        })
        .await;
        expected = good;
    }
    assert_eq!(
        metrics.refresh_failures.with_label_values(&["http"]).get(),
        metrics.http_failures.get()
    );
}

#[tokio::test]
async fn nothing_is_sent_until_the_first_successful_fetch() {
    let (endpoint, url) = serve(Reply {
        status: StatusCode::SERVICE_UNAVAILABLE,
        ..Reply::json("")
    })
    .await;
    let metrics = metrics();
    let discoverer =
        HttpDiscoverer::new(&config(&url, Duration::from_millis(30)), &metrics).unwrap();
    let mut rx = start(discoverer);
    let counter = metrics.http_failures.clone();
    eventually("two failed fetches", || counter.get() >= 2).await;
    assert!(
        rx.try_recv().is_err(),
        "no update before a successful fetch"
    );

    endpoint.answer(Reply::json(r#"[{"targets": ["up:1"]}]"#));
    let update = next_update(&mut rx, "the first successful fetch").await;
    assert_eq!(addresses(&update[0]), ["up:1"]);
}

#[tokio::test]
async fn an_unbuildable_client_is_an_error() {
    let mut config = config("http://127.0.0.1:1/sd", Duration::from_secs(60));
    config.http_client.tls.ca = Some(ember_config::ValueSource::File(
        "/nonexistent/ca.pem".into(),
    ));
    let error = HttpDiscoverer::new(&config, &metrics()).unwrap_err();
    assert!(
        matches!(error, DiscoveryError::HttpClient { .. }),
        "{error}"
    );
}

#[test]
fn content_types_are_matched_as_prometheus_matches_them() {
    for accepted in [
        "application/json",
        "Application/JSON",
        " application/json ",
        "application/json;charset=utf-8",
        "application/json; charset=UTF-8",
        "application/json;  charset=\"utf-8\"",
    ] {
        assert!(is_json_content_type(accepted), "{accepted:?}");
    }
    for rejected in [
        "",
        "text/plain",
        "application/jsonx",
        "application/json; charset=latin1",
        "application/json charset=utf-8",
        "application/json;charset=utf-8;q=1",
        "application/vnd.api+json",
    ] {
        assert!(!is_json_content_type(rejected), "{rejected:?}");
    }
}

#[tokio::test]
async fn requests_carry_the_http_config_authentication_and_headers() {
    use ember_config::{BasicAuth, HttpHeader, Secret, SecretSource};
    let (endpoint, url) = serve(Reply::json("[]")).await;
    let mut config = config(&url, Duration::from_secs(60));
    config.http_client.basic_auth = Some(BasicAuth {
        username: Some(SecretSource::Inline(Secret::new("sd-user"))),
        password: Some(SecretSource::Inline(Secret::new("sd-pass"))),
    });
    config.http_client.http_headers.insert(
        "X-Team".to_owned(),
        HttpHeader {
            values: vec!["observability".to_owned()],
            ..HttpHeader::default()
        },
    );
    let mut rx = start(HttpDiscoverer::new(&config, &metrics()).unwrap());
    assert!(next_update(&mut rx, "the first fetch").await.is_empty());

    let request = &endpoint.requests()[0];
    // base64("sd-user:sd-pass")
    assert_eq!(request[header::AUTHORIZATION], "Basic c2QtdXNlcjpzZC1wYXNz");
    assert_eq!(request["x-team"], "observability");
}

#[tokio::test]
async fn a_fetch_slower_than_the_refresh_interval_times_out() {
    let (endpoint, url) = serve(Reply::json(r#"[{"targets": ["slow:1"]}]"#)).await;
    let metrics = metrics();
    let discoverer =
        HttpDiscoverer::new(&config(&url, Duration::from_millis(200)), &metrics).unwrap();
    let mut rx = start(discoverer);
    assert_eq!(
        addresses(&next_update(&mut rx, "the first fetch").await[0]),
        ["slow:1"]
    );

    endpoint.answer(Reply {
        delay: Duration::from_secs(30),
        ..Reply::json("[]")
    });
    let counter = metrics.http_failures.clone();
    eventually("a timed-out fetch counted", || counter.get() >= 1).await;
    assert!(
        rx.try_recv().is_err(),
        "a timeout keeps the previous groups"
    );
}

#[tokio::test]
async fn connection_errors_say_why() {
    // Nothing listens on a port that was just released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sd", listener.local_addr().unwrap());
    drop(listener);
    let discoverer =
        HttpDiscoverer::new(&config(&url, Duration::from_secs(5)), &metrics()).unwrap();
    let error = discoverer.fetch().await.unwrap_err().to_string();
    assert!(error.contains(&url), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
}
