//! Errors with file:line:column, the field path and a "did you mean" suggestion.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::locate;

/// A problem in a build file or a pipeline file, pinned to a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name as given by the caller (or `builtin:pipelines/<name>.yaml`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path inside the file, e.g. `pipeline[2].with.uri` (empty for the whole file).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Closest valid alternative, when one is near enough.
    pub suggestion: Option<String>,
    /// The problem inside another file this one refers to: a `uses:` step of a build file
    /// whose pipeline file is broken points here at the step, and at the pipeline file's
    /// own diagnostic in `cause`.
    pub cause: Option<Box<Diagnostic>>,
}

impl Diagnostic {
    /// The innermost diagnostic (the one without a `cause`).
    pub fn root_cause(&self) -> &Diagnostic {
        let mut d = self;
        while let Some(c) = &d.cause {
            d = c;
        }
        d
    }

    /// The message with its suggestion and cause, without the position (`FIELD.PATH:
    /// message`), as `lint-config` prints it after its own position.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if let Some(s) = &self.suggestion {
            out.push_str(&format!(" (did you mean {s:?}?)"));
        }
        if let Some(c) = &self.cause {
            out.push_str(&format!(": {c}"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file,
            self.line,
            self.column,
            self.detail()
        )
    }
}

/// Every error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid content in a build or pipeline file.
    #[error("{0}")]
    Config(Box<Diagnostic>),
    /// Several problems at once (every one found in a file), sorted by file and position;
    /// printed one per line.
    #[error("{}", join_lines(.0))]
    Multiple(Vec<Diagnostic>),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A bad option value given by the caller (architecture, build option, template, …).
    #[error("{0}")]
    Usage(String),
}

fn join_lines(v: &[Diagnostic]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// The (first) diagnostic, when this error points into a file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        self.diagnostics().first()
    }

    /// Every diagnostic of this error (empty for I/O and usage errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Config(d) => std::slice::from_ref(d),
            Error::Multiple(v) => v,
            _ => &[],
        }
    }

    /// One error for a list of diagnostics: sorted by file and position, duplicates
    /// dropped. The list must not be empty.
    pub(crate) fn from_diagnostics(mut v: Vec<Diagnostic>) -> Error {
        v.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        v.dedup();
        if v.len() == 1 {
            Error::Config(Box::new(v.remove(0)))
        } else {
            Error::Multiple(v)
        }
    }
}

/// Gathers every problem of a pass instead of stopping at the first.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    diags: Vec<Diagnostic>,
    /// An error that is not about a position in a file (I/O, usage): it wins.
    other: Option<Error>,
}

impl Problems {
    /// Record an error.
    pub fn push(&mut self, e: Error) {
        match e {
            Error::Config(d) => self.diags.push(*d),
            Error::Multiple(v) => self.diags.extend(v),
            other => {
                if self.other.is_none() {
                    self.other = Some(other);
                }
            }
        }
    }

    /// Record the error of `r`, if any, and give its value otherwise.
    pub fn check<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    /// Record diagnostics.
    pub fn extend(&mut self, v: impl IntoIterator<Item = Diagnostic>) {
        self.diags.extend(v);
    }

    /// Keep only the diagnostics `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Diagnostic) -> bool) {
        self.diags.retain(keep);
    }

    /// `Ok(())` when nothing was recorded, else every problem as one error.
    pub fn into_result(self) -> Result<()> {
        if let Some(e) = self.other {
            return Err(e);
        }
        if self.diags.is_empty() {
            Ok(())
        } else {
            Err(Error::from_diagnostics(self.diags))
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which part of a map entry an error points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// The key of the entry (unknown keys).
    Key,
    /// The value of the entry.
    Value,
}

/// The text of one YAML file, kept to locate errors lazily (only when one occurs).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub name: Arc<str>,
    pub text: Arc<str>,
}

