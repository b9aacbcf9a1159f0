//! Secrets end to end (docs/build.md, "Secrets"): `--secret` values reach every step as a file
//! and a variable and `--env-file` values reach the steps' environment, yet none of them is
//! found in any byte the build produces (packages and their decompressed contents, the index,
//! provenance, records, logs, the command's own output), even under `--debug` with a step that
//! echoes them. A secret's value is not part of BuildKit's cache key.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{SignedRepo, apks, daemon, differing, melange2, signed_repo, vertices};
use sha2::{Digest, Sha256};

/// A value nobody else has, so a step of an earlier run is never reused by accident and a
/// leak cannot be a coincidence.
fn nonce(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{t}", std::process::id())
}

fn sha256(s: &[u8]) -> String {
    hex::encode(Sha256::digest(s))
}

const RECIPE: &str = r#"
package: {name: sekrit, version: "1.0", epoch: 0, description: secrets}
environment:
  contents:
    packages: [busybox]
pipeline:
  - name: use the secrets
    runs: |
      echo "run NONCE"
      [ "$(stat -c '%a %u %g' /run/secrets/token)" = "400 1000 1000" ]
      [ "$(stat -c '%a %u %g' /run/secrets/key)" = "400 1000 1000" ]
      [ "$(cat /run/secrets/token)" = "$TOKEN" ]
      echo "the token is $TOKEN and the key is $(cat /run/secrets/key)"
      echo "the env-file token is $GIT_TOKEN"
      d=${{targets.destdir}}/usr/share/sekrit
      mkdir -p $d
      printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > $d/token.sha256
      sha256sum < /run/secrets/key | cut -d' ' -f1 > $d/key.sha256
      printf %s "$GIT_TOKEN" | sha256sum | cut -d' ' -f1 > $d/env-file.sha256
"#;

struct Case {
    dir: tempfile::TempDir,
    repo: SignedRepo,
    recipe: PathBuf,
    out: PathBuf,
    env_file_value: String,
}

fn case(steps: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let repo = signed_repo(dir.path(), &[]);
    let recipe = dir.path().join("sekrit.yaml");
    std::fs::write(&recipe, steps.replace("NONCE", &nonce("step"))).unwrap();
    let env_file_value = nonce("ghp-envfile");
    std::fs::write(
        dir.path().join("build.env"),
        format!("GIT_TOKEN={env_file_value}\nMODE=fast\n"),
    )
    .unwrap();
    Case {
        out: dir.path().join("out"),
        dir,
        repo,
        recipe,
        env_file_value,
    }
}

/// `melange2 build` with a token from the environment (also as `$TOKEN`) and a multi-line
/// key file, and the env-file.
fn build(c: &Case, token: &str, key: &str, extra: &[&str]) -> Output {
    let key_file = c.dir.path().join("key.pem");
    std::fs::write(&key_file, key).unwrap();
    melange2()
        .arg("build")
        .arg(&c.recipe)
        .args(["--arch", "x86_64", "--out-dir"])
        .arg(&c.out)
        .arg("-r")
        .arg(&c.repo.repo)
        .arg("-k")
        .arg(&c.repo.pubkey)
        .arg("--signing-key")
        .arg(&c.repo.signing_key)
        .arg("--apk-cache-dir")
        .arg(c.dir.path().join("apk-cache"))
        .args(["--env-file", "build.env"])
        .args(["--secret", "id=token,env=SEKRIT_TOKEN_SRC,as-env=TOKEN"])
        .arg("--secret")
        .arg(format!("id=key,src={}", key_file.display()))
        .args(["--buildkit-addr", &daemon()])
        .args(extra)
        .env("SEKRIT_TOKEN_SRC", token)
        .current_dir(c.dir.path())
        .output()
        .unwrap()
}

fn key_pem(tag: &str) -> String {
    format!(
        "-----BEGIN TEST KEY-----\n{}\n{}\n-----END TEST KEY-----\n",
        nonce(&format!("{tag}-line-one")),
        nonce(&format!("{tag}-line-two"))
    )
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every byte of a file, and for gzip files (`.apk`, `.tar.gz`) also every decompressed
/// member.
fn all_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    let mut all = raw.clone();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut d = flate2::read::MultiGzDecoder::new(&raw[..]);
        let mut plain = Vec::new();
        d.read_to_end(&mut plain)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!plain.is_empty(), "{}", path.display());
        all.extend(plain);
    }
    all
}

