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
//! Consul and the other discovery mechanisms it does not implement, SigV4 signing) load
//! without error and are listed in [`Config::warnings`]. [`load_file`] also reads the
//! files matched by `scrape_config_files`; [`glob::expand`] expands `rule_files` the same
//! way for the rule manager.
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
pub mod glob;
pub mod names;
pub mod raw;
pub mod relabel;
pub mod size;
pub mod source_map;
mod validate;
pub mod validated;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_saphyr::MessageFormatter as _;

pub use duration::{DurationError, format_duration, parse_duration};
pub use ember_model::relabel::{RelabelAction, RelabelConfig, RelabelRegex};
pub use error::{ConfigError, Located};
pub use expand::expand_env;
pub use names::{EscapingScheme, ValidationScheme};
pub use relabel::{RelabelStep, rules_only};
pub use size::{SizeError, format_size, parse_size};
pub use source_map::Position;
pub use validated::*;

use crate::raw::{RawConfig, RawScrapeConfigFile};
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

/// Reads and validates the configuration file at `path`, then the scrape configs of the
/// files its `scrape_config_files` globs match.
///
/// Relative file names inside the configuration (rule files, `password_file`,
/// `file_sd_configs` patterns, plugin paths, ...) are resolved against the directory of
/// the file that names them, as Prometheus does. Scrape configs from
/// `scrape_config_files` are validated against the main file's `global` section and
/// appended, in glob and file order, after the main file's own; job names must be unique
/// across all of them.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    let env = |name: &str| std::env::var(name).ok();
    let map = SourceMap::build(&text);
    let mut config = parse_text(&text, path, &map, &env)?;
    load_scrape_config_files(&mut config, &map)?;
    Ok(config)
}

/// Parses and validates configuration `text` that came from `origin`.
///
/// `origin` names the file in error messages and is the base for relative file names.
/// `$VAR` references in `external_labels` are expanded from the process environment.
/// Nothing is read from disk: `scrape_config_files` are recorded but not loaded (a
/// warning says so); [`load_file`] loads them.
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
    let mut config = parse_text(text, origin, &map, env)?;
    if !config.scrape_config_files.is_empty() {
        let located = Located::new(
            origin,
            map.position_of("scrape_config_files"),
            "scrape_config_files",
            "scrape_config_files are only read when the configuration is loaded from a file; the scrape configs in them are ignored here",
        );
        config.warnings.push(located.to_string());
    }
    Ok(config)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Deserialises and validates the main configuration; `map` indexes `text`.
fn parse_text(
    text: &str,
    origin: &Path,
    map: &SourceMap,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let raw: RawConfig = deserialize(text, origin, map)?;
    validate::Validator::new(origin, map, env).config(raw, text)
}

/// Deserialises `text` into a raw type, mapping errors to `file:line:col: path` form.
fn deserialize<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &Path,
    map: &SourceMap,
) -> Result<T, ConfigError> {
    let mut options = serde_saphyr::Options::default();
    // Errors are rendered here, in the `file:line:col: path: message` form.
    options.with_snippet = false;
    serde_saphyr::from_str_with_options(text, options)
        .map_err(|error| decode_error(&error, origin, map))
}

/// Appends the scrape configs of the files matched by `config.scrape_config_files`.
/// `main_map` indexes the main file, for errors about its `scrape_config_files` entries.
fn load_scrape_config_files(config: &mut Config, main_map: &SourceMap) -> Result<(), ConfigError> {
    let main_file = config.source.path.clone();
    let mut first_seen: HashMap<String, PathBuf> = config
        .scrape_configs
        .iter()
        .map(|scrape| (scrape.job_name.clone(), main_file.clone()))
        .collect();
    let no_env = |_: &str| None;
    for (index, pattern) in config.scrape_config_files.clone().iter().enumerate() {
        let files = glob::expand(pattern).map_err(|error| match error {
            glob::ExpandError::Pattern(error) => {
                let field = source_map::child_index("scrape_config_files", index);
                let position = main_map.position_of(&field);
                ConfigError::Invalid(Box::new(Located::new(
                    &main_file,
                    position,
                    field,
                    error.to_string(),
                )))
            }
            glob::ExpandError::Io(source) => ConfigError::Read {
                path: pattern.clone(),
                source,
            },
        })?;
        for file in files {
            let text = read(&file)?;
            let map = SourceMap::build(&text);
            let raw: RawScrapeConfigFile = deserialize(&text, &file, &map)?;
            let mut validator = validate::Validator::new(&file, &map, &no_env);
            for (position, raw_scrape) in raw.scrape_configs.unwrap_or_default().iter().enumerate()
            {
                let path = source_map::child_index("scrape_configs", position);
                let scrape =
                    validator.scrape_config(&path, raw_scrape, &config.global, &config.plugins)?;
                if let Some(first) = first_seen.get(&scrape.job_name) {
                    return Err(validator.error(
                        &source_map::child_key(&path, "job_name"),
                        format!(
                            "found multiple scrape configs with job name {:?}, first found in {}",
                            scrape.job_name,
                            first.display()
                        ),
                    ));
                }
                first_seen.insert(scrape.job_name.clone(), file.clone());
                config.scrape_configs.push(scrape);
            }
            config.warnings.extend(validator.into_warnings());
        }
    }
    Ok(())
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
    let message = suggest_field(&message).unwrap_or(message);
    let about_container = message.starts_with("missing field");
    let field = map.path_at(position, about_container);
    ConfigError::Syntax(Box::new(Located::new(origin, position, field, message)))
}

/// Rewrites "unknown field `scrape_intervall`, expected one of <90 names>" into
/// "unknown field `scrape_intervall`, did you mean `scrape_interval`?" when one expected
/// name is within a small edit distance, which is the usual case (a typo). Otherwise the
/// message, with its full list, is left alone.
fn suggest_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.strip_prefix(", expected one of ")?;
    let (distance, closest) = expected
        .split(", ")
        .map(|candidate| candidate.trim_matches('`'))
        .map(|candidate| (edit_distance(field, candidate), candidate))
        .min()?;
    let tolerance = (field.chars().count() / 4).clamp(1, 3);
    (distance <= tolerance).then(|| format!("unknown field `{field}`, did you mean `{closest}`?"))
}

/// Levenshtein distance between two short strings, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("scrape_interval", "scrape_interval"), 0);
        assert_eq!(edit_distance("scrape_intervall", "scrape_interval"), 1);
        assert_eq!(edit_distance("scrape_inetrval", "scrape_interval"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn suggests_the_closest_field_for_typos_only() {
        let message = "unknown field `scrape_intervall`, expected one of job_name, scrape_interval, scrape_timeout";
        assert_eq!(
            suggest_field(message).as_deref(),
            Some("unknown field `scrape_intervall`, did you mean `scrape_interval`?")
        );
        let far = "unknown field `target`, expected one of source_labels, target_label, regex";
        assert_eq!(suggest_field(far), None);
        assert_eq!(suggest_field("invalid u64"), None);
    }
}
