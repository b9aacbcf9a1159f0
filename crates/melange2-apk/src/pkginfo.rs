//! `.PKGINFO`: package metadata, rendered in melange's line order and parsed
//! leniently (unknown keys kept, comments ignored except `# vendored`).

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// Package metadata as stored in `.PKGINFO`.
///
/// `size` and `datahash` are computed by the package writer; everything else
/// comes from the caller. Lists are written in the order given (melange sorts
/// and deduplicates `depend`/`provides`; use [`PkgInfo::normalize`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkgInfo {
    /// `pkgname`.
    pub name: String,
    /// `pkgver`: full version `<version>-r<epoch>`.
    pub version: String,
    /// `arch` (APK name: `x86_64`, `aarch64`, `noarch`, …).
    pub arch: String,
    /// `size`: installed size in bytes (computed by the writer).
    pub size: u64,
    /// `origin`: source (main) package name.
    pub origin: String,
    /// `pkgdesc`.
    pub description: String,
    /// `url`.
    pub url: String,
    /// `commit`: VCS commit of the recipe.
    pub commit: String,
    /// `maintainer` (melange: the namespace); omitted when empty.
    pub maintainer: String,
    /// `packager` (abuild only); omitted when empty.
    pub packager: String,
    /// `builddate` (Unix seconds); omitted when 0.
    pub build_date: u64,
    /// `license` lines.
    pub licenses: Vec<String>,
    /// `depend` lines.
    pub depends: Vec<String>,
    /// `provides` lines.
    pub provides: Vec<String>,
    /// `replaces` lines.
    pub replaces: Vec<String>,
    /// `install_if` lines (melange never writes them).
    pub install_if: Vec<String>,
    /// `# vendored = …` comment lines.
    pub vendored: Vec<String>,
    /// `provider_priority` (written when set, even 0).
    pub provider_priority: Option<u64>,
    /// `replaces_priority` (written when set).
    pub replaces_priority: Option<u64>,
    /// `triggers`: directory globs (written space-separated with a trailing space).
    pub triggers: Vec<String>,
    /// `datahash`: hex SHA-256 of the data member (computed by the writer).
    pub datahash: String,
    /// Unknown `key = value` lines, kept in order.
    pub extra: Vec<(String, String)>,
}

fn check_value(field: &str, v: &str) -> Result<()> {
    if v.contains('\n') || v.contains('\r') {
        return Err(Error::invalid(
            format!(".PKGINFO field {field}"),
            format!("value {v:?} contains a line break"),
        ));
    }
    Ok(())
}

/// Check a package name: `[a-zA-Z0-9._+-]`, starting with an alphanumeric.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

