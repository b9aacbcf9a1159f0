//! Repository lines: `URL`, `@tag URL`, `file://PATH` or a plain directory,
//! all with the `<repo>/<arch>/APKINDEX.tar.gz` + `<repo>/<arch>/<P>-<V>.apk`
//! layout (spec D.1).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a repository (or a key) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `http://` or `https://` base URL (without trailing slash).
    Url(String),
    /// Local directory (absolute).
    Dir(PathBuf),
}

/// A concrete file to read: a URL or a local path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Fetched over HTTP(S).
    Url(String),
    /// Read from the local filesystem.
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(u) => f.write_str(u),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One configured repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The line as configured (trimmed), e.g. `@local /work/packages`; this
    /// is what goes to `/etc/apk/repositories` and into the lock.
    pub spec: String,
    /// Pin tag (`@tag` lines).
    pub tag: Option<String>,
    /// Base location.
    pub location: Location,
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Parse `file://`, `http(s)://` or a plain path into a [`Location`].
pub(crate) fn parse_location(text: &str, context: &str) -> Result<Location> {
    if let Some((scheme, _)) = text.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        return match scheme.as_str() {
            "http" | "https" => {
                let u = url::Url::parse(text)
                    .map_err(|e| Error::config(context, format!("invalid URL {text:?}: {e}")))?;
                if u.host_str().is_none_or(str::is_empty) {
                    return Err(Error::config(context, format!("URL {text:?} has no host")));
                }
                Ok(Location::Url(u.as_str().trim_end_matches('/').to_string()))
            }
            "file" => {
                let u = url::Url::parse(text)
                    .map_err(|e| Error::config(context, format!("invalid URL {text:?}: {e}")))?;
                let p = u.to_file_path().map_err(|()| {
                    Error::config(
                        context,
                        format!("{text:?} is not a local file:// URL (use file:///absolute/path)"),
                    )
                })?;
                Ok(Location::Dir(p))
            }
            other => Err(Error::config(
                context,
                format!(
                    "unsupported URL scheme {other:?} (use https://, http://, file:// or a path)"
                ),
            )),
        };
    }
    let p = Path::new(text);
    let abs = std::path::absolute(p).map_err(|e| Error::io(format!("{context}: {text}"), e))?;
    Ok(Location::Dir(abs))
}

impl Repository {
    /// Parse a repository line (`URL`, `@tag URL`, `file://…`, a path).
    ///
    /// # Errors
    /// [`Error::Config`] naming the line.
    pub fn parse(line: &str) -> Result<Repository> {
        let spec = line.trim().to_string();
        let ctx = format!("repository {spec:?}");
        if spec.is_empty() {
            return Err(Error::config(ctx, "empty repository"));
        }
        let (tag, loc) = if let Some(rest) = spec.strip_prefix('@') {
            let mut parts = rest.splitn(2, char::is_whitespace);
            let tag = parts.next().unwrap_or_default();
            let loc = parts.next().unwrap_or_default().trim();
            if !valid_tag(tag) {
                return Err(Error::config(ctx, format!("invalid tag {tag:?}")));
            }
            if loc.is_empty() {
                return Err(Error::config(ctx, "missing URL or path after the tag"));
            }
            (Some(tag.to_string()), loc)
        } else {
            if spec.contains(char::is_whitespace) {
                return Err(Error::config(
                    ctx,
                    "unexpected space (a pinned repository is written `@tag URL`)",
                ));
            }
            (None, spec.as_str())
        };
        let location = parse_location(loc, &ctx)?;
        Ok(Repository {
            spec: spec.clone(),
            tag,
            location,
        })
    }

    /// `<repo>/<arch>/APKINDEX.tar.gz`.
    pub fn index(&self, arch: &str) -> Source {
        self.file(arch, "APKINDEX.tar.gz")
    }

    /// `<repo>/<arch>/<file>` (a package file name).
    pub fn file(&self, arch: &str, file: &str) -> Source {
        match &self.location {
            Location::Url(base) => Source::Url(format!("{base}/{arch}/{}", encode_segment(file))),
            Location::Dir(d) => Source::File(d.join(arch).join(file)),
        }
    }
}

/// Percent-encode what may not appear raw in a URL path segment
/// (package names may contain `+`, which is kept as is like apk does).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+:@!$&'()*,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parse configured repository lines, skipping blank lines and `#` comments.
///
/// # Errors
/// As [`Repository::parse`].
pub fn parse_repositories<S: AsRef<str>>(lines: &[S]) -> Result<Vec<Repository>> {
    let mut out: Vec<Repository> = Vec::new();
    for l in lines {
        let l = l.as_ref().trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let r = Repository::parse(l)?;
        if !out.iter().any(|o| o.spec == r.spec) {
            out.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let r = Repository::parse("https://packages.example/os/").unwrap();
        assert_eq!(
            r.location,
            Location::Url("https://packages.example/os".into())
        );
        assert_eq!(
            r.index("x86_64"),
            Source::Url("https://packages.example/os/x86_64/APKINDEX.tar.gz".into())
        );
        assert_eq!(
            r.file("x86_64", "libstdc++-13-r0.apk"),
            Source::Url("https://packages.example/os/x86_64/libstdc++-13-r0.apk".into())
        );
        let r = Repository::parse("@local /tmp/pkgs").unwrap();
        assert_eq!(r.tag.as_deref(), Some("local"));
        assert_eq!(r.location, Location::Dir("/tmp/pkgs".into()));
        assert_eq!(r.spec, "@local /tmp/pkgs");
        let r = Repository::parse("file:///tmp/a%20b").unwrap();
        assert_eq!(r.location, Location::Dir("/tmp/a b".into()));
        for bad in ["", "@ /x", "@t", "ftp://x/y", "a b", "file://host/x"] {
            assert!(Repository::parse(bad).is_err(), "{bad:?}");
        }
        let rs = parse_repositories(&["# c", "", "/a", "/a", "@t /b"]).unwrap();
        assert_eq!(rs.len(), 2);
    }
}
