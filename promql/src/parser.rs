//! The one place where the engine meets the PromQL syntax tree.
//!
//! Parsing is delegated to the [`promql_parser`] crate (see the crate docs
//! for why). This module re-exports the AST types the engine uses, turns
//! the crate's string errors into [`ParseError`], and recovers what the
//! crate's AST does not keep:
//!
//! - **Source positions.** Prometheus ends annotation messages with the
//!   position of the node they are about (`(1:25)`). The crate's nodes carry
//!   no spans, so [`SourceMap`] re-scans the query text: function and
//!   aggregation names appear in the source in the same order as a
//!   pre-order walk of the tree visits them, which lets a call node be
//!   paired with its text and the start of each of its arguments found by
//!   counting top-level commas.
//! - **Go string semantics.** PromQL strings are Go strings: `"\xc5"` is the
//!   raw byte 0xC5, not U+00C5. The crate decodes code points, so strings
//!   whose Go decoding is not valid UTF-8 (which Prometheus rejects as label
//!   names) are recorded in [`Query::invalid_utf8`] with Go's `%q` spelling.
//!
//! ```
//! let query = ember_promql::parser::parse_query("sum(rate(x[5m]))")?;
//! assert!(matches!(query.expr, ember_promql::parser::Expr::Aggregate(_)));
//! # Ok::<(), ember_promql::parser::ParseError>(())
//! ```

use std::collections::HashMap;

pub use promql_parser::label::{MatchOp as AstMatchOp, Matcher as AstMatcher};
pub use promql_parser::parser::token::{self, TokenType};
pub use promql_parser::parser::value::ValueType;
pub use promql_parser::parser::{
    AggregateExpr, AtModifier, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    NumberLiteral, Offset, ParenExpr, StringLiteral, SubqueryExpr, UnaryExpr,
    VectorMatchCardinality, VectorSelector,
};