impl PkgInfo {
    /// Minimal metadata (name, full version, arch); origin defaults to the name.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        arch: impl Into<String>,
    ) -> Self {
        let name = name.into();
        PkgInfo {
            origin: name.clone(),
            name,
            version: version.into(),
            arch: arch.into(),
            ..PkgInfo::default()
        }
    }

    /// Sort and deduplicate `depend` and `provides` like melange.
    pub fn normalize(&mut self) {
        for list in [&mut self.depends, &mut self.provides] {
            list.sort();
            list.dedup();
        }
    }

    /// `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Validate fields a package cannot be written without.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let ctx = || format!("package {:?}", self.name);
        if !is_valid_name(&self.name) {
            return Err(Error::invalid(
                ctx(),
                "invalid package name (allowed: [a-zA-Z0-9._+-], starting alphanumeric)",
            ));
        }
        if !crate::version::is_valid(&self.version) {
            return Err(Error::invalid(
                ctx(),
                format!("invalid version {:?}", self.version),
            ));
        }
        if self.arch.is_empty() || self.arch.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(Error::invalid(
                ctx(),
                format!("invalid arch {:?}", self.arch),
            ));
        }
        let singles = [
            ("origin", &self.origin),
            ("pkgdesc", &self.description),
            ("url", &self.url),
            ("commit", &self.commit),
            ("maintainer", &self.maintainer),
            ("packager", &self.packager),
        ];
        for (k, v) in singles {
            check_value(k, v).map_err(|e| e.within(ctx()))?;
        }
        let lists = [
            ("license", &self.licenses),
            ("depend", &self.depends),
            ("provides", &self.provides),
            ("replaces", &self.replaces),
            ("install_if", &self.install_if),
            ("vendored", &self.vendored),
            ("triggers", &self.triggers),
        ];
        for (k, list) in lists {
            for v in list {
                check_value(k, v).map_err(|e| e.within(ctx()))?;
            }
        }
        for t in &self.triggers {
            if t.contains(char::is_whitespace) || t.is_empty() {
                return Err(Error::invalid(ctx(), format!("invalid trigger path {t:?}")));
            }
        }
        Ok(())
    }

    /// Render `.PKGINFO` in melange's line order.
    pub fn render(&self) -> String {
        let mut s = String::from("# Generated by melange\n");
        let mut kv = |k: &str, v: &str| {
            let _ = writeln!(s, "{k} = {v}");
        };
        kv("pkgname", &self.name);
        kv("pkgver", &self.version);
        kv("arch", &self.arch);
        kv("size", &self.size.to_string());
        kv("origin", &self.origin);
        kv("pkgdesc", &self.description);
        kv("url", &self.url);
        kv("commit", &self.commit);
        if !self.maintainer.is_empty() {
            kv("maintainer", &self.maintainer);
        }
        if !self.packager.is_empty() {
            kv("packager", &self.packager);
        }
        if self.build_date != 0 {
            kv("builddate", &self.build_date.to_string());
        }
        for l in &self.licenses {
            kv("license", l);
        }
        for d in &self.depends {
            kv("depend", d);
        }
        for p in &self.provides {
            kv("provides", p);
        }
        for r in &self.replaces {
            kv("replaces", r);
        }
        for i in &self.install_if {
            kv("install_if", i);
        }
        for v in &self.vendored {
            kv("# vendored", v);
        }
        if let Some(p) = self.provider_priority {
            kv("provider_priority", &p.to_string());
        }
        if let Some(p) = self.replaces_priority {
            kv("replaces_priority", &p.to_string());
        }
        if !self.triggers.is_empty() {
            let mut t = String::new();
            for p in &self.triggers {
                t.push_str(p);
                t.push(' ');
            }
            kv("triggers", &t);
        }
        for (k, v) in &self.extra {
            kv(k, v);
        }
        kv("datahash", &self.datahash);
        s
    }

    /// Parse `.PKGINFO` text. Unknown keys go to [`PkgInfo::extra`].
    ///
    /// # Errors
    /// [`Error::Malformed`] with the line number for lines without ` = ` or
    /// non-numeric numeric fields.
    pub fn parse(text: &str) -> Result<Self> {
        let mut p = PkgInfo::default();
        for (i, line) in text.lines().enumerate() {
            let ctx = || format!(".PKGINFO line {}", i + 1);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                if let Some(v) = rest.trim_start().strip_prefix("vendored = ") {
                    p.vendored.push(v.to_string());
                }
                continue;
            }
            let Some((k, v)) = line.split_once(" = ") else {
                return Err(Error::malformed(
                    ctx(),
                    format!("expected `key = value`, got {line:?}"),
                ));
            };
            let num = |v: &str| -> Result<u64> {
                v.trim()
                    .parse()
                    .map_err(|_| Error::malformed(ctx(), format!("{k}: {v:?} is not a number")))
            };
            match k {
                "pkgname" => p.name = v.to_string(),
                "pkgver" => p.version = v.to_string(),
                "arch" => p.arch = v.to_string(),
                "size" => p.size = num(v)?,
                "origin" => p.origin = v.to_string(),
                "pkgdesc" => p.description = v.to_string(),
                "url" => p.url = v.to_string(),
                "commit" => p.commit = v.to_string(),
                "maintainer" => p.maintainer = v.to_string(),
                "packager" => p.packager = v.to_string(),
                "builddate" => p.build_date = num(v)?,
                "license" => p.licenses.push(v.to_string()),
                "depend" => p.depends.push(v.to_string()),
                "provides" => p.provides.push(v.to_string()),
                "replaces" => p.replaces.push(v.to_string()),
                "install_if" => p
                    .install_if
                    .extend(v.split_whitespace().map(str::to_string)),
                "provider_priority" => p.provider_priority = Some(num(v)?),
                "replaces_priority" => p.replaces_priority = Some(num(v)?),
                "triggers" => p.triggers.extend(v.split_whitespace().map(str::to_string)),
                "datahash" => p.datahash = v.to_string(),
                _ => p.extra.push((k.to_string(), v.to_string())),
            }
        }
        if p.name.is_empty() || p.version.is_empty() {
            return Err(Error::malformed(".PKGINFO", "missing pkgname or pkgver"));
        }
        Ok(p)
    }

    /// The license as a single value (lines joined with ` AND `), as apk
    /// indexes carry only one.
    pub fn license(&self) -> String {
        self.licenses.join(" AND ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn melange_order_and_roundtrip() {
        let mut p = PkgInfo::new("hello", "2.12-r1", "x86_64");
        p.size = 1234;
        p.description = "GNU hello".into();
        p.commit = "abc".into();
        p.maintainer = "wolfi".into();
        p.build_date = 1_700_000_000;
        p.licenses = vec!["GPL-3.0-or-later".into()];
        p.depends = vec![
            "so:libc.so.6".into(),
            "so:ld-linux-x86-64.so.2".into(),
            "so:libc.so.6".into(),
        ];
        p.provides = vec!["cmd:hello=2.12-r1".into()];
        p.vendored = vec!["so:libfoo.so.1=1".into()];
        p.provider_priority = Some(0);
        p.triggers = vec!["/usr/share/fonts/*".into()];
        p.datahash = "00ff".into();
        p.normalize();
        let text = p.render();
        let expected = "# Generated by melange\npkgname = hello\npkgver = 2.12-r1\narch = x86_64\nsize = 1234\norigin = hello\npkgdesc = GNU hello\nurl = \ncommit = abc\nmaintainer = wolfi\nbuilddate = 1700000000\nlicense = GPL-3.0-or-later\ndepend = so:ld-linux-x86-64.so.2\ndepend = so:libc.so.6\nprovides = cmd:hello=2.12-r1\n# vendored = so:libfoo.so.1=1\nprovider_priority = 0\ntriggers = /usr/share/fonts/* \ndatahash = 00ff\n";
        assert_eq!(text, expected);
        assert_eq!(PkgInfo::parse(&text).unwrap(), p);
    }

    #[test]
    fn parse_errors_name_line() {
        let e = PkgInfo::parse("pkgname = a\npkgver = 1\nsize = x\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        assert!(PkgInfo::parse("garbage\n").is_err());
    }
}
