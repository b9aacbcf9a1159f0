//! BuildKit cache export and import options, in the syntax of `buildctl --export-cache` and
//! `docker buildx build --cache-to/--cache-from`: comma-separated `key=value` fields, one of
//! them `type=`.
//!
//! The daemon does the work: after a successful build it writes the cache of the steps to the
//! target, and before a build it reads the cache manifests it was given and takes every step it
//! finds there from them. melange2 only passes the options through, after checking them.
//!
//! Types:
//! - `registry` (checked fully): `ref=HOST[:PORT]/REPOSITORY[:TAG]`, `mode=min|max`,
//!   `registry.insecure=true` for plain HTTP, `oci-mediatypes`, `image-manifest`,
//!   `compression=gzip|zstd|estargz|uncompressed`, `compression-level`, `force-compression`,
//!   `ignore-error`. The daemon talks to the registry itself; it gets no credentials from us.
//! - `inline`, `s3`, `gha`, `azblob`: passed through; the daemon reports what is missing.
//!   `inline` only works with image exporters, which melange2 does not use.
//! - `local`: refused. The daemon reads and writes a local cache through a content store the
//!   *client* serves over the session; this client does not implement it.

use std::collections::BTreeMap;
use std::fmt;

use bollard_buildkit_proto::moby::buildkit::v1 as control;
use sha2::{Digest, Sha256};

use crate::BuildkitError;

/// The cache types BuildKit v0.32 knows, apart from `local`.
const TYPES: &[&str] = &["registry", "inline", "s3", "gha", "azblob"];

/// Attributes of every exporter type that take a boolean (Go's `strconv.ParseBool`).
const BOOL_ATTRS: &[&str] = &["ignore-error", "force-compression"];

/// Attributes of the registry type that take a boolean.
const REGISTRY_BOOL_ATTRS: &[&str] = &["registry.insecure", "oci-mediatypes", "image-manifest"];

/// The longest tag a registry accepts.
const MAX_TAG: usize = 128;

/// Where an option is used; some checks depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Parsed without knowing yet.
    Any,
    /// `--cache-to`.
    Export,
    /// `--cache-from`.
    Import,
}

impl Role {
    fn flag(self) -> &'static str {
        match self {
            Role::Any => "cache option",
            Role::Export => "--cache-to",
            Role::Import => "--cache-from",
        }
    }
}

/// One BuildKit cache export or import: its `type` and the rest of its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOption {
    /// The `type` (`registry`, `inline`, `s3`, `gha`, `azblob`).
    pub kind: String,
    /// Every other `key=value` field, as given (unknown keys included).
    pub attrs: BTreeMap<String, String>,
}

impl CacheOption {
    /// Parse `type=registry,ref=HOST/REPO:TAG,mode=max,registry.insecure=true`: comma-separated
    /// `key=value` fields (CSV: a field may be double-quoted to hold commas), `type` required.
    /// Unknown keys are kept; empty values, repeated keys and unsupported types are errors.
    pub fn parse(s: &str) -> Result<CacheOption, BuildkitError> {
        Self::parse_as(s, Role::Any)
    }

    /// [`CacheOption::parse`] for `--cache-to`; errors name that flag.
    pub fn parse_export(s: &str) -> Result<CacheOption, BuildkitError> {
        Self::parse_as(s, Role::Export)
    }

    /// [`CacheOption::parse`] for `--cache-from`; errors name that flag and `inline` is
    /// refused (inline cache is imported with `type=registry,ref=IMAGE`).
    pub fn parse_import(s: &str) -> Result<CacheOption, BuildkitError> {
        Self::parse_as(s, Role::Import)
    }

    /// A registry cache at `reference` (`HOST[:PORT]/REPOSITORY[:TAG]`).
    pub fn registry(reference: impl Into<String>) -> CacheOption {
        CacheOption {
            kind: "registry".into(),
            attrs: BTreeMap::from([("ref".to_string(), reference.into())]),
        }
    }

