//! The Prometheus text format (0.0.4, plus the quoted UTF-8 names of 1.0.0).
//!
//! The grammar is the one Prometheus's `promlex` accepts: blanks and tabs
//! may separate any two tokens, empty lines are skipped, `#` lines are
//! comments unless they are `# HELP` or `# TYPE`, label sets may end with a
//! comma, and timestamps are integer milliseconds.

use super::error::{ParseError, ParseErrorKind};
use super::lex::{Cursor, LabelSpan, StrRef, find_duplicate, parse_float, parse_int};
use super::{Entry, LabelPairs, MetricType, Series, type_names};

/// Pull parser for the Prometheus text format.
///
/// Call [`TextParser::next_entry`] until it returns [`Entry::EndOfFile`].
/// After an error the parser's position is unspecified; stop parsing.
#[derive(Debug)]
pub struct TextParser<'a> {
    cur: Cursor<'a>,
    /// Unescaped names and values of the current entry.
    scratch: String,
    /// Label positions of the current series.
    labels: Vec<LabelSpan>,
}

/// An entry as positions, before it is turned into borrowed strings.
enum Raw {
    Series {
        name: StrRef,
        value: f64,
        timestamp_ms: Option<i64>,
        raw: (usize, usize),
    },
    Help {
        name: StrRef,
        text: StrRef,
    },
    Type {
        name: StrRef,
        metric_type: MetricType,
    },
    Comment(StrRef),
    EndOfFile,
}

