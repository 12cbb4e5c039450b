//! [`ConfigError`]: every way loading a configuration can fail, with a position.

use std::fmt;
use std::path::PathBuf;

use crate::source_map::Position;

/// A configuration problem at a known place: file, 1-based line and column, field path.
///
/// Displays as `prometheus.yml:12:5: scrape_configs[1].scrape_timeout: <message>`, the
/// shape compilers and editors understand as a clickable location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The configuration file (as given to [`crate::load_file`] or [`crate::parse`]).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// Dotted field path such as `scrape_configs[1].scrape_timeout`; empty for the
    /// document as a whole.
    pub field: String,
    /// What is wrong, without the location prefix.
    pub message: String,
}

impl Located {
    pub(crate) fn new(
        file: impl Into<PathBuf>,
        position: Position,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: position.line,
            column: position.column,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read configuration file: {source}", path.display())]
    Read {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not well-formed YAML, or does not fit the schema: a wrong type, an
    /// unknown or missing field, a duplicate key.
    #[error("{0}")]
    Syntax(Box<Located>),
    /// The document fits the schema but breaks a rule: a malformed duration, a timeout
    /// longer than its interval, a duplicate job name, ...
    #[error("{0}")]
    Invalid(Box<Located>),
}

impl ConfigError {
    /// Where the problem is, for errors that have a position in the file.
    pub fn location(&self) -> Option<&Located> {
        match self {
            Self::Read { .. } => None,
            Self::Syntax(located) | Self::Invalid(located) => Some(located),
        }
    }
}
