//! Dependency strings (spec E.1): `[!]name[@tag][op version]` or
//! `name[op version][@tag]`, with the operators `=`, `<`, `<=`, `>`, `>=`,
//! `~` (`=~`, `~=`), `<~`, `>~` and `><` (exact package checksum).

use std::cmp::Ordering;
use std::fmt;

use melange2_apk::version;

use crate::error::{Error, Result};

/// Version operator of a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~` / `=~` / `~=`: fuzzy prefix match.
    Fuzzy,
    /// `<~`: lower, or fuzzy-equal.
    LtFuzzy,
    /// `>~`: greater, or fuzzy-equal.
    GtFuzzy,
    /// `><`: the package whose control checksum is the given `Q1…` value.
    Checksum,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" => Op::Eq,
            "<" => Op::Lt,
            "<=" | "=<" => Op::Le,
            ">" => Op::Gt,
            ">=" | "=>" => Op::Ge,
            "~" | "=~" | "~=" => Op::Fuzzy,
            "<~" | "~<" => Op::LtFuzzy,
            ">~" | "~>" => Op::GtFuzzy,
            "><" => Op::Checksum,
            _ => return None,
        })
    }

    /// Canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Fuzzy => "~",
            Op::LtFuzzy => "<~",
            Op::GtFuzzy => ">~",
            Op::Checksum => "><",
        }
    }

    /// Does `have` satisfy `have OP want`? (Not for [`Op::Checksum`].)
    pub fn matches(self, have: &str, want: &str) -> bool {
        let c = version::compare(have, want);
        match self {
            Op::Eq => c == Ordering::Equal,
            Op::Lt => c == Ordering::Less,
            Op::Le => c != Ordering::Greater,
            Op::Gt => c == Ordering::Greater,
            Op::Ge => c != Ordering::Less,
            Op::Fuzzy => version::fuzzy_match(have, want),
            Op::LtFuzzy => c == Ordering::Less || version::fuzzy_match(have, want),
            Op::GtFuzzy => c == Ordering::Greater || version::fuzzy_match(have, want),
            Op::Checksum => false,
        }
    }
}

/// A parsed dependency / constraint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    /// `!name`: nothing may satisfy the rest of the constraint.
    pub conflict: bool,
    /// Package, provide or virtual name (`so:libc.so.6`, `cmd:sh`, `busybox`).
    pub name: String,
    /// Version requirement (operator and version as written, without the
    /// `so:` normalisation).
    pub version: Option<(Op, String)>,
    /// Repository pin (`name@tag`).
    pub tag: Option<String>,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '~')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-:/,[]()".contains(c))
}

/// apko's rewrite for SONAME-versioned names: `so:NAME=VER` where VER has
/// no `-rN` release is compared as `0.VER`, so SONAME numbers sort below
/// package versions (spec E.1).
pub(crate) fn normalize_version(name: &str, v: &str) -> String {
    if name.starts_with("so:") && !has_release(v) {
        format!("0.{v}")
    } else {
        v.to_string()
    }
}

