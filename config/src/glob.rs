//! File name globs with Go's `filepath.Glob` semantics, for `rule_files` and
//! `scrape_config_files`.
//!
//! A pattern segment may use `*` (any run of characters except the separator), `?` (one
//! such character), `[...]` character classes with ranges and `^` negation, and `\` to
//! escape the next character. Matches are returned sorted, like Go's. A pattern without
//! metacharacters yields itself if the file exists; a directory that does not exist
//! yields no matches rather than an error, also like Go.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a glob pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {pattern:?}: {reason}")]
pub struct GlobError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Expands `pattern` into the existing files it matches, sorted.
///
/// ```no_run
/// let rule_files = ember_config::glob::expand(std::path::Path::new("/etc/ember/rules/*.yml"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn expand(pattern: &Path) -> Result<Vec<PathBuf>, ExpandError> {
    let text = pattern.to_string_lossy();
    if !has_meta(&text) {
        return Ok(if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let mut candidates = vec![PathBuf::new()];
    for component in pattern.components() {
        let segment = component.as_os_str().to_string_lossy();
        let literal = !matches!(component, Component::Normal(_)) || !has_meta(&segment);
        let mut next = Vec::new();
        for base in &candidates {
            if literal {
                next.push(base.join(component.as_os_str()));
                continue;
            }
            let directory = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let entries = match std::fs::read_dir(directory) {
                Ok(entries) => entries,
                // Go's Glob ignores unreadable or missing directories.
                Err(_) => continue,
            };
            let mut names: Vec<String> = entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect();
            names.sort();
            for name in names {
                if matches(&segment, &name)
                    .map_err(|error| ExpandError::Pattern(error.with_pattern(&text)))?
                {
                    next.push(base.join(name));
                }
            }
        }
        candidates = next;
    }
    Ok(candidates
        .into_iter()
        .filter(|path| path.exists())
        .collect())
}

/// Why a glob could not be expanded.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    /// The pattern is malformed.
    #[error(transparent)]
    Pattern(#[from] GlobError),
    /// Reading a directory failed for a reason other than its absence.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl GlobError {
    fn with_pattern(mut self, pattern: &str) -> Self {
        pattern.clone_into(&mut self.pattern);
        self
    }
}

fn has_meta(text: &str) -> bool {
    text.contains(['*', '?', '[', '\\'])
}

/// Whether `name` matches the one-segment pattern `pattern` (Go's `filepath.Match`).
pub fn matches(pattern: &str, name: &str) -> Result<bool, GlobError> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn bad(reason: &'static str) -> GlobError {
    GlobError {
        pattern: String::new(),
        reason,
    }
}

fn match_from(pattern: &[char], name: &[char]) -> Result<bool, GlobError> {
    let Some((&first, rest)) = pattern.split_first() else {
        return Ok(name.is_empty());
    };
    match first {
        '*' => {
            // Try every split point; `*` never crosses a separator, and segments have none.
            for skip in 0..=name.len() {
                if match_from(rest, &name[skip..])? {
                    return Ok(true);
                }
            }
            // Still validate the rest of the pattern so that bad syntax is reported.
            match_from(rest, &[]).map(|_| false)
        }
        '?' => Ok(!name.is_empty() && match_from(rest, &name[1..])?),
        '[' => {
            let (matched, after) = match_class(rest, name.first().copied())?;
            Ok(matched && match_from(after, &name[1..])?)
        }
        '\\' => {
            let (&escaped, after) = rest
                .split_first()
                .ok_or_else(|| bad("trailing backslash"))?;
            Ok(name.first() == Some(&escaped) && match_from(after, &name[1..])?)
        }
        literal => Ok(name.first() == Some(&literal) && match_from(rest, &name[1..])?),
    }
}

/// Matches one character against the class starting just after `[`; returns whether it
/// matched and the pattern after the closing `]`. `candidate` is `None` at end of name.
/// As in Go, a `-` or `]` inside a class must be escaped, and a class cannot be empty.
fn match_class(class: &[char], candidate: Option<char>) -> Result<(bool, &[char]), GlobError> {
    let (negated, mut rest) = match class.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, class),
    };
    let mut matched = false;
    let mut ranges = 0;
    loop {
        if let Some((']', after)) = rest.split_first()
            && ranges > 0
        {
            rest = after;
            break;
        }
        let (low, after) = class_char(rest)?;
        let (high, after) = match after.split_first() {
            Some(('-', range_rest)) => class_char(range_rest)?,
            _ => (low, after),
        };
        if low > high {
            return Err(bad("inverted range in character class"));
        }
        if candidate.is_some_and(|c| low <= c && c <= high) {
            matched = true;
        }
        ranges += 1;
        rest = after;
    }
    Ok((candidate.is_some() && matched != negated, rest))
}

/// One (possibly escaped) character of a class, and the rest of the class after it.
fn class_char(class: &[char]) -> Result<(char, &[char]), GlobError> {
    match class.split_first() {
        None => Err(bad("unterminated character class")),
        Some(('-' | ']', _)) => Err(bad("unescaped '-' or ']' in character class")),
        Some(('\\', rest)) => match rest.split_first() {
            Some((&escaped, after)) => Ok((escaped, after)),
            None => Err(bad("trailing backslash in character class")),
        },
        Some((&c, rest)) => Ok((c, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_segment_matching_follows_go() {
        let cases = [
            ("*.yml", "rules.yml", true),
            ("*.yml", "rules.yaml", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b", "acb.b", true),
            ("?.yml", "a.yml", true),
            ("?.yml", "ab.yml", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            (r"[\]a]", "]", true),
            (r"\*", "*", true),
            (r"\*", "a", false),
            ("*", "", true),
            ("é*", "été", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(matches(pattern, name), Ok(expected), "{pattern} ~ {name}");
        }
        assert!(matches("[a-", "a").is_err());
        assert!(matches("[]a]", "a").is_err());
        assert!(matches("[z-a]", "b").is_err());
        assert!(matches("a\\", "a").is_err());
    }

    #[test]
    fn expands_against_the_file_system() {
        let dir = std::env::temp_dir().join(format!("ember-config-glob-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("temp dir");
        for name in ["b.yml", "a.yml", "c.json", "sub/d.yml"] {
            std::fs::write(dir.join(name), "").expect("write");
        }
        let found = expand(&dir.join("*.yml")).expect("expands");
        assert_eq!(found, [dir.join("a.yml"), dir.join("b.yml")]);
        assert_eq!(
            expand(&dir.join("*/*.yml")).expect("expands"),
            [dir.join("sub/d.yml")]
        );
        assert_eq!(
            expand(&dir.join("c.json")).expect("expands"),
            [dir.join("c.json")]
        );
        assert!(
            expand(&dir.join("missing.yml"))
                .expect("expands")
                .is_empty()
        );
        assert!(
            expand(&dir.join("missing-dir/*.yml"))
                .expect("expands")
                .is_empty()
        );
        assert!(matches!(
            expand(&dir.join("[.yml")),
            Err(ExpandError::Pattern(_))
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
