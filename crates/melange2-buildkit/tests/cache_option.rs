//! Parsing and retagging of cache options (`--cache-to` / `--cache-from`); no daemon needed.

use melange2_buildkit::{BuildkitError, CacheOption};

fn err(r: Result<CacheOption, BuildkitError>) -> String {
    match r {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parse_registry_option() {
    let o = CacheOption::parse(
        "type=registry,ref=127.0.0.1:5055/cache:t1,mode=max,registry.insecure=true",
    )
    .unwrap();
    assert_eq!(o.kind, "registry");
    assert_eq!(o.reference(), Some("127.0.0.1:5055/cache:t1"));
    assert_eq!(o.attrs["mode"], "max");
    assert_eq!(o.attrs["registry.insecure"], "true");
    assert_eq!(o.attrs.len(), 3, "type is not an attribute: {o:?}");
    // Display writes what parse reads.
    assert_eq!(
        o.to_string(),
        "type=registry,mode=max,ref=127.0.0.1:5055/cache:t1,registry.insecure=true"
    );
    assert_eq!(CacheOption::parse(&o.to_string()).unwrap(), o);
    assert_eq!(
        o,
        "type=registry,ref=127.0.0.1:5055/cache:t1,mode=max,registry.insecure=true"
            .parse::<CacheOption>()
            .unwrap()
    );
}

#[test]
fn parse_keeps_unknown_keys_and_trims() {
    let o = CacheOption::parse_export(
        " type=registry , ref=reg.example:5000/a/b/c , future-knob=7,oci-mediatypes=false,",
    )
    .unwrap();
    assert_eq!(o.reference(), Some("reg.example:5000/a/b/c"));
    assert_eq!(o.attrs["future-knob"], "7");
    assert_eq!(o.attrs["oci-mediatypes"], "false");
    assert_eq!(
        CacheOption::registry("h:1/r:t").attr("mode", "min").attrs["mode"],
        "min"
    );
}

#[test]
fn quoted_fields_hold_commas() {
    let o = CacheOption::parse(r#"type=s3,"name=a,b",region=x"#).unwrap();
    assert_eq!(o.attrs["name"], "a,b");
    assert_eq!(o.to_string(), r#"type=s3,"name=a,b",region=x"#);
    assert_eq!(CacheOption::parse(&o.to_string()).unwrap(), o);
    let e = err(CacheOption::parse(r#"type=s3,"name=a"#));
    assert!(e.contains("unterminated"), "{e}");
}

#[test]
fn missing_type_is_named() {
    assert_eq!(
        err(CacheOption::parse_export("x")),
        r#"--cache-to "x": missing type="#
    );
    let e = err(CacheOption::parse_import("ref=h:1/c:t"));
    assert!(
        e.starts_with(r#"--cache-from "ref=h:1/c:t": missing type="#)
            && e.contains("type=registry,ref="),
        "{e}"
    );
    let e = err(CacheOption::parse("127.0.0.1:5000/cache:t"));
    assert!(
        e.contains("missing type=") && e.contains("type=registry,ref=127.0.0.1:5000/cache:t"),
        "{e}"
    );
    let e = err(CacheOption::parse("type=registry,ref=h:1/c:t,oops"));
    assert!(e.contains(r#"expected key=value, got "oops""#), "{e}");
}

#[test]
fn empty_values_repeats_and_bad_values_are_errors() {
    assert_eq!(
        err(CacheOption::parse_export("type=registry,ref=")),
        r#"--cache-to "type=registry,ref=": empty value for ref="#
    );
    assert!(err(CacheOption::parse("type=")).contains("empty value for type="));
    assert!(err(CacheOption::parse("type=registry,=x,ref=h:1/c")).contains("no key"));
    assert!(
        err(CacheOption::parse("type=registry,ref=h:1/a,ref=h:1/b")).contains("ref= given twice")
    );
    assert!(err(CacheOption::parse("type=registry,type=s3")).contains("type= given twice"));
    let e = err(CacheOption::parse("type=registry,ref=h:1/c,mode=all"));
    assert!(
        e.contains("mode=all") && e.contains("min") && e.contains("max"),
        "{e}"
    );
    let e = err(CacheOption::parse(
        "type=registry,ref=h:1/c,registry.insecure=yes",
    ));
    assert!(
        e.contains("registry.insecure=yes") && e.contains("true or false"),
        "{e}"
    );
    let e = err(CacheOption::parse("type=gha,ignore-error=maybe"));
    assert!(e.contains("ignore-error=maybe"), "{e}");
    let e = err(CacheOption::parse(
        "type=registry,ref=h:1/c,compression=lz4",
    ));
    assert!(e.contains("compression=lz4"), "{e}");
    // mode means nothing to an import; the daemon ignores it there.
    CacheOption::parse_import("type=registry,ref=h:1/c,mode=whatever").unwrap();
}

#[test]
fn registry_refs_are_checked() {
    let e = err(CacheOption::parse("type=registry,mode=max"));
    assert!(e.contains("needs ref="), "{e}");
    for (bad, why) in [
        ("http://127.0.0.1:5000/cache:t", "http://"),
        ("127.0.0.1:5000/Cache:t", "Cache"),
        ("127.0.0.1:5000/cache:-t", "invalid tag"),
        ("127.0.0.1:99999/cache:t", "invalid port"),
        ("127.0.0.1:5000//cache", "HOST[:PORT]/REPOSITORY"),
        ("127.0.0.1:5000/cache@sha256:xyz", "invalid digest"),
        ("127.0.0.1:5000/ca che", "spaces"),
    ] {
        let e = err(CacheOption::parse(&format!("type=registry,ref={bad}")));
        assert!(e.contains(why), "{bad}: {e}");
    }
    for good in [
        "127.0.0.1:5000/cache:t1",
        "localhost/cache",
        "[::1]:5000/org/cache:x86_64-foo-1.2.3-r0",
        "reg.example/org/sub/cache",
        "user/app:cache",
        &format!("reg.example/cache@sha256:{}", "a".repeat(64)),
    ] {
        CacheOption::parse(&format!("type=registry,ref={good}"))
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[test]
fn types() {
    let e = err(CacheOption::parse_export("type=local,dest=/tmp/cache"));
    assert!(
        e.starts_with(r#"--cache-to "type=local,dest=/tmp/cache": type=local is not supported"#)
            && e.contains("client serves over its session")
            && e.contains("type=registry"),
        "{e}"
    );
    let e = err(CacheOption::parse("type=floppy"));
    assert!(
        e.contains(r#"unknown cache type "floppy""#) && e.contains("registry"),
        "{e}"
    );
    // Passed through to the daemon, which reports what is missing.
    for t in [
        "type=inline",
        "type=s3,bucket=b,region=r,mode=max",
        "type=gha,scope=x",
        "type=azblob,account_url=https://acct.blob.invalid/,name=c",
    ] {
        CacheOption::parse_export(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    assert!(CacheOption::parse("TYPE=registry,ref=h:1/c").is_err());
    assert_eq!(
        CacheOption::parse("type=Registry,ref=h:1/c").unwrap().kind,
        "registry"
    );
    let e = err(CacheOption::parse_import("type=inline"));
    assert!(
        e.starts_with("--cache-from") && e.contains("only for exports"),
        "{e}"
    );
}

#[test]
fn with_tag_replaces_or_adds_the_tag() {
    let o = CacheOption::parse(
        "type=registry,ref=127.0.0.1:5055/cache:old,mode=max,registry.insecure=true",
    )
    .unwrap();
    let t = o.with_tag("x86_64-foo");
    assert_eq!(t.reference(), Some("127.0.0.1:5055/cache:x86_64-foo"));
    assert_eq!(t.attrs["mode"], "max", "other attrs kept");
    assert_eq!(
        o.reference(),
        Some("127.0.0.1:5055/cache:old"),
        "original unchanged"
    );

    let cases = [
        ("127.0.0.1:5055/cache", "127.0.0.1:5055/cache:new"),
        ("localhost:5000/a/b/c:old", "localhost:5000/a/b/c:new"),
        ("reg.example/cache", "reg.example/cache:new"),
        ("cache:old", "cache:new"),
        ("[::1]:5000/cache", "[::1]:5000/cache:new"),
        (
            &format!("reg.example:443/cache:old@sha256:{}", "0".repeat(64)),
            "reg.example:443/cache:new",
        ),
    ];
    for (from, to) in cases {
        let t = CacheOption::registry(from).with_tag("new");
        assert_eq!(t.reference(), Some(to), "{from}");
        t.check_parses();
    }

    // Without a ref there is nothing to tag.
    let s3 = CacheOption::parse("type=s3,bucket=b,region=r").unwrap();
    assert_eq!(s3.with_tag("x"), s3);
}

#[test]
fn with_tag_makes_valid_tags() {
    let o = CacheOption::registry("127.0.0.1:5055/cache");
    assert_eq!(
        o.with_tag("x86_64/foo-1.2+git.3").reference(),
        Some("127.0.0.1:5055/cache:x86_64-foo-1.2-git.3")
    );
    assert_eq!(
        o.with_tag(".hidden").reference(),
        Some("127.0.0.1:5055/cache:_.hidden")
    );
    assert_eq!(CacheOption::tag_for(""), "latest");
    let long = "p".repeat(300);
    let t = CacheOption::tag_for(&long);
    assert_eq!(t.len(), 128);
    assert_ne!(
        t,
        CacheOption::tag_for(&"p".repeat(301)),
        "a hash keeps them apart"
    );
    o.with_tag(&long).check_parses();
}

trait CheckParses {
    fn check_parses(&self);
}

impl CheckParses for CacheOption {
    fn check_parses(&self) {
        let again = CacheOption::parse(&self.to_string())
            .unwrap_or_else(|e| panic!("{self} does not parse: {e}"));
        assert_eq!(&again, self);
    }
}