/// Fails naming every file under `dir` (recursively: packages, index, provenance, records,
/// logs) and every output that holds one of `values`; returns how many files were searched.
fn assert_nowhere(dir: &Path, outputs: &[&Output], values: &[&str]) -> usize {
    let mut found = Vec::new();
    let mut files = 0;
    for e in walkdir(dir) {
        let bytes = all_bytes(&e);
        files += 1;
        for v in values {
            if contains(&bytes, v) {
                found.push(format!("{v:?} in {}", e.display()));
            }
        }
    }
    for (i, o) in outputs.iter().enumerate() {
        for v in values {
            if contains(&o.stdout, v) || contains(&o.stderr, v) {
                found.push(format!("{v:?} in the output of build {i}"));
            }
        }
    }
    assert!(found.is_empty(), "leaked: {found:#?}");
    files
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "melange2 build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn key_lines(key: &str) -> Vec<&str> {
    key.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn secrets_reach_the_steps_and_no_produced_byte() {
    let c = case(RECIPE);
    let token = nonce("tok");
    let key = key_pem("k1");
    let first = build(
        &c,
        &token,
        &key,
        &[
            "--debug",
            "--progress",
            "plain",
            "--generate-provenance",
            "--log-level",
            "trace",
        ],
    );
    ok(&first);

    // The step had both secrets and the env-file value: their digests are in the package.
    let apk = c.out.join("x86_64/sekrit-1.0-r0.apk");
    let tree = common::extract(&apk, c.dir.path());
    let proof = |f: &str| {
        std::fs::read_to_string(tree.join("usr/share/sekrit").join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(proof("token.sha256"), sha256(token.as_bytes()));
    assert_eq!(proof("key.sha256"), sha256(key.as_bytes()));
    assert_eq!(
        proof("env-file.sha256"),
        sha256(c.env_file_value.as_bytes())
    );
    // The step echoed them under --debug: the output shows *** instead.
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(
        err.contains("the token is *** and the key is ***"),
        "no masked echo in the output:\n{err}"
    );
    assert!(err.contains("the env-file token is ***"), "{err}");

    // .melange.yaml names the env-file variable, without its value; so does the record.
    let apk_text = String::from_utf8_lossy(&all_bytes(&apk)).into_owned();
    assert!(
        apk_text.contains("\"GIT_TOKEN\": \"***\""),
        "the package's .melange.yaml does not name GIT_TOKEN with a masked value"
    );
    let record =
        std::fs::read_to_string(c.out.join("x86_64/.melange2-records/sekrit.json")).unwrap();
    // The record's digest of the env-file values is keyed with the signing key: the plain
    // SHA-256 (which would let anyone test guesses of the value) is nowhere.
    assert!(record.contains("GIT_TOKEN,MODE keyed-sha256:"), "{record}");
    assert!(record.contains("key,token as-env=TOKEN"), "{record}");
    assert!(c.out.join("logs").is_dir(), "no logs written");
    assert!(
        c.out.join("x86_64/sekrit-1.0-r0.attest.tar.gz").exists(),
        "no provenance"
    );

    let plain = plain_env_file_digest(&c.env_file_value);
    let mut values = vec![
        token.as_str(),
        key.as_str(),
        c.env_file_value.as_str(),
        plain.as_str(),
    ];
    values.extend(key_lines(&key));
    let files = assert_nowhere(&c.out, &[&first], &values);
    assert!(files >= 5, "only {files} files searched");

    // Another value of each secret: every step comes from BuildKit's cache (the value is not
    // in the cache key) and every package and the index are byte-identical.
    let before = apks(&c.out);
    let token2 = nonce("tok2");
    let key2 = key_pem("k2");
    let second = build(
        &c,
        &token2,
        &key2,
        &[
            "--force",
            "--debug",
            "--progress",
            "rawjson",
            "--generate-provenance",
        ],
    );
    ok(&second);
    let v = vertices(&second);
    assert_eq!(
        v.get("use the secrets"),
        Some(&true),
        "the step ran again: {v:?}"
    );
    assert_eq!(differing(&before, &apks(&c.out)), Vec::<String>::new());
    let mut values2 = vec![token2.as_str(), key2.as_str()];
    values2.extend(key_lines(&key2));
    values2.extend(&values);
    assert_nowhere(&c.out, &[&first, &second], &values2);
}

#[test]
fn a_failing_step_that_prints_secrets_shows_them_masked() {
    let c = case(
        r#"
package: {name: sekrit, version: "1.0", epoch: 0, description: secrets}
environment:
  contents:
    packages: [busybox]
pipeline:
  - name: leak and fail
    runs: |
      echo "run NONCE"
      echo "token=$TOKEN"
      cat /run/secrets/key
      printf 'env-file=%s\n' "$GIT_TOKEN"
      exit 3
"#,
    );
    let token = nonce("tok");
    let key = key_pem("k");
    let o = build(&c, &token, &key, &["--debug", "--progress", "plain"]);
    assert!(!o.status.success(), "the build should fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("token=***"), "{err}");
    assert!(err.contains("env-file=***"), "{err}");
    let mut values = vec![token.as_str(), key.as_str(), c.env_file_value.as_str()];
    values.extend(key_lines(&key));
    assert_nowhere(&c.out, &[&o], &values);
}

#[test]
fn bad_secret_flags_name_the_problem_and_build_nothing() {
    let c = case(RECIPE);
    for (flag, want) in [
        ("id=token", "src=FILE or env=VAR is missing"),
        ("id=x,src=/nonexistent/secret", "/nonexistent/secret"),
        (
            "id=x,env=SURELY_UNSET_VARIABLE_42",
            "SURELY_UNSET_VARIABLE_42",
        ),
        ("id=x,src=/dev/zero", "larger than 500 KiB"),
    ] {
        let o = melange2()
            .arg("build")
            .arg(&c.recipe)
            .arg("--out-dir")
            .arg(&c.out)
            .args(["--secret", flag])
            .args(["--buildkit-addr", &daemon()])
            .current_dir(c.dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{flag}: accepted");
        assert!(err.contains(want), "{flag}: {err}");
        assert!(!c.out.exists(), "{flag}: wrote the out-dir");
    }
}

/// SHA-256 of the case's env-file as the record would hash it unkeyed: every name and value,
/// length-prefixed, in name order.
fn plain_env_file_digest(git_token: &str) -> String {
    let mut h = Sha256::new();
    for (k, v) in [("GIT_TOKEN", git_token), ("MODE", "fast")] {
        h.update(format!("{}={k}\n{}={v}", k.len(), v.len()).as_bytes());
    }
    hex::encode(h.finalize())
}

/// The summary line of a run: "N built, M up to date, …".
fn summary(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .rfind(|l| l.contains(" built, "))
        .unwrap_or_default()
        .to_string()
}

fn env_file_flag(out: &Path) -> String {
    let record = std::fs::read(out.join("x86_64/.melange2-records/sekrit.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&record).unwrap();
    v["inputs"]["flags"]["env-file"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn another_secret_value_is_up_to_date_but_another_env_file_value_rebuilds() {
    let c = case(RECIPE);
    let key = key_pem("k");
    let (token1, token2) = (nonce("tok1"), nonce("tok2"));
    ok(&build(&c, &token1, &key, &[]));
    let before = common::snapshot(&c.out);
    let flag1 = env_file_flag(&c.out);

    // Only the secret changed: the record names secrets, not values, so nothing is solved
    // and the out-dir is untouched.
    let same = build(&c, &token2, &key, &[]);
    ok(&same);
    assert!(
        summary(&same).starts_with("0 built, 1 up to date"),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    assert!(before == common::snapshot(&c.out), "the out-dir changed");

    // The env-file value changed: the record's digest differs, so the recipe is out of date;
    // the value is in the step's environment, so the step runs again (not from the cache)
    // and sees the new value.
    let old_value = c.env_file_value.clone();
    let new_value = nonce("ghp-envfile-2");
    std::fs::write(
        c.dir.path().join("build.env"),
        format!("GIT_TOKEN={new_value}\nMODE=fast\n"),
    )
    .unwrap();
    let changed = build(&c, &token2, &key, &["--progress", "rawjson"]);
    ok(&changed);
    let v = vertices(&changed);
    assert_eq!(
        v.get("use the secrets"),
        Some(&false),
        "the step was cached: {v:?}"
    );
    let flag2 = env_file_flag(&c.out);
    assert!(flag2.starts_with("GIT_TOKEN,MODE keyed-sha256:"), "{flag2}");
    assert_ne!(flag1, flag2, "the record's env-file digest did not change");
    let tree = common::extract(&c.out.join("x86_64/sekrit-1.0-r0.apk"), c.dir.path());
    let seen = std::fs::read_to_string(tree.join("usr/share/sekrit/env-file.sha256")).unwrap();
    assert_eq!(seen.trim(), sha256(new_value.as_bytes()));
    let mut values = vec![
        token1.as_str(),
        token2.as_str(),
        key.as_str(),
        old_value.as_str(),
        new_value.as_str(),
    ];
    values.extend(key_lines(&key));
    assert_nowhere(&c.out, &[&same, &changed], &values);
}

#[test]
fn melange2_test_masks_env_file_values_in_step_output() {
    let c = case(
        r#"
package: {name: sekrit, version: "1.0", epoch: 0, description: secrets}
environment:
  contents:
    packages: [busybox]
pipeline:
  - runs: mkdir -p ${{targets.destdir}}/usr/share/sekrit
test:
  environment:
    contents:
      packages: [busybox]
  pipeline:
    - name: print the env-file value
      runs: |
        echo "run NONCE"
        echo "test sees $GIT_TOKEN"
"#,
    );
    let key = key_pem("k");
    ok(&build(&c, &nonce("tok"), &key, &[]));
    let mut signing_pub = c.repo.signing_key.clone().into_os_string();
    signing_pub.push(".pub");
    let o = melange2()
        .arg("test")
        .arg(&c.recipe)
        .args(["--arch", "x86_64", "--debug", "--progress", "plain"])
        .arg("-r")
        .arg(&c.out)
        .arg("-r")
        .arg(&c.repo.repo)
        .arg("-k")
        .arg(&c.repo.pubkey)
        .arg("-k")
        .arg(&signing_pub)
        .arg("--apk-cache-dir")
        .arg(c.dir.path().join("apk-cache"))
        .args(["--env-file", "build.env"])
        .args(["--buildkit-addr", &daemon()])
        .current_dir(c.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "melange2 test failed:\n{err}");
    assert!(err.contains("test sees ***"), "no masked echo:\n{err}");
    assert_nowhere(&c.out, &[&o], &[c.env_file_value.as_str()]);
}

#[test]
fn a_value_printed_in_two_pieces_is_masked_and_a_mere_prefix_is_shown() {
    let c = case(
        r#"
package: {name: sekrit, version: "1.0", epoch: 0, description: secrets}
environment:
  contents:
    packages: [busybox]
pipeline:
  - name: print in pieces
    runs: |
      echo "run NONCE"
      printf 'split:%s' "$(head -c 10 /run/secrets/token)"
      sleep 1
      printf '%s:done\n' "$(tail -c +11 /run/secrets/token)"
      sleep 1
      printf 'prefix:%s' "$(head -c 6 /run/secrets/token)"
      mkdir -p ${{targets.destdir}}/usr/share/sekrit
"#,
    );
    let token = nonce("tok-pieces");
    let o = build(&c, &token, &key_pem("k"), &["--progress", "plain"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    // BuildKit sends the two pieces in two log messages (a second apart): still masked
    assert!(err.contains("split:***:done"), "{err}");
    // the step ended on the value's first bytes only: they are shown, not held back forever
    assert!(err.contains(&format!("prefix:{}", &token[..6])), "{err}");
    assert_nowhere(&c.out, &[&o], &[token.as_str()]);
}
