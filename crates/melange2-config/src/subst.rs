//! `${{ name }}` substitution.
//!
//! Two flavours exist in melange: the parse phase replaces the exact text `${{name}}`
//! (no whitespace) of known keys and leaves everything else alone; the compile phase
//! matches `${{ name }}` with optional whitespace and fails on unknown names (or, for
//! `if:` conditions, inserts the value as a string literal of the condition, `cond::quote`).

use crate::limits::{self, Budget, MAX_VALUE_BYTES};

/// One `${{…}}` occurrence: byte range and the variable name.
struct Occurrence<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    exact: bool,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'
}

/// Find the next occurrence at or after `from`.
fn next_occurrence(s: &str, mut from: usize) -> Option<Occurrence<'_>> {
    let b = s.as_bytes();
    while let Some(rel) = s[from..].find("${{") {
        let start = from + rel;
        let mut i = start + 3;
        let ws_before = i;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let had_ws = i != ws_before;
        let ns = i;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        let ne = i;
        let ws2 = i;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let had_ws = had_ws || i != ws2;
        if ne > ns && s[i..].starts_with("}}") {
            return Some(Occurrence {
                start,
                end: i + 2,
                name: &s[ns..ne],
                exact: !had_ws,
            });
        }
        from = start + 3;
    }
    None
}

/// True when `s` contains at least one `${{…}}` reference.
pub(crate) fn has_refs(s: &str) -> bool {
    next_occurrence(s, 0).is_some()
}

/// Names referenced by `s`, in order.
pub(crate) fn refs(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(o) = next_occurrence(s, from) {
        out.push(o.name);
        from = o.end;
    }
    out
}

/// Parse-phase replacement: exact `${{name}}` text for names `lookup` knows; the rest stays.
pub(crate) fn replace_exact<'a>(s: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    if !s.contains("${{") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(o) = next_occurrence(s, from) {
        from = o.end;
        if !o.exact {
            continue;
        }
        if let Some(v) = lookup(o.name) {
            out.push_str(&s[last..o.start]);
            out.push_str(v);
            last = o.end;
        }
    }
    out.push_str(&s[last..]);
    out
}

/// How compile-phase substitution treats values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Insert values as they are; unknown names are errors.
    Strict,
    /// Insert values as string literals of `if:` conditions ([`crate::cond::quote`]);
    /// unknown names are errors.
    Quote,
    /// Insert values as they are; unknown names stay as written.
    Lenient,
}

/// The start of a failure of [`substitute`] that is a complete message, not a name.
const MESSAGE: char = '!';

/// A failure of [`substitute`] that says `message` as it is.
pub(crate) fn failure_message(message: &str) -> String {
    format!("{MESSAGE}{message}")
}

/// True when a failure of [`substitute`] is a message rather than a name.
pub(crate) fn is_message(failure: &str) -> bool {
    failure.starts_with(MESSAGE)
}

/// A `${{` that does not start a well-formed reference, as melange's parser rejects it.
fn malformed(s: &str, from: usize, to: usize) -> Option<String> {
    let i = s[from..to].find("${{")? + from;
    let end = s[i..]
        .find("}}")
        .map_or_else(|| s.len().min(i + 40), |e| i + e + 2);
    let mut end = end.min(i + 60);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[i..end].to_string())
}

/// Compile-phase substitution. On failure returns the unknown name, for a malformed
/// reference the offending text (which starts with `${{`), or a message (see
/// [`describe_failure`]) when the result would be larger than [`MAX_VALUE_BYTES`] or
/// `budget` is spent. Every result is taken from `budget`.
pub(crate) fn substitute<'a>(
    s: &str,
    mode: Mode,
    budget: &Budget,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    let out = substitute_unbounded(s, mode, lookup)?;
    if !budget.spend(out.len()) {
        return Err(failure_message(&limits::total_exceeded("compiling")));
    }
    Ok(out)
}

fn substitute_unbounded<'a>(
    s: &str,
    mode: Mode,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    if !s.contains("${{") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut last = 0;
    let mut from = 0;
    while let Some(o) = next_occurrence(s, from) {
        if mode != Mode::Lenient
            && let Some(bad) = malformed(s, from, o.start)
        {
            return Err(bad);
        }
        from = o.end;
        match lookup(o.name) {
            Some(v) => {
                out.push_str(&s[last..o.start]);
                if out.len() + v.len() > MAX_VALUE_BYTES {
                    return Err(failure_message(&limits::value_too_large()));
                }
                if mode == Mode::Quote {
                    out.push_str(&crate::cond::quote(v));
                } else {
                    out.push_str(v);
                }
                last = o.end;
            }
            None if mode == Mode::Lenient => {}
            None => return Err(o.name.to_string()),
        }
    }
    if mode != Mode::Lenient
        && let Some(bad) = malformed(s, from, s.len())
    {
        return Err(bad);
    }
    out.push_str(&s[last..]);
    Ok(out)
}

/// Error text for a failed substitution (see [`substitute`]).
pub(crate) fn describe_failure(name: &str) -> String {
    if let Some(m) = name.strip_prefix(MESSAGE) {
        m.to_string()
    } else if name.starts_with("${{") {
        format!(
            "malformed variable reference {name:?} (write ${{{{name}}}} with letters, digits, '.', '-' or '_')"
        )
    } else {
        format!("variable \"${{{{{name}}}}}\" is not defined")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn m() -> HashMap<&'static str, &'static str> {
        HashMap::from([("package.name", "hello"), ("vars.x", "1.2")])
    }

    #[test]
    fn exact_phase() {
        let m = m();
        let f = |k: &str| m.get(k).copied();
        assert_eq!(replace_exact("a ${{package.name}} b", f), "a hello b");
        assert_eq!(
            replace_exact("${{ package.name }}", f),
            "${{ package.name }}"
        );
        assert_eq!(
            replace_exact("${{build.arch}}-${{vars.x}}", f),
            "${{build.arch}}-1.2"
        );
    }

    #[test]
    fn strict_and_quote() {
        let m = m();
        let b = Budget::new();
        let f = |k: &str| m.get(k).copied();
        assert_eq!(
            substitute("${{ package.name }}!", Mode::Strict, &b, f).unwrap(),
            "hello!"
        );
        assert_eq!(
            substitute("x ${{nope}}", Mode::Strict, &b, f).unwrap_err(),
            "nope"
        );
        assert_eq!(
            substitute("x ${{nope}}", Mode::Lenient, &b, f).unwrap(),
            "x ${{nope}}"
        );
        assert_eq!(
            substitute("${{package.name}} == 'x'", Mode::Quote, &b, f).unwrap(),
            "\"hello\" == 'x'"
        );
        assert_eq!(
            substitute("$${{ }} ${{}}", Mode::Lenient, &b, f).unwrap(),
            "$${{ }} ${{}}"
        );
        assert_eq!(
            substitute("a ${{ x y }} b", Mode::Strict, &b, f).unwrap_err(),
            "${{ x y }}"
        );
        assert_eq!(
            substitute("${{package.name}} ${{", Mode::Strict, &b, f).unwrap_err(),
            "${{"
        );
        // Only spaces are allowed around the name.
        assert!(substitute("${{\tpackage.name}}", Mode::Strict, &b, f).is_err());
        assert_eq!(crate::cond::quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
