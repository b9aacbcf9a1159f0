//! `package.version` validation with apko's strict version grammar (no `-r` release part).

/// True when `v` is `N(.N)*[a-z]?(_(alpha|beta|pre|rc)N*)?(_(cvs|svn|git|hg|p)N*)?`.
pub fn is_valid_version(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if !digits(&mut i) {
        return false;
    }
    while i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if i < b.len() && b[i].is_ascii_lowercase() {
        i += 1;
    }
    for group in [
        &["alpha", "beta", "pre", "rc"][..],
        &["cvs", "svn", "git", "hg", "p"][..],
    ] {
        if i < b.len() && b[i] == b'_' {
            let rest = &v[i + 1..];
            // Longest suffix first so that `p` does not shadow `pre`.
            if let Some(s) = group
                .iter()
                .filter(|s| rest.starts_with(**s))
                .max_by_key(|s| s.len())
            {
                i += 1 + s.len();
                digits(&mut i);
            }
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::is_valid_version as ok;

    #[test]
    fn grammar() {
        for v in [
            "1",
            "1.2.3",
            "2.12",
            "1.0a",
            "1.0_rc1",
            "1.0_alpha",
            "1.0_p2",
            "1.0_rc1_p3",
            "20240101",
        ] {
            assert!(ok(v), "{v}");
        }
        for v in [
            "",
            "v1.0",
            "1.0-r1",
            "1.0-rc1",
            "1.0+git",
            "1..2",
            "1.0_foo",
            "1.0_p1_rc1",
            "1.0ab",
            ".1",
        ] {
            assert!(!ok(v), "{v}");
        }
    }
}
