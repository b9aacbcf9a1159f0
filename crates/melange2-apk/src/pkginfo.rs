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

/// A build time as written by any melange tool: Unix seconds, where zero (what
/// melange writes for an unknown date) means unknown (0), and a negative value
/// (Go's zero time is `-62135596800`) or anything that is not a number also
/// reads as unknown, with a note saying so.
pub(crate) fn build_time(v: &str, note: &mut dyn FnMut(String)) -> u64 {
    match v.trim().parse::<i64>() {
        Ok(t) if t >= 0 => t.unsigned_abs(),
        Ok(t) => {
            note(format!(
                "build time {t} is not a real date; read as unknown"
            ));
            0
        }
        Err(_) => {
            note(format!("build time {v:?} is not a number; read as unknown"));
            0
        }
    }
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

    /// Parse `.PKGINFO` text. Unknown keys go to [`PkgInfo::extra`]; what
    /// [`PkgInfo::parse_with_notes`] notes is logged as warnings.
    ///
    /// # Errors
    /// As [`PkgInfo::parse_with_notes`].
    pub fn parse(text: &str) -> Result<Self> {
        let (p, notes) = Self::parse_with_notes(text)?;
        for n in notes {
            tracing::warn!(package = %p.name, "{n}");
        }
        Ok(p)
    }

    /// Parse `.PKGINFO` text as leniently as apk-tools and go-apk read it
    /// (docs/apk.md, "Reading what other tools write"), returning the notes
    /// about what was read differently from how it is written:
    /// * `builddate` that is zero, negative (Go's zero time
    ///   `-62135596800`) or not a number reads as unknown (0);
    /// * `size`, `provider_priority`, `replaces_priority` that are not
    ///   numbers read as unset (0 / none);
    /// * lines without ` = ` are skipped (a trailing `key =` is an empty
    ///   value); empty `depend`/`provides`/`replaces`/`license` values are
    ///   skipped; `depend`, `provides` and `replaces` may list several
    ///   space-separated values, as apk-tools reads them.
    ///
    /// Unknown keys are kept in [`PkgInfo::extra`] without a note.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `pkgname` or `pkgver` is missing or empty.
    pub fn parse_with_notes(text: &str) -> Result<(Self, Vec<String>)> {
        let mut p = PkgInfo::default();
        let mut notes = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                if let Some(v) = rest.trim_start().strip_prefix("vendored = ") {
                    p.vendored.push(v.to_string());
                }
                continue;
            }
            let Some((k, v)) = line
                .split_once(" = ")
                .or_else(|| line.strip_suffix(" =").map(|k| (k, "")))
            else {
                notes.push(format!(
                    ".PKGINFO line {}: skipped {:?} (not `key = value`)",
                    i + 1,
                    line.chars().take(80).collect::<String>()
                ));
                continue;
            };
            p.set_field(k, v, &mut |m| {
                notes.push(format!(".PKGINFO line {}: {m}", i + 1));
            });
        }
        if p.name.is_empty() || p.version.is_empty() {
            return Err(Error::malformed(".PKGINFO", "missing pkgname or pkgver"));
        }
        Ok((p, notes))
    }

    /// Store one `key = value` line; `note` receives what was read leniently.
    fn set_field(&mut self, k: &str, v: &str, note: &mut dyn FnMut(String)) {
        let mut num = |v: &str, unset: &str| -> Option<u64> {
            let n = v.trim().parse().ok();
            if n.is_none() {
                note(format!("{k} {v:?} is not a number; read as {unset}"));
            }
            n
        };
        let words = |list: &mut Vec<String>| {
            list.extend(v.split_whitespace().map(str::to_string));
        };
        match k {
            "pkgname" => self.name = v.to_string(),
            "pkgver" => self.version = v.to_string(),
            "arch" => self.arch = v.to_string(),
            "size" => self.size = num(v, "0").unwrap_or(0),
            "origin" => self.origin = v.to_string(),
            "pkgdesc" => self.description = v.to_string(),
            "url" => self.url = v.to_string(),
            "commit" => self.commit = v.to_string(),
            "maintainer" => self.maintainer = v.to_string(),
            "packager" => self.packager = v.to_string(),
            "builddate" => self.build_date = build_time(v, note),
            "license" if !v.trim().is_empty() => self.licenses.push(v.to_string()),
            "license" => {}
            "depend" => words(&mut self.depends),
            "provides" => words(&mut self.provides),
            "replaces" => words(&mut self.replaces),
            "install_if" => words(&mut self.install_if),
            "provider_priority" => self.provider_priority = num(v, "unset"),
            "replaces_priority" => self.replaces_priority = num(v, "unset"),
            "triggers" => words(&mut self.triggers),
            "datahash" => self.datahash = v.to_string(),
            _ => self.extra.push((k.to_string(), v.to_string())),
        }
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
    fn parse_errors_and_notes_name_line() {
        let (p, notes) = PkgInfo::parse_with_notes("pkgname = a\npkgver = 1\nsize = x\n").unwrap();
        assert_eq!(p.size, 0);
        assert!(
            notes[0].contains("line 3") && notes[0].contains("size"),
            "{notes:?}"
        );
        assert!(PkgInfo::parse("garbage\n").is_err());
        assert!(PkgInfo::parse("pkgname = \npkgver = 1\n").is_err());
    }

    #[test]
    fn reads_what_other_melange_tools_write() {
        let text = "# Generated by melange\npkgname = a\npkgver = 1.0-r0\narch = x86_64\n\
            size = 0\nurl =\nbuilddate = -62135596800\nlicense = \ndepend = \n\
            depend = so:libc.so.6 busybox\nprovides = cmd:a=1.0-r0\nprovider_priority = high\n\
            futurekey = some value\nnot a key value line\ndatahash = 00ff\n";
        let (p, notes) = PkgInfo::parse_with_notes(text).unwrap();
        assert_eq!(p.build_date, 0);
        assert_eq!(p.url, "");
        assert!(p.licenses.is_empty());
        assert_eq!(p.depends, ["so:libc.so.6", "busybox"]);
        assert_eq!(p.provider_priority, None);
        assert_eq!(
            p.extra,
            [("futurekey".to_string(), "some value".to_string())]
        );
        assert_eq!(p.datahash, "00ff");
        let all = notes.join("\n");
        assert!(all.contains("line 7: build time -62135596800"), "{all}");
        assert!(all.contains("line 12: provider_priority \"high\""), "{all}");
        assert!(
            all.contains("line 14: skipped \"not a key value line\""),
            "{all}"
        );
        assert_eq!(notes.len(), 3, "{all}");
        // zero is how melange writes an unknown date: no note; a real date is kept
        let (p, notes) =
            PkgInfo::parse_with_notes("pkgname = a\npkgver = 1\nbuilddate = 0\n").unwrap();
        assert_eq!((p.build_date, notes.len()), (0, 0));
        let (p, notes) =
            PkgInfo::parse_with_notes("pkgname = a\npkgver = 1\nbuilddate = 1700000000\n").unwrap();
        assert_eq!((p.build_date, notes.len()), (1_700_000_000, 0));
    }
}
