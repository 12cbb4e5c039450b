//! Metric and label name rules: the validation and escaping schemes of Prometheus 3.

use std::fmt;

/// How metric and label names are validated (`metric_name_validation_scheme`).
///
/// Prometheus 3 defaults to [`ValidationScheme::Utf8`], under which any non-empty UTF-8
/// string is a valid name; [`ValidationScheme::Legacy`] restores the classic
/// `[a-zA-Z_][a-zA-Z0-9_]*` rule for label names (metric names may also contain `:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidationScheme {
    /// Any non-empty UTF-8 string (the default).
    #[default]
    Utf8,
    /// Letters, digits, underscores (and colons in metric names); no leading digit.
    Legacy,
}

impl ValidationScheme {
    /// Parses the YAML spelling; the empty string means "inherit", so it is not accepted here.
    pub fn from_config(text: &str) -> Option<Self> {
        match text {
            "utf8" => Some(Self::Utf8),
            "legacy" => Some(Self::Legacy),
            _ => None,
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Utf8 => "utf8",
            Self::Legacy => "legacy",
        }
    }

    /// Whether `name` is a valid label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            Self::Utf8 => !name.is_empty(),
            Self::Legacy => is_legacy_label_name(name),
        }
    }

    /// The escaping scheme Prometheus picks when `metric_name_escaping_scheme` is unset.
    pub fn default_escaping(self) -> EscapingScheme {
        match self {
            Self::Utf8 => EscapingScheme::AllowUtf8,
            Self::Legacy => EscapingScheme::Underscores,
        }
    }
}

impl fmt::Display for ValidationScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How names outside the legacy character set are escaped when scraping
/// (`metric_name_escaping_scheme`), negotiated through the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapingScheme {
    /// `allow-utf-8`: no escaping.
    AllowUtf8,
    /// `underscores`: every invalid character becomes `_`.
    Underscores,
    /// `dots`: `.` becomes `_dot_`, `_` becomes `__`, anything else invalid becomes `_`.
    Dots,
    /// `values`: `U__` prefix and invalid characters as `_<hex code point>_`.
    Values,
}

impl EscapingScheme {
    /// Parses the YAML spelling.
    pub fn from_config(text: &str) -> Option<Self> {
        match text {
            "allow-utf-8" => Some(Self::AllowUtf8),
            "underscores" => Some(Self::Underscores),
            "dots" => Some(Self::Dots),
            "values" => Some(Self::Values),
            _ => None,
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowUtf8 => "allow-utf-8",
            Self::Underscores => "underscores",
            Self::Dots => "dots",
            Self::Values => "values",
        }
    }
}

impl fmt::Display for EscapingScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `name` matches the legacy label name rule `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_follow_the_classic_rule() {
        for good in ["a", "_", "job", "__name__", "A_1"] {
            assert!(ValidationScheme::Legacy.is_valid_label_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a:b"] {
            assert!(!ValidationScheme::Legacy.is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn utf8_names_only_need_to_be_non_empty() {
        for good in ["a.b", "1a", "é", "app.kubernetes.io/name"] {
            assert!(ValidationScheme::Utf8.is_valid_label_name(good), "{good}");
        }
        assert!(!ValidationScheme::Utf8.is_valid_label_name(""));
    }
}