    /// Set an attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<String>) -> CacheOption {
        self.attrs.insert(key.into(), value.into());
        self
    }

    /// The registry reference (attr `ref`), if any.
    pub fn reference(&self) -> Option<&str> {
        self.attrs.get("ref").map(String::as_str)
    }

    /// A copy whose `ref` tag is replaced by `tag` (`host:port/repo:old` → `host:port/repo:tag`;
    /// a ref without a tag gets one, a digest is dropped). Characters a tag may not hold become
    /// `-` and an over-long tag is shortened with a hash (see [`CacheOption::tag_for`]). Without
    /// a `ref`, the copy is unchanged.
    pub fn with_tag(&self, tag: &str) -> CacheOption {
        let mut out = self.clone();
        if let Some(r) = self.reference() {
            let retagged = format!("{}:{}", repository_of(r), Self::tag_for(tag));
            out.attrs.insert("ref".into(), retagged);
        }
        out
    }

    /// `s` made into a valid registry tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`): other
    /// characters become `-`, a leading `.` or `-` gets a `_` before it, and a tag longer than
    /// 128 characters keeps its start and ends with a hash of the whole.
    pub fn tag_for(s: &str) -> String {
        let mut t: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if t.is_empty() {
            return "latest".into();
        }
        if t.starts_with(['.', '-']) {
            t.insert(0, '_');
        }
        if t.len() > MAX_TAG {
            let hash = hex::encode(&Sha256::digest(s.as_bytes())[..8]);
            t.truncate(MAX_TAG - hash.len() - 1);
            t.push('-');
            t.push_str(&hash);
        }
        t
    }

    fn parse_as(s: &str, role: Role) -> Result<CacheOption, BuildkitError> {
        let err = |reason: String| BuildkitError::CacheOption {
            flag: role.flag(),
            spec: s.to_string(),
            reason,
        };
        let mut kind = None;
        let mut attrs = BTreeMap::new();
        let mut bare = None;
        for field in split_fields(s).map_err(err)? {
            let field = field.trim();
            if field.is_empty() {
                continue;
            }
            let Some((k, v)) = field.split_once('=') else {
                bare.get_or_insert_with(|| field.to_string());
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(err(format!("a field has no key: {field:?}")));
            }
            if v.is_empty() {
                return Err(err(format!("empty value for {k}=")));
            }
            if k == "type" {
                if kind.is_some() {
                    return Err(err("type= given twice".into()));
                }
                kind = Some(v.to_ascii_lowercase());
            } else if attrs.insert(k.to_string(), v.to_string()).is_some() {
                return Err(err(format!("{k}= given twice")));
            }
        }
        let Some(kind) = kind else {
            let hint = match (&bare, attrs.contains_key("ref")) {
                (Some(b), false) if attrs.is_empty() && b.contains('/') => {
                    format!(" (for a registry: type=registry,ref={b})")
                }
                (_, true) => " (for a registry: type=registry,ref=…)".to_string(),
                _ => String::new(),
            };
            return Err(err(format!("missing type={hint}")));
        };
        if let Some(b) = bare {
            return Err(err(format!("expected key=value, got {b:?}")));
        }
        let opt = CacheOption { kind, attrs };
        opt.problem(role).map_or(Ok(opt), |reason| Err(err(reason)))
    }

    /// Check an option that may have been built by hand, for use as `role`.
    pub(crate) fn check(&self, role: Role) -> Result<(), BuildkitError> {
        match self.problem(role) {
            None => Ok(()),
            Some(reason) => Err(BuildkitError::CacheOption {
                flag: role.flag(),
                spec: self.to_string(),
                reason,
            }),
        }
    }

    /// What is wrong with this option, if anything.
    fn problem(&self, role: Role) -> Option<String> {
        match self.kind.as_str() {
            "" => return Some("missing type=".into()),
            "local" => {
                return Some(
                    "type=local is not supported: BuildKit reads and writes a local cache \
                     through a content store that the client serves over its session, which \
                     melange2 does not implement; share the cache through a registry instead \
                     (type=registry,ref=HOST:PORT/REPOSITORY:TAG, see docs/cache.md)"
                        .into(),
                );
            }
            "inline" if role == Role::Import => {
                return Some(
                    "type=inline is only for exports (it writes the cache into an image); \
                     import such cache with type=registry,ref=IMAGE"
                        .into(),
                );
            }
            k if !TYPES.contains(&k) => {
                return Some(format!(
                    "unknown cache type {k:?} (supported: {})",
                    TYPES.join(", ")
                ));
            }
            _ => {}
        }
        for (k, v) in &self.attrs {
            if k.is_empty() {
                return Some("an attribute has no key".into());
            }
            if v.is_empty() {
                return Some(format!("empty value for {k}="));
            }
            if k == "type" {
                return Some("type= belongs in `kind`, not in the attributes".into());
            }
        }
        if let Some(mode) = self.attrs.get("mode")
            && role != Role::Import
            && mode != "min"
            && mode != "max"
        {
            // The daemon silently falls back to `min` for an unknown mode.
            return Some(format!("mode={mode}: expected mode=min or mode=max"));
        }
        let registry = self.kind == "registry";
        for (k, v) in &self.attrs {
            let is_bool = BOOL_ATTRS.contains(&k.as_str())
                || registry && REGISTRY_BOOL_ATTRS.contains(&k.as_str());
            if is_bool && parse_go_bool(v).is_none() {
                return Some(format!("{k}={v}: expected true or false"));
            }
        }
        if let Some(c) = self.attrs.get("compression")
            && !matches!(c.as_str(), "uncompressed" | "gzip" | "estargz" | "zstd")
        {
            return Some(format!(
                "compression={c}: expected uncompressed, gzip, estargz or zstd"
            ));
        }
        if let Some(l) = self.attrs.get("compression-level")
            && l.parse::<i32>().is_err()
        {
            return Some(format!("compression-level={l}: expected a number"));
        }
        if registry {
            let Some(r) = self.reference() else {
                return Some("type=registry needs ref=HOST[:PORT]/REPOSITORY[:TAG]".into());
            };
            if let Err(why) = check_reference(r) {
                return Some(format!("ref={r}: {why}"));
            }
        }
        None
    }

    pub(crate) fn to_proto(&self) -> control::CacheOptionsEntry {
        control::CacheOptionsEntry {
            r#type: self.kind.clone(),
            attrs: self
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl std::str::FromStr for CacheOption {
    type Err = BuildkitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CacheOption::parse(s)
    }
}

/// The option in the syntax [`CacheOption::parse`] reads: `type=…` first, then the attributes
/// in key order, quoted where needed.
impl fmt::Display for CacheOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_field(f, &format!("type={}", self.kind))?;
        for (k, v) in &self.attrs {
            f.write_str(",")?;
            write_field(f, &format!("{k}={v}"))?;
        }
        Ok(())
    }
}

