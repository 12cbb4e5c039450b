//! Label matchers: the `name="value"`, `!=`, `=~` and `!~` selectors of
//! PromQL, relabeling and the HTTP API.
//!
//! Regular expressions are **fully anchored**: `=~"foo|bar"` matches the
//! whole value, as if written `^(?s:foo|bar)$`. As in Prometheus, `.`
//! matches a newline too (the `s` flag).
//!
//! Matching label values is the inner loop of series selection, so a
//! regex is analysed once at construction and, where its language allows,
//! matched without the regex engine:
//!
//! | pattern shape            | strategy                                   |
//! |--------------------------|--------------------------------------------|
//! | `foo`, `a\|b\|c`, `(?i)ab` | set lookup ([`Matcher::set_matches`])      |
//! | `foo.*`, `.*foo`, `.*foo.*` | `starts_with` / `ends_with` / `contains` over the set |
//! | `.+foo.*` etc.           | as above after dropping the first/last char |
//! | `.*`                     | always true                                |
//! | `.+`                     | non-empty                                  |
//! | anything else            | the compiled regex                         |
//!
//! The analysis works on the parsed syntax tree, not on the pattern text,
//! so case-insensitive patterns stay exact: `(?i)k` is the set
//! `{"K", "k", "\u{212A}"}` (KELVIN SIGN), which is what the regex engine
//! matches too. A set is only used while it has at most
//! [`MAX_SET_MATCHES`] strings.
//!
//! # Differences from RE2 (Go's `regexp`, which Prometheus uses)
//!
//! Ember uses the `regex` crate, whose syntax and linear-time guarantees
//! follow RE2. Where the two differ in meaning, Ember follows RE2: the Perl
//! classes `\d`, `\w`, `\s` and the word boundaries `\b`, `\B` are
//! Unicode-aware in the `regex` crate but ASCII-only in RE2, so patterns
//! are rewritten (`\d` → `[[:digit:]]`, `\s` → `[\t\n\f\r ]`, `\b` →
//! `(?-u:\b)`) before compiling; `=~"\\d+"` does not match `"٣"`, as in
//! Prometheus. Remaining differences a user could notice:
//! - Go's `\Q...\E` (literal text) is rejected; escape the text instead
//!   (`regex::escape`).
//! - Inside brackets, a nested `[`, `&&`, `--` and `~~` are nesting and set
//!   operations here and plain characters in RE2: `[[a]]` is "`[` or `a`,
//!   then `]`" in RE2 and "`a`" here. Such patterns are rare in label
//!   matchers; write `\[` for a literal bracket, which means the same in
//!   both.
//! - The `regex` crate accepts some syntax RE2 rejects (`\b{start}` and
//!   the other extended word boundaries, `(?x)` verbose mode, counted
//!   repetitions over RE2's limit of 1000 as long as the compiled program
//!   stays within the size limit).
//!
//! ```
//! use ember_model::matcher::{MatchOp, Matcher};
//!
//! let m = Matcher::new(MatchOp::Regex, "job", "api|web")?;
//! assert!(m.matches("api") && !m.matches("api2"));
//! assert_eq!(m.set_matches(), Some(&["api".to_string(), "web".to_string()][..]));
//!
//! let m = Matcher::new(MatchOp::NotRegex, "path", "/static/.*")?;
//! assert!(!m.matches("/static/app.js") && m.matches("/api"));
//! # Ok::<(), ember_model::matcher::MatcherError>(())
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use std::borrow::Cow;

use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::labels::{Labels, is_valid_legacy_label_name, write_go_quoted};

/// The most strings a regex may expand to and still be matched by set
/// lookup (Prometheus uses the same bound).
pub const MAX_SET_MATCHES: usize = 256;

/// The kind of comparison a [`Matcher`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the value equals.
    Equal,
    /// `!=`: the value differs.
    NotEqual,
    /// `=~`: the value matches the anchored regex.
    Regex,
    /// `!~`: the value does not match the anchored regex.
    NotRegex,
}

impl MatchOp {
    /// The PromQL operator text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }

    /// Whether the operator negates (`!=`, `!~`).
    pub const fn is_negative(self) -> bool {
        matches!(self, Self::NotEqual | Self::NotRegex)
    }

