//! Black-box tests for the `ember` binary.
//!
//! The tests in `tests/tests/` start the real binary on a free loopback port
//! and talk to it over HTTP, as a user, a script or Grafana would. This
//! library holds the small harness they share: [`Ember`] starts a server with
//! a given configuration in a fresh data directory, waits until it listens,
//! captures its logs, and kills it when dropped.
//!
//! The binary is `target/<profile>/ember`, which `scripts/test` builds before
//! `cargo test` (a test cannot run cargo itself while the outer cargo holds the
//! target directory's lock). `EMBER_BIN` overrides the path.
//!
//! ```no_run
//! let ember = ember_tests::Ember::start(ember_tests::Options::default());
//! let body = ember.get("/-/healthy").text().unwrap();
//! assert!(body.contains("Healthy"));
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to start listening before a test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of the `ember` binary under test.
pub fn ember_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("EMBER_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in target/<profile>/deps/; the binary is one up.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let binary = profile_dir.join("ember");
    assert!(
        binary.is_file(),
        "{} does not exist: build it first with `cargo build --bin ember` (scripts/test does), or set EMBER_BIN",
        binary.display()
    );
    binary
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Configuration file contents; `None` starts with the embedded default.
    pub config: Option<String>,
    /// Extra command-line flags.
    pub flags: Vec<String>,
    /// A data directory to use instead of a fresh one, for restart tests.
    pub data_dir: Option<PathBuf>,
}

impl Options {
    pub fn with_config(config: impl Into<String>) -> Self {
        Self {
            config: Some(config.into()),
            ..Self::default()
        }
    }

    /// Uses `dir` as the data directory (it outlives the server).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn flag(mut self, flag: impl Into<String>) -> Self {
        self.flags.push(flag.into());
        self
    }
}

/// Log lines captured from a server's standard error, shared with the thread
/// that reads them.
#[derive(Debug, Default)]
struct Logs {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

/// A running `ember` process, killed when dropped.
#[derive(Debug)]
pub struct Ember {
    child: Child,
    base_url: String,
    logs: Arc<Logs>,
    /// Owns the data directory and configuration file for the server's life.
    dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl Ember {
    /// Starts a server on 127.0.0.1 with an OS-chosen port and waits until it
    /// listens. Panics with the server's logs if it does not.
    pub fn start(options: Options) -> Self {
        // Everything that can fail goes before the spawn, so that a failure
        // never leaves a server running that no `Ember` value owns.
        let http = http_client(Duration::from_secs(30));
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut command = Command::new(ember_binary());
        command
            .current_dir(dir.path())
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!(
                "--storage.tsdb.path={}",
                options
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| dir.path().join("data"))
                    .display()
            ))
            .arg("--log.format=json")
            .args(&options.flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(config) = &options.config {
            let path = dir.path().join("ember.yml");
            std::fs::write(&path, config).expect("write configuration");
            command.arg(format!("--config.file={}", path.display()));
        }
        let mut child = command.spawn().expect("spawn ember");

        let logs = Arc::new(Logs::default());
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lines.lock().expect("log lock").push(line);
                sink.changed.notify_all();
            }
        });

        let mut ember = Self {
            child,
            base_url: String::new(),
            logs,
            dir,
            http,
        };
        let listening = ember.wait_for_log(START_TIMEOUT, |entry| entry["message"] == "Listening");
        let Some(entry) = listening else {
            let status = ember.child.try_wait().ok().flatten();
            panic!(
                "ember did not start listening (exit: {status:?}); logs:\n{}",
                ember.logs_text()
            );
        };
        let address = entry["address"]
            .as_str()
            .expect("Listening log line has an address");
        ember.base_url = format!("http://{address}");
        ember
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding `data/` and `ember.yml`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the configuration file (to be picked up by a reload).
    pub fn write_config(&self, config: &str) {
        std::fs::write(self.dir.path().join("ember.yml"), config).expect("write configuration");
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}{path}", self.base_url))
            .send()
            .expect("GET")
    }

    pub fn post(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .post(format!("{}{path}", self.base_url))
            .send()
            .expect("POST")
    }

    pub fn put(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .put(format!("{}{path}", self.base_url))
            .send()
            .expect("PUT")
    }

    /// Sends a Unix signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits until a JSON log entry satisfies `predicate` and returns it.
    /// Entries already logged count, so call order does not race the server.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        predicate: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.logs.lines.lock().expect("log lock");
        let mut seen = 0;
        loop {
            for line in &lines[seen..] {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(line)
                    && predicate(&entry)
                {
                    return Some(entry);
                }
            }
            seen = lines.len();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = self
                .logs
                .changed
                .wait_timeout(lines, deadline - now)
                .expect("log lock")
                .0;
        }
    }

    /// Everything the server logged so far, one entry per line.
    pub fn logs_text(&self) -> String {
        self.logs.lines.lock().expect("log lock").join("\n")
    }
}