fn has_release(v: &str) -> bool {
    match v.rfind("-r") {
        Some(i) => {
            let n = &v[i + 2..];
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

impl Dependency {
    /// Parse a dependency string; `context` (e.g. `world` or the package
    /// that declares it) prefixes errors.
    ///
    /// # Errors
    /// [`Error::Dependency`] for empty names, bad characters, unknown
    /// operators, invalid versions or pins.
    pub fn parse(s: &str, context: &str) -> Result<Dependency> {
        let bad = |msg: String| Error::Dependency {
            context: context.to_string(),
            dependency: s.to_string(),
            message: msg,
        };
        let text = s.trim();
        let (conflict, rest) = match text.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let op_start = rest.find(is_op_char);
        let (name_part, ver_part) = match op_start {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let (name, mut tag) = match name_part.split_once('@') {
            Some((n, t)) => (n, Some(t.to_string())),
            None => (name_part, None),
        };
        if !valid_name(name) {
            return Err(bad(if name.is_empty() {
                "missing package name".into()
            } else {
                format!("invalid name {name:?}")
            }));
        }
        let version = match ver_part {
            None => None,
            Some(v) => {
                let op_len = v.find(|c: char| !is_op_char(c)).unwrap_or(v.len());
                let op_text = &v[..op_len];
                let op = Op::parse(op_text)
                    .ok_or_else(|| bad(format!("unknown operator {op_text:?}")))?;
                let mut ver = &v[op_len..];
                if let Some((a, t)) = ver.split_once('@') {
                    if tag.is_some() {
                        return Err(bad("pinned twice".into()));
                    }
                    tag = Some(t.to_string());
                    ver = a;
                }
                if ver.is_empty() {
                    return Err(bad(format!("missing version after {op_text:?}")));
                }
                if op == Op::Checksum {
                    if !ver.starts_with("Q1") {
                        return Err(bad(format!(
                            "`><` needs a Q1… package checksum, got {ver:?}"
                        )));
                    }
                } else if !version::is_valid(ver) {
                    return Err(bad(format!("invalid version {ver:?}")));
                }
                Some((op, ver.to_string()))
            }
        };
        if let Some(t) = &tag
            && (t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(bad(format!("invalid repository tag {t:?}")));
        }
        Ok(Dependency {
            conflict,
            name: name.to_string(),
            version,
            tag,
        })
    }

    /// True when a name/provide `version` (`None` for a virtual provide)
    /// of a package with control checksum `checksum` satisfies the version
    /// part of this dependency (the name is not checked). A versioned
    /// constraint is never satisfied by a virtual provide.
    pub fn version_matches(&self, provided: Option<&str>, checksum: &str) -> bool {
        match (&self.version, provided) {
            (None, _) => true,
            (Some((Op::Checksum, want)), _) => checksum == want,
            (Some(_), None) => false,
            (Some((op, want)), Some(have)) => {
                let have = normalize_version(&self.name, have);
                let want = normalize_version(&self.name, want);
                op.matches(&have, &want)
            }
        }
    }

    /// The dependency without its `!` and pin (what a conflict forbids).
    pub fn positive(&self) -> Dependency {
        Dependency {
            conflict: false,
            tag: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, "@{t}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, "{}{v}", op.as_str())?;
        }
        Ok(())
    }
}

/// A `provides` entry: `name` (virtual) or `name=version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provide {
    /// Provided name.
    pub name: String,
    /// Version, `None` for a virtual provide.
    pub version: Option<String>,
}

impl Provide {
    /// Parse a `p:` entry.
    ///
    /// # Errors
    /// [`Error::Dependency`] for anything but `name` or `name=version`.
    pub fn parse(s: &str, context: &str) -> Result<Provide> {
        let d = Dependency::parse(s, context)?;
        let bad = |m: &str| Error::Dependency {
            context: context.to_string(),
            dependency: s.to_string(),
            message: m.to_string(),
        };
        if d.conflict || d.tag.is_some() {
            return Err(bad("a provide cannot be a conflict or pinned"));
        }
        match d.version {
            None => Ok(Provide {
                name: d.name,
                version: None,
            }),
            Some((Op::Eq, v)) => Ok(Provide {
                name: d.name,
                version: Some(v),
            }),
            Some(_) => Err(bad("a provide version must use `=`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Dependency {
        Dependency::parse(s, "test").unwrap()
    }

    #[test]
    fn grammar() {
        assert_eq!(p("busybox").name, "busybox");
        assert_eq!(p("go>1.21").version, Some((Op::Gt, "1.21".into())));
        assert_eq!(p("foo=~4.5.6").version, Some((Op::Fuzzy, "4.5.6".into())));
        assert_eq!(p("foo~4.5").version, Some((Op::Fuzzy, "4.5".into())));
        let d = p("!openssl-dev");
        assert!(d.conflict);
        assert_eq!(d.name, "openssl-dev");
        let d = p("curl@edge>=8");
        assert_eq!(d.tag.as_deref(), Some("edge"));
        assert_eq!(d.version, Some((Op::Ge, "8".into())));
        let d = p("curl>=8@edge");
        assert_eq!(d.tag.as_deref(), Some("edge"));
        assert_eq!(d.to_string(), "curl@edge>=8");
        assert_eq!(p("so:libc.so.6").name, "so:libc.so.6");
        assert_eq!(p("py3.12-foo").name, "py3.12-foo");
        for bad in [
            "",
            "!",
            "foo>>1",
            "foo>=",
            "foo=abc",
            "foo@",
            "a b",
            "foo@x@y=1",
            "x><abc",
        ] {
            assert!(Dependency::parse(bad, "w").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn matching() {
        assert!(p("foo>=1.2").version_matches(Some("1.2-r0"), ""));
        assert!(!p("foo>1.2-r0").version_matches(Some("1.2-r0"), ""));
        assert!(p("foo~1.2").version_matches(Some("1.2.3-r0"), ""));
        assert!(!p("foo~1.2").version_matches(Some("1.20"), ""));
        assert!(!p("foo>=1").version_matches(None, ""));
        assert!(p("foo").version_matches(None, ""));
        assert!(p("foo><Q1abc").version_matches(Some("1"), "Q1abc"));
        // SONAME versions are compared below package versions
        assert!(p("so:libz.so.1>=1").version_matches(Some("1.3"), ""));
        assert!(!p("so:libz.so.1>=1.0-r0").version_matches(Some("1.3"), ""));
    }
}
