use std::cmp::Ordering::{self, Equal, Greater, Less};

use melange2_apk::Version;
use melange2_apk::version::{compare, fuzzy_match, is_valid, is_valid_strict, split_name_version};

fn check(a: &str, want: Ordering, b: &str) {
    assert_eq!(compare(a, b), want, "{a} vs {b}");
    assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
}

#[test]
fn spec_vectors() {
    check("1.0", Less, "1.0.1");
    check("1.0", Less, "1.0-r1");
    check("1.0_rc1", Less, "1.0");
    check("1.0_alpha2", Less, "1.0_beta1");
    check("1.0_pre1", Less, "1.0_rc1");
    check("1.0_beta", Less, "1.0_beta1");
    check("1.0_p1", Greater, "1.0");
    check("1.0_git20240101", Less, "1.0_p1");
    check("1.0_rc1_p2", Greater, "1.0_rc1");
    check("1.0a", Greater, "1.0");
    check("1.0a", Less, "1.0.1");
    check("1.2", Less, "1.10");
    check("1.02", Less, "1.1");
    check("1.010", Less, "1.09");
    check("1.0-r1", Less, "1.0-r10");
    check("2.0_rc1-r3", Less, "2.0-r0");
    check("3.10.12-r0", Greater, "3.10.2-r5");
    check("1.0~abc", Greater, "1.0");
    check("0.9.9", Less, "1");
    assert!(fuzzy_match("1.2.3-r0", "1.2"));
    assert!(fuzzy_match("4.5.6-r7", "4.5.6"));
    assert!(!fuzzy_match("1.20", "1.2"));
    assert!(!fuzzy_match("1.2", "1.2.3"));
}

#[test]
fn more_vectors() {
    check("1", Equal, "1");
    check("1.0", Equal, "1.0");
    check("01", Equal, "1"); // first component is numeric
    check("1.0-r0", Greater, "1.0"); // -r0 is a token; shorter is less
    check("1.0_alpha", Less, "1.0_alpha1");
    check("1.0_alpha10", Greater, "1.0_alpha9");
    check("1.0_cvs1", Less, "1.0_svn1");
    check("1.0_svn", Less, "1.0_git");
    check("1.0_git", Less, "1.0_hg");
    check("1.0_hg", Less, "1.0_p");
    check("1.0_rc", Less, "1.0_cvs");
    check("1.0b", Greater, "1.0a");
    check("1.0z", Less, "1.0.0");
    check(
        "99999999999999999999999",
        Greater,
        "99999999999999999999998",
    );
    check("1.99999999999999999999", Greater, "1.9999999999999999999");
    check("1.0_rc1-r1", Greater, "1.0_rc1");
    check("1.0~abc", Less, "1.0~abd");
    check("1.0~abc-r1", Greater, "1.0~abc");
    check("1.0-r1", Less, "1.0~ff"); // hash token (5) sorts above revision (6)
    check("2", Greater, "1.999");
    check("1.0.0", Greater, "1.0");
    check("20240101", Greater, "2.0");
    check("1.2.3_p1-r2", Greater, "1.2.3-r9");
    check("1.2.3_beta2-r0", Greater, "1.2.3_alpha9-r9");
    // invalid versions sort below valid ones and never panic
    check("1.0", Greater, "1.0.");
    check("abc", Less, "0");
}

/// apk-tools ranks `_alpha < _beta < _pre < _rc < (no suffix) < _cvs < _svn < _git < _hg
/// < _p`: every post-release suffix is newer than the plain version, with or without a
/// number, and whatever the revisions.
#[test]
fn post_release_suffixes_rank_above_no_suffix() {
    for s in ["cvs", "svn", "git", "hg", "p"] {
        check(&format!("1.0_{s}"), Greater, "1.0");
        check(&format!("1.0_{s}1"), Greater, "1.0");
        check(&format!("1.0_{s}20240101-r0"), Greater, "1.0-r9");
        check(&format!("1.0_{s}"), Less, "1.0.1");
        check(&format!("1.0_{s}"), Greater, "1.0_rc9");
    }
    for s in ["alpha", "beta", "pre", "rc"] {
        check(&format!("1.0_{s}"), Less, "1.0");
        check(&format!("1.0_{s}9-r9"), Less, "1.0-r0");
    }
    let order = [
        "1.0_alpha1",
        "1.0_beta1",
        "1.0_pre1",
        "1.0_rc1",
        "1.0",
        "1.0_cvs1",
        "1.0_svn1",
        "1.0_git1",
        "1.0_hg1",
        "1.0_p1",
    ];
    for (i, a) in order.iter().enumerate() {
        for b in &order[i + 1..] {
            check(a, Less, b);
        }
    }
}

#[test]
fn grammar() {
    for ok in [
        "1",
        "1.2.3",
        "1.2a",
        "1.0_rc1",
        "1.0_rc1_p2",
        "1.0_alpha_beta",
        "1.0~0a1b",
        "1.0-r10",
        "2.0_rc1~abc-r3",
        "1.2.3_git20240101-r0",
    ] {
        assert!(is_valid(ok), "{ok}");
        assert!(Version::parse(ok).is_ok());
    }
    for bad in [
        "",
        "a",
        "1.",
        ".1",
        "1..2",
        "1.0a1",
        "1.0ab",
        "1.0_foo",
        "1.0-r",
        "1.0-1",
        "1.0~",
        "1.0~XYZ",
        "1.0 ",
        "1.0-r1-r2",
        "1.0_rc1.2",
        "v1.0",
    ] {
        assert!(!is_valid(bad), "{bad:?}");
        assert!(Version::parse(bad).is_err());
    }
    // strict (apko/melange) grammar: one pre- then one post-suffix, no hash
    for ok in [
        "1.2.3",
        "1.2.3a",
        "1.2_rc1",
        "1.2_p3",
        "1.2_rc1_p2",
        "1.0-r1",
        "1.0_git20240101",
    ] {
        assert!(is_valid_strict(ok), "{ok}");
    }
    for bad in [
        "1.0_alpha_beta",
        "1.0_p1_rc1",
        "1.0_p1_p2",
        "1.0~abc",
        "1.0.",
    ] {
        assert!(!is_valid_strict(bad), "{bad}");
    }
}

#[test]
fn version_type_and_helpers() {
    let mut v: Vec<Version> = ["1.10", "1.2", "1.2_rc1", "1.2-r1", "1.2a"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    v.sort();
    let s: Vec<&str> = v.iter().map(Version::as_str).collect();
    assert_eq!(s, ["1.2_rc1", "1.2", "1.2-r1", "1.2a", "1.10"]);
    let r: Version = "3.1_p2-r7".parse().unwrap();
    assert_eq!(r.release(), 7);
    assert_eq!(r.without_release(), "3.1_p2");
    assert_eq!(
        split_name_version("lib-foo-2-1.0-r0"),
        Some(("lib-foo-2", "1.0-r0"))
    );
}
