//! A small pkg-config (`.pc`) reader: variables, keywords and the module
//! lists of `Requires`, `Requires.private` and `Requires.internal`, parsed
//! the way pkgconf does (modules separated by commas and/or whitespace, each
//! optionally followed by a comparison operator and a version).

use std::collections::BTreeMap;

/// One module of a `Requires*` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    /// Module name (`glib-2.0`).
    pub module: String,
    /// Operator and version (`>=`, `2.50`) when given.
    pub constraint: Option<(String, String)>,
}

/// What the SCA needs from a `.pc` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PcFile {
    /// `Version:` with variables expanded.
    pub version: String,
    /// `Requires:`.
    pub requires: Vec<Requirement>,
    /// `Requires.private:`.
    pub requires_private: Vec<Requirement>,
    /// `Requires.internal:`.
    pub requires_internal: Vec<Requirement>,
}

fn expand(value: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unterminated variable reference in {value:?}"))?;
            let name = &r[..end];
            out.push_str(vars.get(name).map(String::as_str).unwrap_or(""));
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn strip_comment(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            c => out.push(c),
        }
    }
    out
}

/// Parse a `Requires`-style module list.
pub(crate) fn parse_requirements(list: &str) -> Vec<Requirement> {
    let is_sep = |c: char| c.is_whitespace() || c == ',';
    let is_op = |c: char| matches!(c, '<' | '>' | '=' | '!');
    let chars: Vec<char> = list.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    while i < chars.len() {
        while i < chars.len() && is_sep(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && !is_sep(chars[i]) && !is_op(chars[i]) {
            i += 1;
        }
        let module: String = chars[start..i].iter().collect();
        let mut j = i;
        skip_ws(&mut j);
        let mut constraint = None;
        if j < chars.len() && is_op(chars[j]) {
            let os = j;
            while j < chars.len() && is_op(chars[j]) {
                j += 1;
            }
            let op: String = chars[os..j].iter().collect();
            skip_ws(&mut j);
            let vs = j;
            while j < chars.len() && !is_sep(chars[j]) {
                j += 1;
            }
            let ver: String = chars[vs..j].iter().collect();
            constraint = Some((op, ver));
            i = j;
        }
        if module.is_empty() {
            // an operator without a module name: skip the stray token
            i = i.max(start + 1);
            continue;
        }
        out.push(Requirement { module, constraint });
    }
    out
}

/// Parse `.pc` text.
///
/// # Errors
/// A description of the problem (unterminated `${`), for a warning.
pub(crate) fn parse(text: &str) -> Result<PcFile, String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut pc = PcFile::default();
    // join continuation lines
    let mut logical: Vec<String> = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(l) = line.strip_suffix('\\') {
            cur.push_str(l);
            continue;
        }
        cur.push_str(line);
        logical.push(std::mem::take(&mut cur));
    }
    if !cur.is_empty() {
        logical.push(cur);
    }
    for line in logical {
        let line = strip_comment(&line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let ident_end = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(trimmed.len());
        let ident = &trimmed[..ident_end];
        let rest = trimmed[ident_end..].trim_start();
        if ident.is_empty() {
            continue;
        }
        if let Some(v) = rest.strip_prefix('=') {
            let v = expand(v.trim(), &vars)?;
            vars.insert(ident.to_string(), v);
        } else if let Some(v) = rest.strip_prefix(':') {
            let v = expand(v.trim(), &vars)?;
            match ident {
                "Version" => pc.version = v,
                "Requires" => pc.requires = parse_requirements(&v),
                "Requires.private" => pc.requires_private = parse_requirements(&v),
                "Requires.internal" => pc.requires_internal = parse_requirements(&v),
                _ => {}
            }
        }
    }
    Ok(pc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_lists() {
        let r = parse_requirements("glib-2.0 >= 2.50, gobject-2.0,zlib libfoo>1 bar = 3");
        let names: Vec<&str> = r.iter().map(|r| r.module.as_str()).collect();
        assert_eq!(names, ["glib-2.0", "gobject-2.0", "zlib", "libfoo", "bar"]);
        assert_eq!(
            r[0].constraint,
            Some((">=".to_string(), "2.50".to_string()))
        );
        assert_eq!(r[1].constraint, None);
        assert_eq!(r[3].constraint, Some((">".to_string(), "1".to_string())));
        assert_eq!(r[4].constraint, Some(("=".to_string(), "3".to_string())));
        assert!(parse_requirements("  ,  ").is_empty());
        // stray operators and dangling constraints terminate
        for odd in ["=", "<<<", ">= ,", "a >=", "a >= ,b", "!= 1 2", ",,a,,"] {
            let _ = parse_requirements(odd);
        }
        assert_eq!(parse_requirements("a >= ,b")[0].module, "a");
    }

    #[test]
    fn variables_and_keywords() {
        let pc = parse(
            "prefix=/usr\n# comment\nver=1.2\ndep=zlib\nName: foo\nVersion: ${ver}\nRequires: ${dep} \\\n  libbar\nRequires.private: libbaz # trailing comment\n",
        )
        .unwrap();
        assert_eq!(pc.version, "1.2");
        let req: Vec<&str> = pc.requires.iter().map(|r| r.module.as_str()).collect();
        assert_eq!(req, ["zlib", "libbar"]);
        assert_eq!(pc.requires_private[0].module, "libbaz");
        assert!(parse("Requires: ${oops\n").is_err());
    }
}