    /// Whether the operator takes a regex (`=~`, `!~`).
    pub const fn is_regex(self) -> bool {
        matches!(self, Self::Regex | Self::NotRegex)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MatchOp {
    type Err = MatcherError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "=" => Ok(Self::Equal),
            "!=" => Ok(Self::NotEqual),
            "=~" => Ok(Self::Regex),
            "!~" => Ok(Self::NotRegex),
            _ => Err(MatcherError::UnknownOperator { op: s.to_owned() }),
        }
    }
}

/// Errors from building a matcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The regex does not parse or is too large to compile.
    #[error("invalid regular expression {pattern:?}: {message}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// The regex engine's explanation.
        message: String,
    },
    /// Not one of `=`, `!=`, `=~`, `!~`.
    #[error("unknown match operator {op:?}")]
    UnknownOperator {
        /// The text given.
        op: String,
    },
}

/// A label matcher: label `name`, operator `op`, `value` (literal or
/// regex). A missing label matches as the empty string, so `{foo=""}`
/// selects series without `foo`.
///
/// Matchers are immutable, `Send + Sync`, and cheap to clone (the compiled
/// regex is shared). Equality and hashing use `(name, op, value)`.
#[derive(Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// `None` for `=` and `!=`.
    regex: Option<Arc<FastRegex>>,
    matches_empty: bool,
}

