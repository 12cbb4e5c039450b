//! Ember's configuration: the whole `prometheus.yml` model, parsed and validated.
//!
//! Loading happens in two stages. [`raw`] holds serde types that mirror the YAML
//! exactly and reject unknown fields; [`parse`] then resolves them into the validated
//! [`Config`]: durations and sizes parsed, regexes compiled and anchored, URLs checked,
//! `global` defaults copied into every scrape config, relative file names resolved
//! against the configuration's directory, and Prometheus's rules enforced. Every error,
//! whether from the YAML syntax, the schema or a rule, names the file, the 1-based line
//! and column and the field path:
//!
//! ```text
//! prometheus.yml:12:5: scrape_configs[1].scrape_timeout: scrape timeout 20s is greater than scrape interval 10s
//! ```
//!
//! Settings that Ember accepts for compatibility but does not act on (Kubernetes,
//! Consul and the other discovery mechanisms it does not implement, SigV4 signing,
//! `scrape_config_files`) load without error and are listed in [`Config::warnings`].
//!
//! Principal items: [`load_file`], [`parse`], [`Config`], [`ConfigError`],
//! [`DEFAULT_CONFIG_YAML`], and the `<duration>` / `<size>` helpers [`parse_duration`],
//! [`format_duration`], [`parse_size`] and [`format_size`].
//!
//! ```
//! use std::path::Path;
//! use std::time::Duration;
//!
//! let yaml = "
//! global:
//!   scrape_interval: 15s
//! scrape_configs:
//!   - job_name: node
//!     static_configs:
//!       - targets: ['localhost:9100']
//! ";
//! let config = ember_config::parse(yaml, Path::new("prometheus.yml")).unwrap();
//! let job = &config.scrape_configs[0];
//! assert_eq!(job.scrape_interval, Duration::from_secs(15)); // from global
//! assert_eq!(job.scrape_timeout, Duration::from_secs(10)); // default
//! assert_eq!(job.metrics_path, "/metrics");
//!
//! let error = ember_config::parse("global:\n  scrape_intervall: 15s\n", Path::new("prometheus.yml"))
//!     .unwrap_err();
//! assert!(error.to_string().starts_with("prometheus.yml:2:3: global.scrape_intervall: unknown field"));
//! ```
//!
//! # Why `serde-saphyr`
//!
//! `serde_yaml` is deprecated. Of its maintained successors, `serde-saphyr` was chosen over
//! `serde_yaml_ng` and `serde_norway` after a probe of all three: each reports a line and
//! column for schema errors, but only `serde-saphyr` exposes its parser's event stream
//! with spans (`granit_parser`), from which [`source_map`] builds the one
//! path-to-position index that both deserialisation errors (position to path) and
//! validation errors (path to position) need. That keeps the raw types plain serde
//! structs instead of wrapping every field in a `Spanned<T>`. It is also pure Rust and
//! panic-free by design, where the other two sit on machine-translated unsafe libyaml,
//! and it points duplicate keys at the duplicate. `config/README.md` has the details.

pub mod duration;
pub mod error;
pub mod expand;
pub mod names;
pub mod raw;
pub mod relabel;
pub mod size;
pub mod source_map;
mod validate;
pub mod validated;

use std::path::Path;

use serde_saphyr::MessageFormatter as _;

pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, Located};
pub use expand::expand_env;
pub use names::{EscapingScheme, ValidationScheme};
pub use relabel::{RelabelAction, RelabelConfig, RelabelRegex};
pub use size::{SizeError, format_size, parse_size};
pub use source_map::Position;
pub use validated::*;

use crate::raw::RawConfig;
use crate::source_map::SourceMap;

/// A configuration that works out of the box: Ember scrapes itself on `localhost:9090`
/// every 15 seconds as job `ember`, and evaluates rules every 15 seconds.
pub const DEFAULT_CONFIG_YAML: &str = "\
# Ember's built-in configuration, used when no configuration file is given.
global:
  scrape_interval: 15s
  evaluation_interval: 15s

scrape_configs:
  - job_name: ember
    static_configs:
      - targets: ['localhost:9090']
";

/// Reads and validates the configuration file at `path`.
///
/// Relative file names inside the configuration (rule files, `password_file`,
/// `file_sd_configs` patterns, plugin paths, ...) are resolved against `path`'s directory.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates configuration `text` that came from `origin`.
///
/// `origin` names the file in error messages and is the base for relative file names.
/// `$VAR` references in `external_labels` are expanded from the process environment.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    parse_with_env(text, origin, &|name| std::env::var(name).ok())
}

/// Like [`parse`], but looks environment variables up with `env`, so callers (and tests)
/// can control `external_labels` expansion.
pub fn parse_with_env(
    text: &str,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let map = SourceMap::build(text);
    let mut options = serde_saphyr::Options::default();
    // Errors are rendered here, in the `file:line:col: path: message` form.
    options.with_snippet = false;
    let raw: RawConfig = serde_saphyr::from_str_with_options(text, options)
        .map_err(|error| decode_error(&error, origin, &map))?;
    validate::Validator::new(origin, &map, env).config(raw, text)
}

/// Turns a deserialisation error into a [`ConfigError::Syntax`] with a field path.
fn decode_error(error: &serde_saphyr::Error, origin: &Path, map: &SourceMap) -> ConfigError {
    let position = error
        .location()
        .map(|location| Position {
            line: location.line(),
            column: location.column(),
        })
        .filter(|position| position.line > 0)
        .unwrap_or(Position { line: 1, column: 1 });
    let message = serde_saphyr::UserMessageFormatter
        .format_message(error.without_snippet())
        .into_owned();
    let about_container = message.starts_with("missing field");
    let field = map.path_at(position, about_container);
    ConfigError::Syntax(Box::new(Located::new(origin, position, field, message)))
}
