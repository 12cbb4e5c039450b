//! Environment variable expansion in `external_labels`, with Go's `os.Expand` semantics.
//!
//! Prometheus expands `${VAR}` and `$VAR` in external label values using `os.Expand`,
//! replaces undefined variables with the empty string and turns `$$` into a literal `$`.
//! The corner cases (a trailing `$`, `${}`, `$1`, `$-`) are reproduced here so that the
//! same file yields the same labels under both servers.

/// Expands `$VAR`, `${VAR}` and `$$` in `value`, looking variables up with `lookup`.
///
/// ```
/// let expanded = ember_config::expand_env("${REGION}-$ZONE costs $$5", |name| match name {
///     "REGION" => Some("eu".to_owned()),
///     _ => None,
/// });
/// assert_eq!(expanded, "eu- costs $5");
/// ```
pub fn expand_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    // `copied_to` is the start of the not yet copied literal text.
    let mut copied_to = 0;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'$' && index + 1 < bytes.len() {
            out.push_str(&value[copied_to..index]);
            let (name, width) = shell_name(&value[index + 1..]);
            match name {
                // Bad syntax such as `${}` or an unterminated `${`: Go eats the characters.
                None if width > 0 => {}
                // `$` not followed by a name stays a literal dollar.
                None => out.push('$'),
                Some("$") => out.push('$'),
                Some(name) => out.push_str(&lookup(name).unwrap_or_default()),
            }
            index += width;
            copied_to = index + 1;
        }
        index += 1;
    }
    out.push_str(&value[copied_to.min(value.len())..]);
    out
}

/// Go's shell special variables: one character each.
fn is_special(byte: u8) -> bool {
    matches!(
        byte,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

/// The variable name at the start of `text` (just after a `$`) and how many bytes it spans;
/// `(None, width > 0)` marks bad syntax to be dropped. Mirrors Go's `getShellName`.
fn shell_name(text: &str) -> (Option<&str>, usize) {
    let bytes = text.as_bytes();
    if bytes[0] == b'{' {
        if bytes.len() > 2 && is_special(bytes[1]) && bytes[2] == b'}' {
            return (Some(&text[1..2]), 3);
        }
        return match text.find('}') {
            Some(1) => (None, 2),
            Some(end) => (Some(&text[1..end]), end + 1),
            None => (None, 1),
        };
    }
    if is_special(bytes[0]) {
        return (Some(&text[..1]), 1);
    }
    let end = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(bytes.len());
    if end == 0 {
        (None, 0)
    } else {
        (Some(&text[..end]), end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("node-1".to_owned()),
            "DC" => Some("eu1".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn expands_like_go_os_expand() {
        let cases = [
            ("plain", "plain"),
            ("$HOST", "node-1"),
            ("${HOST}", "node-1"),
            ("${HOST}.${DC}", "node-1.eu1"),
            ("$HOST.$DC", "node-1.eu1"),
            ("pre-$HOST-post", "pre-node-1-post"),
            ("$UNDEFINED", ""),
            ("a$$b", "a$b"),
            ("$$HOST", "$HOST"),
            ("cost$", "cost$"),
            ("a${}b", "ab"),
            ("a${HOST", "aHOST"),
            ("$1x", "x"),
            ("a$ b", "a$ b"),
            ("é$HOST", "énode-1"),
            ("${H-x}", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(expand_env(input, env), expected, "{input:?}");
        }
    }
}