impl Drop for Ember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 serving fixed responses by path, to
/// act as a scrape target. Each route is `(path, content type, body)`; an
/// empty content type sends no `Content-Type` header. Unknown paths get 404.
/// The server thread lives as long as the test process.
#[derive(Debug)]
pub struct StaticTarget {
    address: String,
}

impl StaticTarget {
    pub fn start(routes: Vec<(&'static str, &'static str, String)>) -> Self {
        Self::start_slow(routes, Duration::ZERO)
    }

    /// Like [`StaticTarget::start`], but every response waits `delay` first
    /// (a target slower than its scrape timeout).
    pub fn start_slow(routes: Vec<(&'static str, &'static str, String)>, delay: Duration) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind target");
        let address = listener.local_addr().expect("target address").to_string();
        let routes = Arc::new(routes);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let routes = routes.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    serve_one(stream, &routes)
                });
            }
        });
        Self { address }
    }

    /// `127.0.0.1:<port>`, as a target address.
    pub fn address(&self) -> &str {
        &self.address
    }
}

fn serve_one(mut stream: std::net::TcpStream, routes: &[(&'static str, &'static str, String)]) {
    use std::io::{Read, Write};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    let response = match routes.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => {
            let content_type = if content_type.is_empty() {
                String::new()
            } else {
                format!("content-type: {content_type}\r\n")
            };
            format!(
                "HTTP/1.1 200 OK\r\n{content_type}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        None => {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
        }
    };
    let _ = stream.write_all(response.as_bytes());
}

/// A child process killed when dropped (a peer such as node_exporter or
/// Prometheus that a test starts).
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a
/// peer that cannot be told to pick its own).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Whether an executable is on this machine, for tests that need a peer.
/// Tests print why they skip when it is not.
pub fn have_program(path: &str) -> bool {
    Path::new(path).is_file()
}

/// Polls `url` until it answers 200 or `timeout` passes.
pub fn wait_http_ok(url: &str, timeout: Duration) -> bool {
    let client = http_client(Duration::from_secs(2));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if client
            .get(url)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Debian's Prometheus binary, used as the reference in comparison tests.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A Prometheus server started for a comparison test, killed when dropped.
#[derive(Debug)]
pub struct Prometheus {
    _child: ChildGuard,
    _dir: tempfile::TempDir,
    url: String,
}

impl Prometheus {
    /// Starts Prometheus with `config` on a free loopback port and waits
    /// until it is ready. `None` (with a message saying why) when Debian's
    /// `prometheus` package is not installed.
    pub fn start(config: &str) -> Option<Self> {
        if !have_program(PROMETHEUS) {
            eprintln!("SKIP: {PROMETHEUS} is not installed (Debian package prometheus)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        let address = format!("127.0.0.1:{}", free_port());
        let child = Command::new(PROMETHEUS)
            .current_dir(dir.path())
            .args([
                "--config.file=prometheus.yml",
                "--storage.tsdb.path=data",
                &format!("--web.listen-address={address}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let prometheus = Self {
            _child: ChildGuard(child),
            _dir: dir,
            url: format!("http://{address}"),
        };
        assert!(
            wait_http_ok(
                &format!("{}/-/ready", prometheus.url),
                Duration::from_secs(30)
            ),
            "Prometheus did not become ready"
        );
        Some(prometheus)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// An HTTP client for tests, with a request timeout.
///
/// In a workspace build reqwest's features are unified with the server's,
/// which compiles rustls in without a default crypto provider (the server
/// hands each client its own TLS configuration). Plain clients then need a
/// process-wide provider, installed here once.
pub fn http_client(timeout: Duration) -> reqwest::blocking::Client {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Fails only if another provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .expect("HTTP client")
}

/// The plugin `name` as `scripts/build-plugins.sh` leaves it in
/// `target/plugins/`, or `None` (with a visible message) when it has not
/// been built, so that a test can say so and return.
pub fn built_plugin(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(format!("{name}.wasm"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is missing; run scripts/build-plugins.sh to build the plugins",
            path.display()
        );
        None
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a
/// query string.
pub fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query at the current time; fails the
/// test unless the server answers with success.
pub fn query(ember: &Ember, expr: &str) -> Vec<serde_json::Value> {
    let response = ember.get(&format!("/api/v1/query?query={}", url_escape(expr)));
    assert!(response.status().is_success(), "query {expr} failed");
    let body: serde_json::Value = response.json().expect("query JSON");
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `check` every 250 ms until it returns `Some`; fails with the
/// server's logs after `timeout`.
pub fn wait_for<T>(
    ember: &Ember,
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
