//! Ember's own traces: with a `tracing:` section, a query produces spans
//! that reach an OTLP/HTTP trace receiver, and a reload points export
//! elsewhere.
//!
//! The receiver is a small HTTP/1.1 server in this file that decodes
//! `ExportTraceServiceRequest`s with the `opentelemetry-proto` messages.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember_tests::{Ember, Options, StaticTarget, http_client};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;

/// A span as received: its name, ids, attributes and resource attributes.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: Vec<(String, String)>,
    resource: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn pairs(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

/// The path and `Content-Encoding` of each request received.
type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An OTLP/HTTP trace receiver on a loopback port.
struct TraceReceiver {
    address: String,
    spans: Arc<Mutex<Vec<Received>>>,
    requests: Requests,
}

impl TraceReceiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (spans.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (s, r) = (s.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &s, &r));
            }
        });
        Self {
            address,
            spans,
            requests,
        }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

/// Answers requests on one connection until the client closes it.
fn serve(
    stream: std::net::TcpStream,
    spans: &Mutex<Vec<Received>>,
    requests: &Mutex<Vec<(String, Option<String>)>>,
) {
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut encoding = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-encoding" => encoding = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        requests.lock().unwrap().push((path, encoding.clone()));
        if encoding.as_deref() == Some("gzip") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .expect("gzip body");
            body = plain;
        }
        let export = ExportTraceServiceRequest::decode(&body[..]).expect("trace request");
        let mut received = spans.lock().unwrap();
        for rs in export.resource_spans {
            let resource = pairs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
            for ss in rs.scope_spans {
                for span in ss.spans {
                    received.push(Received {
                        name: span.name,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                        attributes: pairs(&span.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
        drop(received);
        let _ = writer.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
        );
    }
}

fn config(receiver: &TraceReceiver) -> String {
    format!(
        "global:\n  scrape_interval: 1h\nscrape_configs: []\ntracing:\n  client_type: http\n  endpoint: {}\n  insecure: true\n  sampling_fraction: 1.0\n  compression: gzip\n  headers:\n    X-Tenant: ember-test\n",
        receiver.address
    )
}

fn query(ember: &Ember, promql: &str) {
    let answer = http_client(Duration::from_secs(10))
        .get(format!("{}/api/v1/query", ember.base_url()))
        .query(&[("query", promql)])
        .send()
        .expect("query");
    assert!(answer.status().is_success());
}

/// Waits for the `promql.query` span of `promql` (querying again now and
/// then, as a reload may not have been applied yet when the first ran).
fn wait_for_query_span(ember: &Ember, receiver: &TraceReceiver, promql: &str) -> Received {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last_query = Instant::now() - Duration::from_secs(60);
    loop {
        if last_query.elapsed() > Duration::from_secs(2) {
            query(ember, promql);
            last_query = Instant::now();
        }
        if let Some(span) = receiver
            .spans()
            .into_iter()
            .find(|s| s.name == "promql.query" && s.attribute("promql.query") == Some(promql))
        {
            return span;
        }
        assert!(
            Instant::now() < deadline,
            "no promql.query span for {promql} in 40s; received {:?}\nlogs:\n{}",
            receiver.spans(),
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_query_is_traced_and_a_reload_moves_the_export() {
    let first = TraceReceiver::start();
    let ember = Ember::start(Options::with_config(config(&first)));

    let span = wait_for_query_span(&ember, &first, "vector(1)");
    assert_eq!(span.attribute("promql.kind"), Some("instant"));
    assert!(span.attribute("promql.time").is_some(), "{span:?}");
    assert_eq!(span.attribute("promql.samples_loaded"), Some("0"));
    assert!(
        span.resource
            .contains(&("service.name".to_owned(), "ember".to_owned())),
        "{span:?}"
    );
    // Its parent is the HTTP server span of the request.
    let spans = first.spans();
    let parent = spans
        .iter()
        .find(|s| s.span_id == span.parent_span_id)
        .expect("the HTTP span arrives in the same batch or earlier");
    assert_eq!(parent.name, "GET /api/v1/query");
    assert_eq!(parent.attribute("http.route"), Some("/api/v1/query"));
    assert_eq!(parent.attribute("http.request.method"), Some("GET"));
    assert_eq!(parent.attribute("http.response.status_code"), Some("200"));
    assert!(parent.parent_span_id.is_empty(), "{parent:?}");
    let requests = first.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .all(|(path, encoding)| path == "/v1/traces" && encoding.as_deref() == Some("gzip")),
        "{requests:?}"
    );

    // A reload with another endpoint exports there.
    let second = TraceReceiver::start();
    ember.write_config(&config(&second));
    ember.signal("HUP");
    let span = wait_for_query_span(&ember, &second, "vector(2)");
    assert_eq!(span.attribute("promql.kind"), Some("instant"));

    // Without the section nothing more is exported.
    ember.write_config("global:\n  scrape_interval: 1h\nscrape_configs: []\n");
    ember.signal("HUP");
    std::thread::sleep(Duration::from_secs(2));
    let before = second.spans().len();
    query(&ember, "vector(3)");
    // Longer than the batch processor's 5s schedule.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(second.spans().len(), before);
    assert!(
        !second
            .spans()
            .iter()
            .any(|s| s.attribute("promql.query") == Some("vector(3)"))
    );
}

#[test]
fn a_scrape_is_traced_with_fetch_and_ingest() {
    let receiver = TraceReceiver::start();
    let target = StaticTarget::start(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        "traced_metric 1\n".to_owned(),
    )]);
    let config = config(&receiver).replace(
        "scrape_configs: []\n",
        &format!(
            "scrape_configs:\n  - job_name: traced\n    scrape_interval: 500ms\n    static_configs:\n      - targets: ['{}']\n",
            target.address()
        ),
    );
    let ember = Ember::start(Options::with_config(config));
    let deadline = Instant::now() + Duration::from_secs(40);
    let scrape = loop {
        if let Some(span) = receiver.spans().into_iter().find(|s| s.name == "scrape") {
            break span;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape span in 40s; logs:\n{}",
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(scrape.attribute("scrape.job"), Some("traced"));
    assert_eq!(
        scrape.attribute("scrape.target"),
        Some(format!("http://{}/metrics", target.address()).as_str())
    );
    assert!(scrape.parent_span_id.is_empty());
    let children: Vec<String> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.parent_span_id == scrape.span_id)
        .map(|s| s.name)
        .collect();
    assert!(
        children.contains(&"scrape.fetch".to_owned()),
        "{children:?}"
    );
    assert!(
        children.contains(&"scrape.ingest".to_owned()),
        "{children:?}"
    );
}