impl<'a> TextParser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self {
            cur: Cursor::new(input),
            scratch: String::new(),
            labels: Vec::new(),
        }
    }

    /// The 1-based line the parser is on (for diagnostics).
    pub fn line(&self) -> usize {
        self.cur.line
    }

    /// Parses and returns the next entry.
    pub fn next_entry(&mut self) -> Result<Entry<'_>, ParseError> {
        self.scratch.clear();
        self.labels.clear();
        let raw = self.parse_raw()?;
        let input = self.cur.input;
        let scratch = self.scratch.as_str();
        Ok(match raw {
            Raw::Series {
                name,
                value,
                timestamp_ms,
                raw,
            } => Entry::Series(Series {
                name: name.resolve(input, scratch),
                labels: LabelPairs::new(&self.labels, input, scratch),
                value,
                timestamp_ms,
                exemplar: None,
                created_timestamp_ms: None,
                raw: &input.as_bytes()[raw.0..raw.1],
            }),
            Raw::Help { name, text } => Entry::Help {
                name: name.resolve(input, scratch),
                text: text.resolve(input, scratch),
            },
            Raw::Type { name, metric_type } => Entry::Type {
                name: name.resolve(input, scratch),
                metric_type,
            },
            Raw::Comment(text) => Entry::Comment(text.resolve(input, scratch)),
            Raw::EndOfFile => Entry::EndOfFile,
        })
    }

    fn parse_raw(&mut self) -> Result<Raw, ParseError> {
        loop {
            self.cur.skip_blanks();
            match self.cur.peek() {
                None => {
                    if self.cur.invalid_utf8_at.is_some() {
                        return Err(self.cur.error(ParseErrorKind::InvalidUtf8));
                    }
                    return Ok(Raw::EndOfFile);
                }
                Some(b'\n') => self.cur.newline(),
                Some(b'#') => return self.parse_comment(),
                Some(_) => return self.parse_series(),
            }
        }
    }

    /// Ends a line: only blanks may remain before the newline.
    fn end_line(&mut self, after: &'static str) -> Result<(), ParseError> {
        self.cur.skip_blanks();
        match self.cur.peek() {
            Some(b'\n') => {
                self.cur.newline();
                Ok(())
            }
            None if self.cur.invalid_utf8_at.is_none() => Ok(()),
            _ => Err(self.cur.unexpected(after)),
        }
    }

    fn parse_comment(&mut self) -> Result<Raw, ParseError> {
        let c = &mut self.cur;
        c.pos += 1; // '#'
        // Like promlex, `#HELP` without a blank is an ordinary comment.
        let blank = matches!(c.peek(), Some(b' ' | b'\t'));
        c.skip_blanks();
        let keyword = if !blank {
            None
        } else if c.bytes[c.pos..].starts_with(b"HELP") {
            Some(true)
        } else if c.bytes[c.pos..].starts_with(b"TYPE") {
            Some(false)
        } else {
            None
        };
        let keyword = keyword.filter(|_| matches!(c.bytes.get(c.pos + 4), Some(b' ' | b'\t')));
        let Some(is_help) = keyword else {
            let text = c.scan_line_rest();
            if c.peek() == Some(b'\n') {
                c.newline();
            } else if c.invalid_utf8_at.is_some() {
                return Err(c.error(ParseErrorKind::InvalidUtf8));
            }
            return Ok(Raw::Comment(text));
        };
        c.pos += 4;
        c.skip_blanks();
        let name = match c.peek() {
            Some(b'"') => {
                let name = c.scan_quoted(&mut self.scratch)?;
                if name.start == name.end {
                    return Err(c.error(ParseErrorKind::InvalidMetricName(String::new())));
                }
                name
            }
            _ => c
                .scan_metric_name()
                .ok_or_else(|| c.unexpected("metric name"))?,
        };
        if !matches!(c.peek(), None | Some(b' ' | b'\t' | b'\n')) {
            return Err(c.unexpected("blank after metric name"));
        }
        c.skip_blanks();
        let text = c.scan_line_rest();
        if is_help {
            let text = unescape_help(text, c.input, &mut self.scratch, false);
            self.end_line("end of line")?;
            Ok(Raw::Help { name, text })
        } else {
            let word = text.resolve(c.input, "").trim_end_matches([' ', '\t']);
            let metric_type = type_names::parse_text(word).ok_or_else(|| {
                c.error_at(
                    text.start,
                    ParseErrorKind::InvalidMetricType(word.to_owned()),
                )
            })?;
            self.end_line("end of line")?;
            Ok(Raw::Type { name, metric_type })
        }
    }

    fn parse_series(&mut self) -> Result<Raw, ParseError> {
        let c = &mut self.cur;
        let start = c.pos;
        let mut name = c.scan_metric_name();
        if name.is_some() {
            c.skip_blanks();
        }
        let raw_end = match (c.peek(), name) {
            (Some(b'{'), _) => {
                c.pos += 1;
                parse_labels(c, &mut self.scratch, &mut self.labels, &mut name)?;
                let end = c.pos;
                c.skip_blanks();
                end
            }
            // Blanks (already skipped) separate the name from the value; a
            // bare name at the end of the line fails below, wanting a value.
            (next, Some(n)) if c.pos > n.end || matches!(next, None | Some(b'\n')) => n.end,
            (_, Some(_)) => return Err(c.unexpected("blank or \"{\" after metric name")),
            (_, None) => {
                return Err(c.error(ParseErrorKind::InvalidMetricName(c.describe_here())));
            }
        };
        let name = name.ok_or_else(|| c.error_at(start, ParseErrorKind::MissingMetricName))?;
        let value_ref = c.scan_until_blank();
        if value_ref.start == value_ref.end {
            return Err(c.unexpected("value"));
        }
        let value_text = value_ref.resolve(c.input, "");
        let value = parse_float(value_text).ok_or_else(|| {
            c.error_at(
                value_ref.start,
                ParseErrorKind::InvalidValue(value_text.to_owned()),
            )
        })?;
        c.skip_blanks();
        let mut timestamp_ms = None;
        if !matches!(c.peek(), None | Some(b'\n')) {
            let ts = c.scan_until_blank();
            let ts_text = ts.resolve(c.input, "");
            timestamp_ms = Some(parse_int(ts_text).ok_or_else(|| {
                c.error_at(
                    ts.start,
                    ParseErrorKind::InvalidTimestamp(ts_text.to_owned()),
                )
            })?);
        }
        self.end_line("end of line after sample")?;
        Ok(Raw::Series {
            name,
            value,
            timestamp_ms,
            raw: (start, raw_end),
        })
    }
}