impl Matcher {
    /// Builds a matcher, analysing and compiling `value` when `op` is a
    /// regex operator.
    ///
    /// # Errors
    /// [`MatcherError::InvalidRegex`] when the regex does not parse or
    /// exceeds the engine's size limit.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let value = value.into();
        let regex = if op.is_regex() {
            Some(Arc::new(FastRegex::new(&value)?))
        } else {
            None
        };
        let mut matcher = Self {
            name: name.into(),
            op,
            value,
            regex,
            matches_empty: false,
        };
        matcher.matches_empty = matcher.matches("");
        Ok(matcher)
    }

    /// `name="value"`; infallible.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::literal(MatchOp::Equal, name.into(), value.into())
    }

    /// `name!="value"`; infallible.
    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::literal(MatchOp::NotEqual, name.into(), value.into())
    }

    fn literal(op: MatchOp, name: String, value: String) -> Self {
        let matches_empty = value.is_empty() != op.is_negative();
        Self {
            name,
            op,
            value,
            regex: None,
            matches_empty,
        }
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or pattern as given (without the anchoring).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether `value` satisfies the matcher.
    #[inline]
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => self.value == value,
            (MatchOp::NotEqual, _) => self.value != value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(value),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(value),
            // Regex operators always carry a compiled regex.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether the series `labels` satisfies the matcher (an absent label
    /// is the empty string).
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether the empty string (an absent label) matches, precomputed.
    /// Postings use it: such a matcher also selects series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches_empty
    }

    /// For `=~` and `!~`, the exact set of values the regex matches when it
    /// is a finite set of at most [`MAX_SET_MATCHES`] strings, sorted and
    /// deduplicated (`a|b|c`, `(?i)ab`, `foo`); `None` otherwise and for
    /// `=`/`!=`. An index can look these values up directly instead of
    /// scanning every value of the label.
    pub fn set_matches(&self) -> Option<&[String]> {
        match self.regex.as_deref()?.strategy {
            Strategy::Set(ref set) => Some(set),
            _ => None,
        }
    }

    /// For `=~` and `!~`: the literal strings one of which every match must
    /// start with, when the regex has that shape (`foo.*`, `(a|b)x.*`);
    /// sorted and deduplicated. Lets an index restrict a value scan to a
    /// sorted range.
    pub fn prefixes(&self) -> Option<&[String]> {
        match self.regex.as_deref()?.strategy {
            Strategy::Affix {
                kind: AffixKind::Prefix,
                skip_front: false,
                ref strings,
                ..
            } => Some(strings),
            _ => None,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Hash for Matcher {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.op.hash(state);
        self.value.hash(state);
    }
}

impl fmt::Display for Matcher {
    /// The PromQL form, `job=~"api|web"`; names that are not legacy label
    /// names are quoted, as in Prometheus 3 (`"my.label"="x"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_valid_legacy_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            write_go_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        write_go_quoted(f, &self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

/// An anchored regex with the strategy chosen by analysis.
struct FastRegex {
    strategy: Strategy,
}

enum Strategy {
    /// `.*`: every string.
    Any,
    /// `.+`: every non-empty string.
    NonEmpty,
    /// Exactly one of these strings (sorted, deduplicated).
    Set(Vec<String>),
    /// `[.*|.+] S [.*|.+]` with `S` a finite set of literals.
    Affix {
        kind: AffixKind,
        /// Sorted, deduplicated.
        strings: Vec<String>,
        /// The leading wildcard is `.+`: drop one character first.
        skip_front: bool,
        /// The trailing wildcard is `.+`: drop one character first.
        skip_back: bool,
    },
    /// No fast path applies.
    Regex(regex::Regex),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AffixKind {
    /// `S .*`
    Prefix,
    /// `.* S`
    Suffix,
    /// `.* S .*`
    Contains,
}

impl FastRegex {
    fn new(pattern: &str) -> Result<Self, MatcherError> {
        let invalid = |message: String| MatcherError::InvalidRegex {
            pattern: pattern.to_owned(),
            message,
        };
        // Parse the pattern on its own first: besides giving the tree to
        // analyse, this rejects text such as `a)|(b` that would otherwise
        // change meaning once wrapped in the anchoring group below.
        let pattern_text = re2_semantics(pattern).map_err(invalid)?;
        let hir = regex_syntax::ParserBuilder::new()
            .dot_matches_new_line(true)
            .build()
            .parse(&pattern_text)
            .map_err(|e| invalid(e.to_string()))?;
        let strategy = match analyse(&hir) {
            Some(strategy) => strategy,
            None => {
                let regex = regex::Regex::new(&format!("^(?s:{pattern_text})$"))
                    .map_err(|e| invalid(e.to_string()))?;
                Strategy::Regex(regex)
            }
        };
        Ok(Self { strategy })
    }

    #[inline]
    fn is_match(&self, value: &str) -> bool {
        match &self.strategy {
            Strategy::Any => true,
            Strategy::NonEmpty => !value.is_empty(),
            Strategy::Set(set) => set_contains(set, value),
            Strategy::Affix {
                kind,
                strings,
                skip_front,
                skip_back,
            } => {
                let mut chars = value.chars();
                if *skip_front && chars.next().is_none() {
                    return false;
                }
                if *skip_back && chars.next_back().is_none() {
                    return false;
                }
                let rest = chars.as_str();
                match kind {
                    AffixKind::Prefix => strings.iter().any(|s| rest.starts_with(s.as_str())),
                    AffixKind::Suffix => strings.iter().any(|s| rest.ends_with(s.as_str())),
                    AffixKind::Contains => strings.iter().any(|s| rest.contains(s.as_str())),
                }
            }
            Strategy::Regex(regex) => regex.is_match(value),
        }
    }
}

/// Rewrites `pattern` so the `regex` crate gives it RE2's meaning: the
/// Perl classes become their ASCII definitions and word boundaries become
/// ASCII word boundaries (see the module docs). Patterns without a
/// backslash cannot contain either and are returned as they are.
fn re2_semantics(pattern: &str) -> Result<Cow<'_, str>, String> {
    if !pattern.contains('\\') {
        return Ok(Cow::Borrowed(pattern));
    }
    let mut ast = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    if !rewrite_ast(&mut ast) {
        return Ok(Cow::Borrowed(pattern));
    }
    let mut rewritten = String::with_capacity(pattern.len() + 16);
    ast::print::Printer::new()
        .print(&ast, &mut rewritten)
        .map_err(|e| e.to_string())?;
    Ok(Cow::Owned(rewritten))
}

/// Applies [`re2_semantics`]'s rewrites in place; returns whether any was
/// made.
fn rewrite_ast(node: &mut Ast) -> bool {
    match node {
        Ast::ClassPerl(perl) => {
            let replacement = ascii_perl_class(perl);
            *node = Ast::class_bracketed(replacement);
            true
        }
        Ast::Assertion(assertion)
            if matches!(
                assertion.kind,
                ast::AssertionKind::WordBoundary | ast::AssertionKind::NotWordBoundary
            ) =>
        {
            let span = assertion.span;
            let boundary = std::mem::replace(node, Ast::empty(span));
            *node = Ast::group(ast::Group {
                span,
                kind: ast::GroupKind::NonCapturing(ast::Flags {
                    span,
                    items: vec![
                        ast::FlagsItem {
                            span,
                            kind: ast::FlagsItemKind::Negation,
                        },
                        ast::FlagsItem {
                            span,
                            kind: ast::FlagsItemKind::Flag(ast::Flag::Unicode),
                        },
                    ],
                }),
                ast: Box::new(boundary),
            });
            true
        }
        Ast::ClassBracketed(class) => rewrite_class_set(&mut class.kind),
        Ast::Repetition(repetition) => rewrite_ast(&mut repetition.ast),
        Ast::Group(group) => rewrite_ast(&mut group.ast),
        Ast::Alternation(alternation) => alternation
            .asts
            .iter_mut()
            .fold(false, |changed, a| rewrite_ast(a) | changed),
        Ast::Concat(concat) => concat
            .asts
            .iter_mut()
            .fold(false, |changed, a| rewrite_ast(a) | changed),
        Ast::Empty(_)
        | Ast::Flags(_)
        | Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::ClassUnicode(_) => false,
    }
}

fn rewrite_class_set(set: &mut ast::ClassSet) -> bool {
    match set {
        ast::ClassSet::Item(item) => rewrite_class_item(item),
        ast::ClassSet::BinaryOp(op) => {
            rewrite_class_set(&mut op.lhs) | rewrite_class_set(&mut op.rhs)
        }
    }
}

fn rewrite_class_item(item: &mut ast::ClassSetItem) -> bool {
    match item {
        ast::ClassSetItem::Perl(perl) => {
            let replacement = ascii_perl_class(perl);
            *item = ast::ClassSetItem::Bracketed(Box::new(replacement));
            true
        }
        ast::ClassSetItem::Bracketed(class) => rewrite_class_set(&mut class.kind),
        ast::ClassSetItem::Union(union) => union
            .items
            .iter_mut()
            .fold(false, |changed, i| rewrite_class_item(i) | changed),
        ast::ClassSetItem::Empty(_)
        | ast::ClassSetItem::Literal(_)
        | ast::ClassSetItem::Range(_)
        | ast::ClassSetItem::Ascii(_)
        | ast::ClassSetItem::Unicode(_) => false,
    }
}

/// RE2's definition of a Perl class as a bracketed class: `\d` is
/// `[0-9]`, `\w` is `[0-9A-Za-z_]`, `\s` is `[\t\n\f\r ]` (no `\v`,
/// unlike POSIX `[[:space:]]`); negated forms negate over all characters.
fn ascii_perl_class(perl: &ast::ClassPerl) -> ast::ClassBracketed {
    let span = perl.span;
    let ascii = |kind| {
        ast::ClassSet::Item(ast::ClassSetItem::Ascii(ast::ClassAscii {
            span,
            kind,
            negated: false,
        }))
    };
    let literal = |kind, c| ast::ClassSetItem::Literal(ast::Literal { span, kind, c });
    let kind = match perl.kind {
        ast::ClassPerlKind::Digit => ascii(ast::ClassAsciiKind::Digit),
        ast::ClassPerlKind::Word => ascii(ast::ClassAsciiKind::Word),
        ast::ClassPerlKind::Space => {
            use ast::{LiteralKind, SpecialLiteralKind};
            ast::ClassSet::Item(ast::ClassSetItem::Union(ast::ClassSetUnion {
                span,
                items: vec![
                    literal(LiteralKind::Special(SpecialLiteralKind::Tab), '\t'),
                    literal(LiteralKind::Special(SpecialLiteralKind::LineFeed), '\n'),
                    literal(LiteralKind::Special(SpecialLiteralKind::FormFeed), '\u{c}'),
                    literal(
                        LiteralKind::Special(SpecialLiteralKind::CarriageReturn),
                        '\r',
                    ),
                    literal(LiteralKind::HexFixed(ast::HexLiteralKind::X), ' '),
                ],
            }))
        }
    };
    ast::ClassBracketed {
        span,
        negated: perl.negated,
        kind,
    }
}

#[inline]
fn set_contains(set: &[String], value: &str) -> bool {
    // Short sets: a linear scan of lengths and bytes beats binary search.
    if set.len() <= 8 {
        set.iter().any(|s| s == value)
    } else {
        set.binary_search_by(|s| s.as_str().cmp(value)).is_ok()
    }
}

/// Chooses a strategy for the (unanchored) parsed pattern, or `None` when
/// only the regex engine will do.
fn analyse(hir: &Hir) -> Option<Strategy> {
    let hir = strip_captures(hir);
    match any_repetition_min(hir) {
        Some(0) => return Some(Strategy::Any),
        Some(1) => return Some(Strategy::NonEmpty),
        _ => {}
    }
    if let HirKind::Concat(items) = hir.kind() {
        let mut middle: &[Hir] = items;
        let mut lead = None;
        let mut trail = None;
        if let Some((first, rest)) = middle.split_first()
            && let Some(min @ (0 | 1)) = any_repetition_min(strip_captures(first))
        {
            lead = Some(min);
            middle = rest;
        }
        if let Some((last, rest)) = middle.split_last()
            && let Some(min @ (0 | 1)) = any_repetition_min(strip_captures(last))
        {
            trail = Some(min);
            middle = rest;
        }
        if (lead.is_some() || trail.is_some()) && !middle.is_empty() {
            let strings = normalise(concat_set(middle)?);
            let kind = match (lead, trail) {
                (None, Some(_)) => AffixKind::Prefix,
                (Some(_), None) => AffixKind::Suffix,
                _ => AffixKind::Contains,
            };
            return Some(Strategy::Affix {
                kind,
                strings,
                skip_front: lead == Some(1),
                skip_back: trail == Some(1),
            });
        }
    }
    literal_set(hir).map(|set| Strategy::Set(normalise(set)))
}

fn normalise(mut set: Vec<String>) -> Vec<String> {
    set.sort_unstable();
    set.dedup();
    set
}

fn strip_captures(mut hir: &Hir) -> &Hir {
    while let HirKind::Capture(capture) = hir.kind() {
        hir = &capture.sub;
    }
    hir
}

/// For `X*` / `X+` / `X{n,}` where `X` matches any character, the minimum
/// count `n`.
fn any_repetition_min(hir: &Hir) -> Option<u32> {
    match hir.kind() {
        HirKind::Repetition(rep) if rep.max.is_none() && is_any_char(strip_captures(&rep.sub)) => {
            Some(rep.min)
        }
        _ => None,
    }
}

fn is_any_char(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => {
            let ranges = class.ranges();
            ranges.len() == 1 && ranges[0].start() == '\0' && ranges[0].end() == char::MAX
        }
        _ => false,
    }
}

/// The finite language of `hir` when it has at most [`MAX_SET_MATCHES`]
/// strings (duplicates possible), `None` otherwise or when it has
/// assertions (`^`, `\b`, ...) the set could not honour.
fn literal_set(hir: &Hir) -> Option<Vec<String>> {
    match hir.kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(literal) => Some(vec![String::from_utf8(literal.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(class)) => {
            let mut size = 0usize;
            for range in class.ranges() {
                size += (u32::from(range.end()) - u32::from(range.start())) as usize + 1;
                if size > MAX_SET_MATCHES {
                    return None;
                }
            }
            Some(
                class
                    .ranges()
                    .iter()
                    .flat_map(|range| (range.start()..=range.end()).map(String::from))
                    .collect(),
            )
        }
        HirKind::Capture(capture) => literal_set(&capture.sub),
        HirKind::Concat(items) => concat_set(items),
        HirKind::Alternation(alternatives) => {
            let mut union = Vec::new();
            for alternative in alternatives {
                union.extend(literal_set(alternative)?);
                if union.len() > MAX_SET_MATCHES {
                    return None;
                }
            }
            Some(union)
        }
        HirKind::Repetition(rep) => {
            // Small bounded repetitions such as `x?` or `(ab){2}`.
            let max = rep.max.filter(|max| *max <= 8)?;
            let one = literal_set(&rep.sub)?;
            let mut union = Vec::new();
            let mut power = vec![String::new()];
            for count in 0..=max {
                if count >= rep.min {
                    union.extend(power.iter().cloned());
                    if union.len() > MAX_SET_MATCHES {
                        return None;
                    }
                }
                if count < max {
                    power = cross(&power, &one)?;
                }
            }
            Some(union)
        }
        HirKind::Class(Class::Bytes(_)) | HirKind::Look(_) => None,
    }
}

fn concat_set(items: &[Hir]) -> Option<Vec<String>> {
    let mut product = vec![String::new()];
    for item in items {
        product = cross(&product, &literal_set(item)?)?;
    }
    Some(product)
}

/// Every `a + b`, or `None` past [`MAX_SET_MATCHES`].
fn cross(left: &[String], right: &[String]) -> Option<Vec<String>> {
    if left.len().saturating_mul(right.len()) > MAX_SET_MATCHES {
        return None;
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for a in left {
        for b in right {
            let mut joined = String::with_capacity(a.len() + b.len());
            joined.push_str(a);
            joined.push_str(b);
            out.push(joined);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(pattern: &str) -> Matcher {
        Matcher::new(MatchOp::Regex, "l", pattern).expect("valid regex")
    }

    fn strategy_name(m: &Matcher) -> &'static str {
        match m.regex.as_deref().map(|r| &r.strategy) {
            None => "literal",
            Some(Strategy::Any) => "any",
            Some(Strategy::NonEmpty) => "non-empty",
            Some(Strategy::Set(_)) => "set",
            Some(Strategy::Affix { kind, .. }) => match kind {
                AffixKind::Prefix => "prefix",
                AffixKind::Suffix => "suffix",
                AffixKind::Contains => "contains",
            },
            Some(Strategy::Regex(_)) => "regex",
        }
    }

    #[test]
    fn equality_operators() {
        let eq = Matcher::equal("job", "api");
        assert!(eq.matches("api") && !eq.matches("ap") && !eq.matches(""));
        let ne = Matcher::not_equal("job", "api");
        assert!(!ne.matches("api") && ne.matches(""));
        assert!(Matcher::equal("x", "").matches_empty());
        assert!(!Matcher::not_equal("x", "").matches_empty());
        assert!(Matcher::not_equal("x", "a").matches_empty());
        let via_new = Matcher::new(MatchOp::Equal, "job", "a.*").expect("no regex");
        assert!(via_new.matches("a.*") && !via_new.matches("ab"));
    }

    #[test]
    fn strategies_are_chosen() {
        for (pattern, expected) in [
            ("foo", "set"),
            ("", "set"),
            ("a|b|c", "set"),
            ("(a|b)(c|d)", "set"),
            ("(?i)foo", "set"),
            ("foo.*", "prefix"),
            ("(foo|bar).*", "prefix"),
            (".*foo", "suffix"),
            (".*foo.*", "contains"),
            (".+foo.*", "contains"),
            ("foo.+", "prefix"),
            (".*", "any"),
            (".*?", "any"),
            ("(.*)", "any"),
            (".+", "non-empty"),
            ("fo+", "regex"),
            ("[a-z]+", "regex"),
            ("^foo$", "regex"),
            ("(?-s:.*)", "regex"),
            (".*.*", "regex"),
        ] {
            assert_eq!(strategy_name(&re(pattern)), expected, "pattern {pattern:?}");
        }
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let m = re("foo|bar");
        assert!(m.matches("foo") && m.matches("bar"));
        assert!(!m.matches("foobar") && !m.matches("xfoo") && !m.matches("barx"));
        let m = re("b[a-z]r");
        assert!(m.matches("bar") && !m.matches("xbar") && !m.matches("barx"));
        let m = re("");
        assert!(m.matches("") && !m.matches("a"));
    }

    #[test]
    fn dot_matches_newline_like_prometheus() {
        assert!(re("a.b").matches("a\nb"));
        assert!(re("foo.*").matches("foo\nbar"));
        assert!(!re("(?-s:foo.*)").matches("foo\nbar"));
    }

    #[test]
    fn unbalanced_patterns_are_rejected_not_reinterpreted() {
        for pattern in ["a)|(b", "(", "a[", "*", "a{2,1}"] {
            let err = Matcher::new(MatchOp::Regex, "l", pattern).unwrap_err();
            assert!(
                matches!(err, MatcherError::InvalidRegex { .. }),
                "{pattern}"
            );
        }
    }

    #[test]
    fn perl_classes_and_word_boundaries_are_ascii_as_in_re2() {
        let digits = re("\\d+");
        assert!(digits.matches("0123456789"));
        assert!(
            !digits.matches("\u{663}"),
            "ARABIC-INDIC DIGIT THREE is not \\d in RE2"
        );
        let non_digit = re("\\D");
        assert!(non_digit.matches("\u{663}") && non_digit.matches("é") && !non_digit.matches("7"));
        let word = re("\\w+");
        assert!(word.matches("a_Z9") && !word.matches("é"));
        assert!(re("\\W").matches("é"));
        let space = re("\\s");
        for c in ["\t", "\n", "\u{c}", "\r", " "] {
            assert!(space.matches(c), "{c:?}");
        }
        assert!(!space.matches("\u{b}"), "RE2's \\s has no vertical tab");
        assert!(!space.matches("\u{a0}"));
        assert!(re("\\S").matches("\u{a0}"));
        // Inside brackets, negated brackets and set operations.
        assert!(re("[\\d_]+").matches("1_2") && !re("[\\d_]+").matches("\u{663}"));
        assert!(re("[^\\d]").matches("\u{663}") && !re("[^\\d]").matches("3"));
        assert!(re("[\\D]").matches("x") && !re("[\\D]").matches("3"));
        assert!(re("[\\s]").matches(" ") && !re("[\\s]").matches("\u{b}"));
        assert!(re("[\\w&&[^_]]+").matches("ab") && !re("[\\w&&[^_]]+").matches("a_"));
        // ASCII word boundaries: `é` is not a word character in RE2, so
        // there is a boundary between it and `a`.
        assert!(re(".*\\ba").matches("éa"));
        assert!(!re(".*\\Ba").matches("éa"));
        assert!(re("a\\b.*").matches("a b"));
        // Escapes that are not Perl classes survive the rewrite.
        assert!(re("\\d\\.\\x41\\t").matches("1.A\t"));
        // Fast paths still apply to rewritten patterns.
        assert_eq!(strategy_name(&re("foo\\.bar")), "set");
        assert_eq!(strategy_name(&re("\\d")), "set");
    }

    #[test]
    fn set_matches_exposes_sorted_values() {
        assert_eq!(
            re("c|a|b|a").set_matches(),
            Some(&["a".to_owned(), "b".to_owned(), "c".to_owned()][..])
        );
        assert_eq!(re("foo").set_matches(), Some(&["foo".to_owned()][..]));
        assert_eq!(re("foo.*").set_matches(), None);
        assert_eq!(Matcher::equal("l", "foo").set_matches(), None);
        let not = Matcher::new(MatchOp::NotRegex, "l", "a|b").expect("valid");
        assert_eq!(not.set_matches().map(<[String]>::len), Some(2));
        assert!(!not.matches("a") && not.matches("c"));
        assert_eq!(re("foo.*|bar.*").set_matches(), None);
        assert_eq!(
            re("(foo|bar).*").prefixes(),
            Some(&["bar".to_owned(), "foo".to_owned()][..])
        );
    }

    #[test]
    fn case_insensitive_stays_exact() {
        let m = re("(?i)k");
        assert!(m.matches("k") && m.matches("K") && m.matches("\u{212A}"));
        assert!(!m.matches("kk"));
        let m = re("(?i)foo.*");
        assert!(m.matches("FOObar") && m.matches("fOo") && !m.matches("fo"));
        // Too many case variants for a set: still correct through the regex.
        let m = re("(?i)abcdefghijklmnop");
        assert_eq!(strategy_name(&m), "regex");
        assert!(m.matches("AbCdEfGhIjKlMnOp"));
    }

    #[test]
    fn affix_with_plus_needs_a_character() {
        let m = re(".+foo");
        assert!(!m.matches("foo") && m.matches("xfoo") && m.matches("éfoo"));
        let m = re("foo.+");
        assert!(!m.matches("foo") && m.matches("foo!"));
        let m = re(".+foo.+");
        assert!(!m.matches("foo") && !m.matches("xfoo") && m.matches("xfoox"));
        assert!(m.matches("aaafooaaa"));
        let m = re(".+aa.*");
        // Overlapping occurrences: "aaa" has "aa" at 1.
        assert!(m.matches("aaa") && !m.matches("aa"));
    }

    #[test]
    fn matches_labels_treats_absent_as_empty() {
        let ls = Labels::new([("job", "api")]).expect("valid");
        assert!(Matcher::equal("env", "").matches_labels(&ls));
        assert!(!Matcher::not_equal("env", "").matches_labels(&ls));
        assert!(re("api|").matches_labels(&ls));
        assert!(re("api|").matches_empty());
        assert!(!re(".+").matches_empty());
        assert!(re(".*").matches_empty());
    }

    #[test]
    fn display_and_equality() {
        let m = Matcher::new(MatchOp::NotRegex, "job", "a\"b").expect("valid");
        assert_eq!(m.to_string(), r#"job!~"a\"b""#);
        let m = Matcher::equal("my.label", "x");
        assert_eq!(m.to_string(), r#""my.label"="x""#);
        assert_eq!(re("a|b"), re("a|b"));
        assert_ne!(re("a|b"), re("b|a"));
        assert_eq!("!~".parse::<MatchOp>(), Ok(MatchOp::NotRegex));
        assert!("==".parse::<MatchOp>().is_err());
    }
}