impl Source {
    /// A source; a leading UTF-8 byte order mark is dropped (melange's YAML reader
    /// accepts one), so positions count from the first character after it.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => Arc::from(rest),
            None => text,
        };
        Source {
            name: name.into(),
            text,
        }
    }

    /// An error at `path` (a field path such as `pipeline[1].with.uri`).
    pub fn error(&self, path: &str, at: At, message: impl Into<String>) -> Error {
        self.error_suggest(path, at, message, None)
    }

    /// An error with a suggestion.
    pub fn error_suggest(
        &self,
        path: &str,
        at: At,
        message: impl Into<String>,
        suggestion: Option<String>,
    ) -> Error {
        let (line, column) = locate::position(&self.text, path, at);
        Error::Config(Box::new(Diagnostic {
            file: self.name.to_string(),
            line,
            column,
            path: path.to_string(),
            message: message.into(),
            suggestion,
            cause: None,
        }))
    }

    /// Convert a serde_norway decoding error (unknown key, wrong type, YAML syntax).
    pub fn yaml_error(&self, e: &serde_norway::Error) -> Error {
        Error::Config(Box::new(self.yaml_problem(e).0))
    }

    /// A serde_norway decoding error as a diagnostic, and what kind of problem it is.
    pub fn yaml_problem(&self, e: &serde_norway::Error) -> (Diagnostic, Problem) {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let msg = strip_location(&e.to_string());
        // serde_norway prefixes the path of the enclosing value: "pipeline[1]: …".
        let (mut path, mut rest) = match msg.split_once(": ") {
            Some((p, r)) if looks_like_path(p) => (p.to_string(), r.to_string()),
            _ => (String::new(), msg.clone()),
        };
        let mut suggestion = None;
        let (mut line, mut column) = (line, column);
        // Errors raised by this crate's own field deserializers name their field.
        if let Some(r) = rest.strip_prefix('@')
            && let Some((field, m)) = r.split_once(": ")
        {
            path = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            (line, column) = locate::position(&self.text, &path, At::Value);
            rest = m.to_string();
        }
        let mut problem = Problem::Other;
        if let Some(field) = rest
            .strip_prefix("duplicate field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            let field = field.to_string();
            problem = Problem::Duplicate {
                parent: path.clone(),
                key: field.clone(),
            };
            path = if path.is_empty() {
                field.clone()
            } else {
                format!("{path}.{field}")
            };
            rest = format!("duplicate key {field:?}");
        }
        if let Some((field, expected)) = parse_unknown_field(&rest) {
            suggestion = suggest(&field, expected.iter().map(String::as_str));
            problem = Problem::UnknownKey {
                parent: path.clone(),
                key: field.clone(),
            };
            path = if path.is_empty() {
                field.clone()
            } else {
                format!("{path}.{field}")
            };
            if e.location().is_none() {
                (line, column) = locate::position(&self.text, &path, At::Key);
            }
            rest = if expected.is_empty() {
                format!("unknown key {field:?}")
            } else {
                format!(
                    "unknown key {field:?} (valid keys: {})",
                    expected.join(", ")
                )
            };
        }
        if e.location().is_none() && (line, column) == (1, 1) && !path.is_empty() {
            (line, column) = locate::position(&self.text, &path, At::Value);
        }
        let d = Diagnostic {
            file: self.name.to_string(),
            line,
            column,
            path,
            message: rest,
            suggestion,
            cause: None,
        };
        (d, problem)
    }
}

/// What a decoding error is about (see [`Source::yaml_problem`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A key the mapping at `parent` does not know.
    UnknownKey { parent: String, key: String },
    /// A key given twice in the mapping at `parent`.
    Duplicate { parent: String, key: String },
    /// Anything else (the diagnostic's path names the value, when known).
    Other,
}

/// Remove serde_norway's " at line N column M" (anywhere in the message).
fn strip_location(msg: &str) -> String {
    let mut out = msg.to_string();
    while let Some(i) = out.find(" at line ") {
        let tail = &out[i + 9..];
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let n1 = digits(tail);
        let Some(after) = tail[n1..].strip_prefix(" column ") else {
            break;
        };
        let n2 = digits(after);
        if n1 == 0 || n2 == 0 {
            break;
        }
        let end = i + 9 + n1 + 8 + n2;
        out.replace_range(i..end, "");
    }
    out
}

fn looks_like_path(p: &str) -> bool {
    !p.is_empty()
        && !p.contains(' ')
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-[]\\/".contains(c))
}

/// `unknown field `x`, expected one of `a`, `b`` → ("x", ["a", "b"]).
fn parse_unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let field = rest[..end].to_string();
    let tail = &rest[end + 1..];
    let expected = tail
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect();
    Some((field, expected))
}

/// Optimal-string-alignment edit distance (adjacent transpositions count as one edit).
pub(crate) fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// The closest candidate to `word`, if it is near enough to be a plausible typo.
pub(crate) fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let lw = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let dist = osa_distance(&lw, &c.to_ascii_lowercase());
        let limit = (c.chars().count().max(lw.chars().count()) / 3).max(2);
        let sorted_equal = {
            let mut x: Vec<char> = lw.chars().collect();
            let mut y: Vec<char> = c.to_ascii_lowercase().chars().collect();
            x.sort_unstable();
            y.sort_unstable();
            x == y
        };
        let dist = if sorted_equal { dist.min(1) } else { dist };
        if dist <= limit && best.is_none_or(|(d, _)| dist < d) {
            best = Some((dist, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let fields = ["name", "version", "epoch", "description"];
        assert_eq!(
            suggest("epcho", fields.iter().copied()).as_deref(),
            Some("epoch")
        );
        assert_eq!(
            suggest("verison", fields.iter().copied()).as_deref(),
            Some("version")
        );
        assert_eq!(suggest("zzzzzz", fields.iter().copied()), None);
        assert_eq!(osa_distance("ab", "ba"), 1);
    }

    #[test]
    fn unknown_field_parse() {
        let (f, e) =
            parse_unknown_field("unknown field `epcho`, expected one of `name`, `epoch`").unwrap();
        assert_eq!(f, "epcho");
        assert_eq!(e, vec!["name", "epoch"]);
    }
}
