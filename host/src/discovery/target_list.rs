//! The target list format that file and HTTP discovery read: a list of
//! `<static_config>`s, `[{"targets": ["host:port", ...], "labels": {...}}, ...]`,
//! in JSON or (files only) YAML.
//!
//! Decoding follows Prometheus's `targetgroup.Group` unmarshalling: unknown
//! fields are errors, `targets` and `labels` may be missing or null, a null
//! list is an empty list, but a null *item* is an error ("nil target group
//! item found"). In JSON, as with Go's `encoding/json`, field names match
//! regardless of ASCII case (`"Targets"` works) and a repeated field takes
//! the last value; in YAML, as with Go's strict YAML decoding, field names
//! are exact and repeated keys are errors. Label names are validated as
//! Prometheus 3 validates them while decoding, with its default UTF-8
//! scheme: any non-empty name. A job's `metric_name_validation_scheme:
//! legacy` is enforced later, when targets are relabelled, not here, again
//! as in Prometheus.

use std::collections::BTreeMap;

use ember_config::ValidationScheme;
use serde::Deserialize;

use super::TargetGroup;

/// Why a target list could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetListError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("nil target group item found at index {0}")]
    NullGroup(usize),
    #[error("group {group}: {name:?} is not a valid label name")]
    LabelName { group: usize, name: String },
}

/// The wire shape of one group.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// A [`RawGroup`] decoded from JSON with Go's field matching rules.
struct JsonGroup(RawGroup);

impl<'de> Deserialize<'de> for JsonGroup {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(JsonGroupVisitor)
    }
}

struct JsonGroupVisitor;

impl<'de> serde::de::Visitor<'de> for JsonGroupVisitor {
    type Value = JsonGroup;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a target group object with \"targets\" and \"labels\"")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonGroup, A::Error> {
        let mut group = RawGroup::default();
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case("targets") {
                group.targets = map.next_value()?;
            } else if key.eq_ignore_ascii_case("labels") {
                group.labels = map.next_value()?;
            } else {
                return Err(serde::de::Error::unknown_field(
                    &key,
                    &["targets", "labels"],
                ));
            }
        }
        Ok(JsonGroup(group))
    }
}

type RawList<G> = Option<Vec<Option<G>>>;

/// The text format of a target list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
}

/// Decodes `bytes` into groups with sources `"<origin>:<index>"` and the
/// label `meta_label="<origin>"` added to each group's labels.
pub(crate) fn decode(
    bytes: &[u8],
    format: Format,
    origin: &str,
    meta_label: &str,
) -> Result<Vec<TargetGroup>, TargetListError> {
    let raw: Vec<Option<RawGroup>> = match format {
        Format::Json => serde_json::from_slice::<RawList<JsonGroup>>(bytes)?
            .unwrap_or_default()
            .into_iter()
            .map(|group| group.map(|JsonGroup(group)| group))
            .collect(),
        Format::Yaml => decode_yaml(bytes)?.unwrap_or_default(),
    };
    let mut groups = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let raw = raw.ok_or(TargetListError::NullGroup(index))?;
        let mut labels = raw.labels.unwrap_or_default();
        if let Some(name) = labels
            .keys()
            .find(|name| !ValidationScheme::Utf8.is_valid_label_name(name))
        {
            return Err(TargetListError::LabelName {
                group: index,
                name: name.clone(),
            });
        }
        labels.insert(meta_label.to_owned(), origin.to_owned());
        let mut group =
            TargetGroup::from_addresses(source(origin, index), raw.targets.unwrap_or_default());
        group.labels = labels;
        groups.push(group);
    }
    Ok(groups)
}

/// The source of the `index`th group read from `origin`.
pub(crate) fn source(origin: &str, index: usize) -> String {
    format!("{origin}:{index}")
}