fn write_field(f: &mut fmt::Formatter<'_>, field: &str) -> fmt::Result {
    if field.contains([',', '"']) || field.trim() != field {
        write!(f, "\"{}\"", field.replace('"', "\"\""))
    } else {
        f.write_str(field)
    }
}

/// Split one CSV record: fields separated by commas; a field that starts with `"` runs to the
/// next lone `"` and may hold commas, with `""` standing for a quote.
fn split_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        while chars.peek().is_some_and(|c| *c == ' ') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err(format!(
                            "a quote inside a field ({field}\"…): quote the whole field instead"
                        ));
                    }
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `reference` without its tag and digest: `host:port/repo:tag@sha256:…` → `host:port/repo`.
/// The tag is whatever follows a `:` after the last `/`, so a port is never mistaken for one.
fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].find(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    }
}

/// Check the shape of an image reference: `[HOST[:PORT]/]PATH[:TAG][@ALGO:HEX]`, PATH made of
/// lower-case components. What the daemon would reject with a less direct message.
fn check_reference(r: &str) -> Result<(), String> {
    if let Some((scheme, _)) = r.split_once("://") {
        return Err(format!(
            "a reference has no {scheme}:// (write HOST:PORT/REPOSITORY; plain HTTP is \
             registry.insecure=true)"
        ));
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a reference holds no spaces".into());
    }
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c))
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return Err(format!("invalid digest {d:?}"));
        }
    }
    let repo = repository_of(name);
    let tag = &name[repo.len()..];
    if let Some(tag) = tag.strip_prefix(':') {
        let ok = tag.len() <= MAX_TAG
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(format!(
                "invalid tag {tag:?} (letters, digits, '_', '.', '-'; at most {MAX_TAG})"
            ));
        }
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    // The first part is a host when it looks like one (docker's rule).
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = if host.starts_with('[') {
            // [IPv6]:PORT
            match host.find(']') {
                Some(i) => (&host[..=i], host[i + 1..].strip_prefix(':')),
                None => return Err(format!("invalid registry host {host:?}")),
            }
        } else {
            match host.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host, None),
            }
        };
        let h_ok = !h.is_empty()
            && (h.starts_with('[') && h.ends_with(']')
                || h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')));
        if !h_ok {
            return Err(format!("invalid registry host {host:?}"));
        }
        if let Some(p) = port
            && p.parse::<u16>().is_err()
        {
            return Err(format!("invalid port in {host:?}"));
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err("expected HOST[:PORT]/REPOSITORY[:TAG]".into());
    }
    for p in parts {
        let ok = p
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
            && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(format!(
                "invalid repository part {p:?} (lower-case letters, digits and '.', '_', '-' \
                 between them)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_keeps_the_port() {
        assert_eq!(
            repository_of("127.0.0.1:5000/cache:t1"),
            "127.0.0.1:5000/cache"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/cache"),
            "127.0.0.1:5000/cache"
        );
        assert_eq!(repository_of("host/a/b:x@sha256:00"), "host/a/b");
        assert_eq!(repository_of("cache"), "cache");
    }

    #[test]
    fn fields_with_quotes() {
        assert_eq!(
            split_fields(r#"type=s3,"name=a,b","x=say ""hi""""#).unwrap(),
            vec!["type=s3", "name=a,b", r#"x=say "hi""#]
        );
        assert!(split_fields(r#""open"#).is_err());
        assert!(split_fields(r#"a=b"c"#).is_err());
    }
}