/// Parses `label="value", ...}` after the `{` (text format rules: blanks
/// between tokens, optional trailing comma, a quoted metric name first).
fn parse_labels(
    c: &mut Cursor<'_>,
    scratch: &mut String,
    labels: &mut Vec<LabelSpan>,
    metric_name: &mut Option<StrRef>,
) -> Result<(), ParseError> {
    let mut first = true;
    loop {
        c.skip_blanks();
        let label_name = match c.peek() {
            Some(b'}') => {
                c.pos += 1;
                break;
            }
            Some(b'"') => {
                let at = c.pos;
                let quoted = c.scan_quoted(scratch)?;
                c.skip_blanks();
                if first && metric_name.is_none() && matches!(c.peek(), Some(b',' | b'}')) {
                    if quoted.start == quoted.end {
                        return Err(
                            c.error_at(at, ParseErrorKind::InvalidMetricName(String::new()))
                        );
                    }
                    *metric_name = Some(quoted);
                    first = false;
                    if c.peek() == Some(b',') {
                        c.pos += 1;
                    }
                    continue;
                }
                if quoted.start == quoted.end {
                    return Err(c.error_at(at, ParseErrorKind::InvalidLabelName(String::new())));
                }
                quoted
            }
            _ => c
                .scan_label_name()
                .ok_or_else(|| c.unexpected("label name"))?,
        };
        first = false;
        c.skip_blanks();
        if c.peek() != Some(b'=') {
            return Err(c.unexpected("\"=\""));
        }
        c.pos += 1;
        c.skip_blanks();
        if c.peek() != Some(b'"') {
            return Err(c.unexpected("quoted label value"));
        }
        let value = c.scan_quoted(scratch)?;
        labels.push(LabelSpan {
            name: label_name,
            value,
        });
        c.skip_blanks();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {
                c.pos += 1;
                break;
            }
            _ => return Err(c.unexpected("\",\" or \"}\"")),
        }
    }
    if let Some(dup) = find_duplicate(labels, c.input, scratch) {
        let name = labels[dup].name.resolve(c.input, scratch).to_owned();
        return Err(c.error(ParseErrorKind::DuplicateLabel(name)));
    }
    Ok(())
}