/// A query that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}parse error: {message}", position = match .position {
    Some((line, column)) => format!("{line}:{column}: "),
    None => String::new(),
})]
pub struct ParseError {
    /// 1-based line and column when the failure can be located.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

/// A parsed query: the tree, its text and what was recovered from the text.
#[derive(Debug, Clone)]
pub struct Query {
    /// The syntax tree.
    pub expr: Expr,
    /// The query text as given.
    pub text: String,
    /// Strings of the query whose Go decoding is not valid UTF-8, keyed by
    /// the crate's (code point) decoding, valued by Go's `%q` spelling.
    pub invalid_utf8: HashMap<String, String>,
}

/// Parses `text` as a PromQL expression.
pub fn parse_query(text: &str) -> Result<Query, ParseError> {
    let expr = promql_parser::parser::parse(text).map_err(|message| ParseError {
        position: locate_error(text, &message),
        message,
    })?;
    Ok(Query {
        expr,
        text: text.to_owned(),
        invalid_utf8: invalid_utf8_strings(text),
    })
}

/// Formats a query as Prometheus's `/api/v1/format_query` does (the
/// parser crate's pretty-printer).
pub fn format_query(text: &str) -> Result<String, ParseError> {
    Ok(parse_query(text)?.expr.prettify())
}

/// The crate's messages are position-less; when the message quotes an
/// offending fragment that occurs exactly once in the query, point at it.
fn locate_error(text: &str, message: &str) -> Option<(usize, usize)> {
    let quoted = message
        .split('\'')
        .nth(1)
        .or_else(|| message.split('"').nth(1))?;
    // An ambiguous position would mislead more than none.
    if quoted.is_empty() || text.matches(quoted).count() != 1 {
        return None;
    }
    text.find(quoted).map(|offset| line_column(text, offset))
}

/// 1-based line and column (in characters) of byte `offset`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A lexical token of the query text, as far as [`SourceMap`] needs it.
#[derive(Debug, Clone, PartialEq)]
enum Lexeme {
    Ident(String),
    Open(char),
    Close(char),
    Comma,
    Other,
}

/// Scans `text` into (byte offset, lexeme), skipping strings and comments.
fn lex(text: &str) -> Vec<(usize, Lexeme)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' | b'`' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != c {
                    if bytes[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push((start, Lexeme::Other));
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                out.push((i, Lexeme::Open(c as char)));
                i += 1;
            }
            b')' | b']' | b'}' => {
                out.push((i, Lexeme::Close(c as char)));
                i += 1;
            }
            b',' => {
                out.push((i, Lexeme::Comma));
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
                {
                    i += 1;
                }
                out.push((start, Lexeme::Ident(text[start..i].to_owned())));
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                out.push((i, Lexeme::Other));
                i += 1;
            }
        }
    }
    out
}

/// Positions of call-like nodes (functions and aggregations) and of their
/// arguments, in source order.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// For every call-like occurrence in source order: its name, its byte
    /// offset and the byte offsets of its top-level arguments.
    calls: Vec<(String, usize, Vec<usize>)>,
}

impl SourceMap {
    /// Scans `text`.
    pub fn new(text: &str) -> Self {
        let tokens = lex(text);
        let mut calls = Vec::new();
        for (index, (offset, lexeme)) in tokens.iter().enumerate() {
            let Lexeme::Ident(name) = lexeme else {
                continue;
            };
            // Skip a `by (...)`/`without (...)` clause between an
            // aggregation's name and its arguments.
            let mut next = index + 1;
            if let Some((_, Lexeme::Ident(word))) = tokens.get(next)
                && (word.eq_ignore_ascii_case("by") || word.eq_ignore_ascii_case("without"))
            {
                next += 1;
                if let Some((_, Lexeme::Open('('))) = tokens.get(next) {
                    next = skip_group(&tokens, next);
                }
            }
            let Some((_, Lexeme::Open('('))) = tokens.get(next) else {
                continue;
            };
            // A label name followed by `(` cannot happen; an identifier
            // right before `(` is a call, an aggregation or a keyword
            // such as `by`, `on`, `ignoring`, `group_left`, `bool`.
            if is_keyword(name) {
                continue;
            }
            let mut args = Vec::new();
            let mut depth = 0usize;
            let mut expecting_arg = true;
            for (arg_offset, lexeme) in &tokens[next + 1..] {
                if expecting_arg && depth == 0 {
                    if matches!(lexeme, Lexeme::Close(')')) {
                        break;
                    }
                    args.push(*arg_offset);
                    expecting_arg = false;
                }
                match lexeme {
                    Lexeme::Open(_) => depth += 1,
                    Lexeme::Close(_) if depth == 0 => break,
                    Lexeme::Close(_) => depth -= 1,
                    Lexeme::Comma if depth == 0 => expecting_arg = true,
                    _ => {}
                }
            }
            calls.push((name.to_ascii_lowercase(), *offset, args));
        }
        Self { calls }
    }

    /// The byte offsets of the `occurrence`-th (0-based) call of `name`
    /// and of its arguments.
    pub fn call(&self, name: &str, occurrence: usize) -> Option<(usize, &[usize])> {
        self.calls
            .iter()
            .filter(|(n, _, _)| n == name)
            .nth(occurrence)
            .map(|(_, offset, args)| (*offset, args.as_slice()))
    }
}

fn skip_group(tokens: &[(usize, Lexeme)], open: usize) -> usize {
    let mut depth = 0usize;
    for (index, (_, lexeme)) in tokens.iter().enumerate().skip(open) {
        match lexeme {
            Lexeme::Open(_) => depth += 1,
            Lexeme::Close(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

fn is_keyword(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "by" | "without"
            | "on"
            | "ignoring"
            | "group_left"
            | "group_right"
            | "bool"
            | "and"
            | "or"
            | "unless"
            | "offset"
            | "atan2"
            | "fill"
            | "fill_left"
            | "fill_right"
    )
}

/// Finds quoted strings whose Go decoding is not valid UTF-8.
fn invalid_utf8_strings(text: &str) -> HashMap<String, String> {
    let mut found = HashMap::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let quote = bytes[i];
        if quote != b'"' && quote != b'\'' {
            i += 1;
            continue;
        }
        i += 1;
        let mut go_bytes = Vec::new();
        let mut code_points = String::new();
        let mut has_byte_escape = false;
        while i < bytes.len() && bytes[i] != quote {
            if bytes[i] == b'\\' && i + 1 < bytes.len() {
                let escape = bytes[i + 1];
                if (escape == b'x' && i + 3 < bytes.len())
                    && let Ok(byte) = u8::from_str_radix(
                        std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap_or(""),
                        16,
                    )
                {
                    has_byte_escape = true;
                    go_bytes.push(byte);
                    code_points.push(char::from(byte));
                    i += 4;
                    continue;
                }
                // Other escapes decode alike in Go and in the crate; keep
                // the decoded character in both spellings.
                let decoded = match escape {
                    b'n' => '\n',
                    b't' => '\t',
                    b'r' => '\r',
                    b'\\' => '\\',
                    b'"' => '"',
                    b'\'' => '\'',
                    other => char::from(other),
                };
                let mut buf = [0u8; 4];
                go_bytes.extend_from_slice(decoded.encode_utf8(&mut buf).as_bytes());
                code_points.push(decoded);
                i += 2;
                continue;
            }
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            let mut buf = [0u8; 4];
            go_bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            code_points.push(ch);
            i += ch.len_utf8();
        }
        i += 1;
        if has_byte_escape && std::str::from_utf8(&go_bytes).is_err() {
            found.insert(code_points, go_quote_bytes(&go_bytes));
        }
    }
    found
}

/// Go's `%q` of a byte string: invalid UTF-8 bytes as `\xNN`.
fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_map_finds_calls_and_arguments() {
        let text = "histogram_quantile(0.8, sum by (le) (rate(x[5m])))";
        let map = SourceMap::new(text);
        let (offset, args) = map.call("histogram_quantile", 0).expect("found");
        assert_eq!(offset, 0);
        assert_eq!(args, &[19, 24]);
        let (offset, args) = map.call("sum", 0).expect("found");
        assert_eq!(offset, 24);
        assert_eq!(&text[args[0]..args[0] + 4], "rate");
        assert!(map.call("by", 0).is_none());
    }

    #[test]
    fn go_byte_escapes_are_detected() {
        let query = parse_query(r#"count_values("a\xc5z", x)"#).expect("parses");
        assert_eq!(
            query.invalid_utf8.get("a\u{c5}z").map(String::as_str),
            Some(r#""a\xc5z""#)
        );
        let valid = parse_query(r#"count_values("\xe2\x82\xac", x)"#).expect("parses");
        assert!(valid.invalid_utf8.is_empty());
    }

    #[test]
    fn parse_errors_are_typed() {
        let error = parse_query("foo{").expect_err("invalid");
        assert!(error.to_string().contains("parse error"));
    }
}
