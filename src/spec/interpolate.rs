//! `${VAR}` and `${VAR:-default}` interpolation from the environment.
//!
//! Applied to the file text before parsing, one line at a time, so line
//! numbers in error messages stay those of the file. `$${` escapes a literal
//! `${`. An unset variable without a default is an error naming the line.

/// A variable was referenced but is unset and has no default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{name}` is not set (expected it set, or a default as `${{{name}:-default}}`)")]
pub struct UnsetVariable {
    /// The variable's name.
    pub name: String,
    /// 1-based line of the reference.
    pub line: usize,
    /// 1-based column of the `$`.
    pub col: usize,
}

/// Replaces every `${VAR}` / `${VAR:-default}` in `text` using `lookup`.
///
/// # Errors
/// [`UnsetVariable`] for the first reference to an unset variable with no default.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, UnsetVariable> {
    let mut out = String::with_capacity(text.len());
    let (mut line, mut line_start) = (1usize, 0usize);
    let mut rest = text;
    let mut consumed = 0usize;
    while let Some(i) = rest.find('$') {
        let before = &rest[..i];
        for (j, c) in before.char_indices() {
            if c == '\n' {
                line += 1;
                line_start = consumed + j + 1;
            }
        }
        out.push_str(before);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            consumed += i + 3;
            continue;
        }
        if let Some(body) = tail.strip_prefix("${") {
            if let Some(end) = body.find('}') {
                let inner = &body[..end];
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                let value = lookup(name)
                    .filter(|v| !(v.is_empty() && default.is_some()))
                    .or_else(|| default.map(str::to_owned));
                match value {
                    Some(v) => out.push_str(&v),
                    None => {
                        return Err(UnsetVariable {
                            name: name.to_owned(),
                            line,
                            col: consumed + i - line_start + 1,
                        })
                    }
                }
                rest = &body[end + 1..];
                consumed += i + 2 + end + 1;
                continue;
            }
        }
        out.push('$');
        rest = &tail[1..];
        consumed += i + 1;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "BROKER").then(|| "b:9092".to_owned())
    }

    #[test]
    fn replaces_set_and_defaulted_variables() {
        let got = interpolate("a: ${BROKER}\nb: ${NOPE:-x}\nc: $${LIT} $5", env).unwrap();
        assert_eq!(got, "a: b:9092\nb: x\nc: ${LIT} $5");
    }

    #[test]
    fn unset_variable_names_line_and_column() {
        let err = interpolate("a: 1\nb: ${MISSING}\n", env).unwrap_err();
        assert_eq!((err.line, err.col), (2, 4));
        assert_eq!(
            err.to_string(),
            "environment variable `MISSING` is not set (expected it set, or a default as `${MISSING:-default}`)"
        );
    }
}