fn decode_yaml(bytes: &[u8]) -> Result<RawList<RawGroup>, serde_saphyr::Error> {
    // Go's YAML decoder leaves the list nil for a document with no content (an
    // empty file, or only comments); so do we, rather than report an error.
    if is_blank_yaml(bytes) {
        return Ok(None);
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_slice_with_options(bytes, options)
}

/// Whether `bytes` holds no YAML node: only whitespace and comments.
fn is_blank_yaml(bytes: &[u8]) -> bool {
    bytes.split(|&byte| byte == b'\n').all(|line| {
        let line = line.trim_ascii();
        line.is_empty() || line.starts_with(b"#")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn json_groups_get_sources_addresses_and_the_meta_label() {
        let text = br#"[
            {"targets": ["a:1", "b:2"], "labels": {"env": "prod"}},
            {"targets": ["c:3"]},
            {"labels": {"only": "labels"}}
        ]"#;
        let groups = decode(text, Format::Json, "/sd/x.json", "__meta_filepath").unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].source, "/sd/x.json:0");
        assert_eq!(groups[2].source, "/sd/x.json:2");
        assert_eq!(
            groups[0].targets,
            vec![
                labels(&[("__address__", "a:1")]),
                labels(&[("__address__", "b:2")])
            ]
        );
        assert_eq!(
            groups[0].labels,
            labels(&[("__meta_filepath", "/sd/x.json"), ("env", "prod")])
        );
        assert_eq!(
            groups[1].labels,
            labels(&[("__meta_filepath", "/sd/x.json")])
        );
        assert!(groups[2].targets.is_empty());
    }

    #[test]
    fn yaml_groups_match_json_groups() {
        let yaml = b"# nodes\n- targets: ['a:1']\n  labels:\n    env: prod\n    port: 9100\n";
        let json = br#"[{"targets": ["a:1"], "labels": {"env": "prod", "port": "9100"}}]"#;
        assert_eq!(
            decode(yaml, Format::Yaml, "f", "__meta_filepath").unwrap(),
            decode(json, Format::Json, "f", "__meta_filepath").unwrap()
        );
    }

    #[test]
    fn null_and_empty_lists_are_empty_but_a_null_item_is_an_error() {
        for (text, format) in [
            (&b"null"[..], Format::Json),
            (b"[]", Format::Json),
            (b"", Format::Yaml),
            (b"# nothing yet\n", Format::Yaml),
            (b"[]", Format::Yaml),
            (br#"[{"targets": null, "labels": null}]"#, Format::Json),
        ] {
            let groups = decode(text, format, "f", "m").unwrap();
            assert!(
                groups.iter().all(|group| group.targets.is_empty()),
                "{text:?}"
            );
        }
        let error = decode(br#"[{"targets": ["a"]}, null]"#, Format::Json, "f", "m").unwrap_err();
        assert!(matches!(error, TargetListError::NullGroup(1)), "{error}");
    }

    #[test]
    fn malformed_input_is_rejected() {
        for (text, format) in [
            (&b"["[..], Format::Json),
            (b"", Format::Json),
            (br#"{"targets": ["a"]}"#, Format::Json),
            (br#"[{"targets": ["a"], "extra": 1}]"#, Format::Json),
            (br#"[{"targets": [1]}]"#, Format::Json),
            (br#"[{"targets": ["a"], "labels": {"n": 1}}]"#, Format::Json),
            (
                br#"[{"targets": ["a"], "labels": {"": "empty name"}}]"#,
                Format::Json,
            ),
            (b"- targets: [a]\n  unknown: 1\n", Format::Yaml),
            (b"- targets: [a]\n  labels: {a: 1, a: 2}\n", Format::Yaml),
            (b"- targets: [a\n", Format::Yaml),
            (b"targets: [a]\n", Format::Yaml),
        ] {
            assert!(
                decode(text, format, "f", "m").is_err(),
                "{:?} should not decode",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn json_field_names_match_as_in_go() {
        let text = br#"[{"Targets": ["a:1"], "LABELS": {"env": "x"}, "labels": {"env": "last"}}]"#;
        let groups = decode(text, Format::Json, "f", "m").unwrap();
        assert_eq!(groups[0].targets, vec![labels(&[("__address__", "a:1")])]);
        assert_eq!(
            groups[0].labels["env"], "last",
            "a repeated field takes the last value"
        );
        // YAML field names are exact.
        assert!(decode(b"- Targets: [a]\n", Format::Yaml, "f", "m").is_err());
    }

    #[test]
    fn utf8_label_names_are_valid() {
        let groups = decode(
            r#"[{"targets": ["a"], "labels": {"région.name": "ok"}}]"#.as_bytes(),
            Format::Json,
            "f",
            "m",
        )
        .unwrap();
        assert_eq!(groups[0].labels["région.name"], "ok");
    }
}