/// Unescapes HELP text: `\\` and `\n` always, `\"` too for OpenMetrics.
/// Other backslashes stay as written. Borrows the input when there is
/// nothing to unescape.
pub(crate) fn unescape_help(
    text: StrRef,
    input: &str,
    scratch: &mut String,
    quote: bool,
) -> StrRef {
    let s = text.resolve(input, "");
    if !s.contains('\\') {
        return text;
    }
    let start = scratch.len();
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            scratch.push(ch);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => {
                scratch.push('\\');
                chars.next();
            }
            Some('n') => {
                scratch.push('\n');
                chars.next();
            }
            Some('"') if quote => {
                scratch.push('"');
                chars.next();
            }
            _ => scratch.push('\\'),
        }
    }
    StrRef {
        start,
        end: scratch.len(),
        in_scratch: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects every entry as an owned, comparable rendering.
    fn entries(input: &str) -> Result<Vec<String>, ParseError> {
        let mut p = TextParser::new(input.as_bytes());
        let mut out = Vec::new();
        loop {
            match p.next_entry()? {
                Entry::EndOfFile => return Ok(out),
                Entry::Series(s) => {
                    let labels: Vec<String> =
                        s.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                    out.push(format!(
                        "{}{{{}}} {} {:?} raw={}",
                        s.name,
                        labels.join(","),
                        s.value,
                        s.timestamp_ms,
                        String::from_utf8_lossy(s.raw)
                    ));
                }
                Entry::Help { name, text } => out.push(format!("HELP {name} {text:?}")),
                Entry::Type { name, metric_type } => out.push(format!("TYPE {name} {metric_type}")),
                Entry::Unit { name, unit } => out.push(format!("UNIT {name} {unit}")),
                Entry::Comment(c) => out.push(format!("COMMENT {c:?}")),
            }
        }
    }

    fn error(input: &str) -> ParseError {
        match entries(input) {
            Ok(e) => panic!("expected an error for {input:?}, got {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_the_spec_example() {
        let input = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
{"my.dotted.metric", "error.message"="Not Found"} 1
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
"#;
        let got = entries(input).unwrap();
        let want = [
            r#"HELP http_requests_total "The total number of HTTP requests.""#,
            "TYPE http_requests_total counter",
            r#"http_requests_total{method="post",code="200"} 1027 Some(1395066363000) raw=http_requests_total{method="post",code="200"}"#,
            r#"http_requests_total{method="post",code="400"} 3 Some(1395066363000) raw=http_requests_total{method="post",code="400"}"#,
            r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1458255915 None raw=msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""}"#,
            r#"my.dotted.metric{error.message="Not Found"} 1 None raw={"my.dotted.metric", "error.message"="Not Found"}"#,
            "metric_without_timestamp_and_labels{} 12.47 None raw=metric_without_timestamp_and_labels",
            r#"something_weird{problem="division by zero"} inf Some(-3982045) raw=something_weird{problem="division by zero"}"#,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn whitespace_trailing_commas_and_comments() {
        let got = entries(
            "  # just a comment\n#HELP not_meta x\n\t a { b = \"c\" , } \t 1 \t 2 \t\n# TYPE  q  untyped \n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                r#"COMMENT "just a comment""#,
                r#"COMMENT "HELP not_meta x""#,
                r#"a{b="c"} 1 Some(2) raw=a { b = "c" , }"#,
                "TYPE q unknown",
            ]
        );
    }

    #[test]
    fn help_escapes_only_backslash_and_newline() {
        let got = entries("# HELP a x\\\\y\\nz\\\"q\\t\n# HELP b\n").unwrap();
        assert_eq!(got, [r#"HELP a "x\\y\nz\\\"q\\t""#, r#"HELP b """#]);
    }

    #[test]
    fn label_value_escapes_borrow_when_possible() {
        let mut p = TextParser::new(b"a{x=\"plain\",y=\"a\\\\b\\\"c\\nd\\qe\"} 1\n");
        let Entry::Series(s) = p.next_entry().unwrap() else {
            panic!("series expected")
        };
        assert_eq!(s.labels.get("x"), Some("plain"));
        assert_eq!(s.labels.get("y"), Some("a\\b\"c\nd\\qe"));
    }

    #[test]
    fn special_values() {
        let got = entries("a NaN\nb -Inf\nc +inf\nd 1e3\ne -0.5\n").unwrap();
        assert_eq!(got[0], "a{} NaN None raw=a");
        assert_eq!(got[1], "b{} -inf None raw=b");
        assert_eq!(got[2], "c{} inf None raw=c");
        assert_eq!(got[3], "d{} 1000 None raw=d");
        assert_eq!(got[4], "e{} -0.5 None raw=e");
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = error("a 1\nb{c \"d\"} 1\n");
        assert_eq!((e.line, e.column), (2, 5));
        assert_eq!(
            e.to_string(),
            "line 2, column 5: expected \"=\", got \"\\\"d\\\"}\""
        );

        let e = error("a 1\n\nb 0x1p-3\n");
        assert_eq!((e.line, e.column), (3, 3));
        assert_eq!(e.kind, ParseErrorKind::InvalidValue("0x1p-3".into()));

        let e = error("a 1 1.5\n");
        assert_eq!(e.kind, ParseErrorKind::InvalidTimestamp("1.5".into()));
        let e = error("a 1 2 3\n");
        assert!(matches!(e.kind, ParseErrorKind::Unexpected { .. }), "{e}");
        let e = error("a{b=\"c\",b=\"d\"} 1\n");
        assert_eq!(e.kind, ParseErrorKind::DuplicateLabel("b".into()));
        let e = error("{a=\"b\"} 1\n");
        assert_eq!(e.kind, ParseErrorKind::MissingMetricName);
        let e = error("a{b=\"c} 1\n");
        assert_eq!(e.line, 1);
        let e = error("# TYPE a countr\n");
        assert_eq!(e.kind, ParseErrorKind::InvalidMetricType("countr".into()));
        let e = error("a.b 1\n");
        assert!(matches!(e.kind, ParseErrorKind::Unexpected { .. }), "{e}");
        let e = error("a\n");
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::Unexpected {
                    expected: "value",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_is_reported_where_it_occurs() {
        let e = TextParser::new(b"a 1\nb{c=\"\xff\"} 1\n");
        let mut p = e;
        assert!(matches!(p.next_entry(), Ok(Entry::Series(_))));
        let err = p.next_entry().unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::InvalidUtf8);
        assert_eq!(err.line, 2);
    }

    #[test]
    fn quoted_utf8_names() {
        let got = entries(
            "# HELP \"my.metric\" Dotted.\n# TYPE \"my.metric\" gauge\n\
             {\"my.metric\"} 1\n\
             { \"my.metric\" , \"a.b\"=\"c\", d=\"e\", } 2\n\
             plain{\"l\\\"q\"=\"v\"} 3\n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                r#"HELP my.metric "Dotted.""#,
                "TYPE my.metric gauge",
                r#"my.metric{} 1 None raw={"my.metric"}"#,
                r#"my.metric{a.b="c",d="e"} 2 None raw={ "my.metric" , "a.b"="c", d="e", }"#,
                r#"plain{l"q="v"} 3 None raw=plain{"l\"q"="v"}"#,
            ]
        );
        // The quoted name must come first, and only once.
        assert!(entries("{a=\"b\", \"name\"} 1\n").is_err());
        assert!(entries("name{\"other\"} 1\n").is_err());
        assert!(entries("{\"\"} 1\n").is_err());
    }

    #[test]
    fn last_line_without_newline() {
        assert_eq!(entries("a 1").unwrap(), ["a{} 1 None raw=a"]);
        assert_eq!(entries("").unwrap(), Vec::<String>::new());
    }
}
