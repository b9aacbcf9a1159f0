//! Build secrets and their redaction (see `docs/build.md`, "Secrets").
//!
//! Contract:
//! - [`SecretSpec`] parses one `--secret` flag as docker buildx spells it
//!   (`id=NAME,src=FILE` or `id=NAME,env=VAR`, `source=` and `type=file|env` accepted), plus
//!   melange2's `as-env=VAR`, which also exposes the secret to build steps as that variable.
//!   Every mistake is an error naming the flag and the key.
//! - [`load`] reads the values (an error names the file or the variable, and the secret); a
//!   [`Secret`] never prints its value (`Debug` shows `***`).
//! - [`Redactor`] replaces every occurrence of the values it holds by [`MASK`]; a
//!   [`StreamRedactor`] does the same on a stream of chunks, holding back a chunk's tail that
//!   may be the start of a value split across two chunks, so a value is masked wherever the
//!   chunks break.
//!
//! This crate knows nothing about BuildKit or melange: the build decides which values to mask
//! and where secrets are mounted.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// What a masked value is replaced by.
pub const MASK: &str = "***";

/// Where build steps find secret `ID`: `SECRETS_DIR/ID`.
pub const SECRETS_DIR: &str = "/run/secrets";

/// The largest value a secret can have: BuildKit's limit (`MaxSecretSize`, 500 KiB). A larger
/// value is refused when it is read, before the build starts, and a source that never ends
/// (`/dev/zero`) is read no further than this.
pub const MAX_VALUE: usize = 500 * 1024;

/// Lines of a multi-line value at least this long are masked on their own too (a shell
/// trace or a tool may print one line of a key file).
const MIN_LINE: usize = 8;

/// Errors of `--secret` flags and their values.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The flag is malformed.
    #[error("--secret {spec:?}: {message}")]
    Spec {
        /// The flag's value as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// The secret's file cannot be read.
    #[error("secret {id:?}: cannot read {}: {source}", path.display())]
    File {
        /// The secret.
        id: String,
        /// Its file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The secret's environment variable is not set.
    #[error("secret {id:?}: environment variable {var} is not set")]
    Env {
        /// The secret.
        id: String,
        /// The variable.
        var: String,
    },
    /// The value is larger than [`MAX_VALUE`].
    #[error("secret {id:?}: the value from {from} is larger than {} KiB, BuildKit's limit for a secret", MAX_VALUE / 1024)]
    TooBig {
        /// The secret.
        id: String,
        /// Its file or variable.
        from: String,
    },
    /// Two flags use the same id or the same `as-env` variable.
    #[error("--secret: {what} {name:?} is given twice")]
    Duplicate {
        /// `id` or `as-env`.
        what: &'static str,
        /// The repeated name.
        name: String,
    },
}

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on this machine.
    File(PathBuf),
    /// An environment variable of the melange2 process.
    Env(String),
}

/// One `--secret` flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    /// The secret's id (its file name under [`SECRETS_DIR`]).
    pub id: String,
    /// Where its value comes from.
    pub source: SecretSource,
    /// Also expose it to steps as this environment variable.
    pub as_env: Option<String>,
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl FromStr for SecretSpec {
    type Err = SecretError;

    fn from_str(spec: &str) -> Result<Self, SecretError> {
        let bad = |message: String| SecretError::Spec {
            spec: spec.to_string(),
            message,
        };
        let (mut id, mut src, mut env, mut kind, mut as_env) = (None, None, None, None, None);
        for field in spec.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| bad(format!("{field:?} is not KEY=VALUE")))?;
            let slot = match k.trim() {
                "id" => &mut id,
                "src" | "source" => &mut src,
                "env" => &mut env,
                "type" => &mut kind,
                "as-env" => &mut as_env,
                other => {
                    return Err(bad(format!(
                        "unknown key {other:?} (expected id, src, env, type, as-env)"
                    )));
                }
            };
            if slot.replace(v.to_string()).is_some() {
                return Err(bad(format!("{k} is given twice")));
            }
        }
        let id = id.ok_or_else(|| bad("id=NAME is missing".into()))?;
        if !is_id(&id) {
            return Err(bad(format!(
                "id {id:?} must be letters, digits, '_', '-' or '.' (it names a file)"
            )));
        }
        let source = match (kind.as_deref(), src, env) {
            (_, Some(_), Some(_)) => return Err(bad("give src=FILE or env=VAR, not both".into())),
            (None | Some("file"), Some(f), None) if !f.is_empty() => {
                SecretSource::File(PathBuf::from(f))
            }
            (None | Some("env"), None, Some(v)) if is_env_name(&v) => SecretSource::Env(v),
            (Some("env"), None, None) if is_env_name(&id) => SecretSource::Env(id.clone()),
            (Some(t), _, _) if t != "file" && t != "env" => {
                return Err(bad(format!("type {t:?} must be file or env")));
            }
            (_, None, Some(v)) if !is_env_name(&v) => {
                return Err(bad(format!("env {v:?} is not a variable name")));
            }
            (Some(t), _, _) => {
                return Err(bad(format!(
                    "type={t} does not match the source given (src=FILE or env=VAR)"
                )));
            }
            _ => return Err(bad("src=FILE or env=VAR is missing".into())),
        };
        if let Some(e) = &as_env
            && !is_env_name(e)
        {
            return Err(bad(format!("as-env {e:?} is not a variable name")));
        }
        Ok(SecretSpec { id, source, as_env })
    }
}

/// A secret with its value. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// Its id.
    pub id: String,
    /// The environment variable steps also get it in, if any.
    pub as_env: Option<String>,
    value: Vec<u8>,
}

impl Secret {
    /// A secret with a value given directly.
    pub fn new(id: impl Into<String>, as_env: Option<String>, value: Vec<u8>) -> Self {
        Secret {
            id: id.into(),
            as_env,
            value,
        }
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("id", &self.id)
            .field("as_env", &self.as_env)
            .field("value", &MASK)
            .finish()
    }
}

impl SecretSpec {
    /// Read the value.
    pub fn load(&self) -> Result<Secret, SecretError> {
        let (value, from) = match &self.source {
            SecretSource::File(p) => (self.read_file(p)?, p.display().to_string()),
            SecretSource::Env(v) => match std::env::var_os(v) {
                Some(val) => (
                    std::os::unix::ffi::OsStringExt::into_vec(val),
                    format!("environment variable {v}"),
                ),
                None => {
                    return Err(SecretError::Env {
                        id: self.id.clone(),
                        var: v.clone(),
                    });
                }
            },
        };
        if value.len() > MAX_VALUE {
            return Err(SecretError::TooBig {
                id: self.id.clone(),
                from,
            });
        }
        Ok(Secret::new(self.id.clone(), self.as_env.clone(), value))
    }

    /// At most one byte more than [`MAX_VALUE`] of the file.
    fn read_file(&self, path: &std::path::Path) -> Result<Vec<u8>, SecretError> {
        use std::io::Read;
        let err = |source| SecretError::File {
            id: self.id.clone(),
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(err)?;
        let mut value = Vec::new();
        f.take(MAX_VALUE as u64 + 1)
            .read_to_end(&mut value)
            .map_err(err)?;
        Ok(value)
    }
}

/// Load every secret; ids and `as-env` variables must be unique.
pub fn load(specs: &[SecretSpec]) -> Result<Vec<Secret>, SecretError> {
    let (mut ids, mut envs) = (BTreeSet::new(), BTreeSet::new());
    for s in specs {
        if !ids.insert(s.id.as_str()) {
            return Err(SecretError::Duplicate {
                what: "id",
                name: s.id.clone(),
            });
        }
        if let Some(e) = &s.as_env
            && !envs.insert(e.as_str())
        {
            return Err(SecretError::Duplicate {
                what: "as-env",
                name: e.clone(),
            });
        }
    }
    specs.iter().map(SecretSpec::load).collect()
}

/// Masks values in text. `Debug` shows only how many values it holds.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value containing another is masked whole.
    patterns: Vec<Vec<u8>>,
    first: Vec<bool>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.patterns.len())
    }
}

impl Redactor {
    /// A redactor masking nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mask `value` (empty values are ignored); the lines of a multi-line value that are at
    /// least 8 bytes long are masked on their own too.
    pub fn add(&mut self, value: &[u8]) {
        let mut add_one = |p: &[u8]| {
            if !p.is_empty() && !self.patterns.iter().any(|q| q == p) {
                self.patterns.push(p.to_vec());
            }
        };
        add_one(value);
        let trimmed = value.strip_suffix(b"\n").unwrap_or(value);
        add_one(trimmed);
        if trimmed.contains(&b'\n') {
            for line in trimmed.split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() >= MIN_LINE {
                    add_one(line);
                }
            }
        }
        self.patterns
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        self.first = vec![false; 256];
        for p in &self.patterns {
            self.first[usize::from(p[0])] = true;
        }
    }

    /// Nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Mask every value in `data`.
    pub fn redact(&self, data: &[u8]) -> Vec<u8> {
        self.scan(data, false).0
    }

    /// Mask every value in `s`.
    pub fn redact_str(&self, s: &str) -> String {
        if self.is_empty() {
            return s.to_string();
        }
        String::from_utf8_lossy(&self.redact(s.as_bytes())).into_owned()
    }

    /// Mask `data`; with `hold`, stop at a tail that is the start of a value and return
    /// where it begins.
    fn scan(&self, data: &[u8], hold: bool) -> (Vec<u8>, usize) {
        if self.is_empty() {
            return (data.to_vec(), data.len());
        }
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        'outer: while i < data.len() {
            if self.first[usize::from(data[i])] {
                let rest = &data[i..];
                for p in &self.patterns {
                    if rest.starts_with(p) {
                        out.extend_from_slice(MASK.as_bytes());
                        i += p.len();
                        continue 'outer;
                    }
                }
                if hold && self.patterns.iter().any(|p| p.starts_with(rest)) {
                    return (out, i);
                }
            }
            out.push(data[i]);
            i += 1;
        }
        (out, data.len())
    }
}

/// Masks values in a stream of chunks.
#[derive(Clone, Debug, Default)]
pub struct StreamRedactor {
    held: Vec<u8>,
}

impl StreamRedactor {
    /// Mask the next chunk: what can be shown now. A tail that may continue as a value in the
    /// next chunk is kept until then (or [`StreamRedactor::flush`]).
    pub fn feed(&mut self, r: &Redactor, chunk: &[u8]) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        let (out, cut) = r.scan(&data, true);
        self.held = data[cut..].to_vec();
        out
    }

    /// What is held back (the stream ended; it is not a whole value).
    pub fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// Whether something is held back.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> Result<SecretSpec, String> {
        s.parse::<SecretSpec>().map_err(|e| e.to_string())
    }

    #[test]
    fn specs_as_buildx_spells_them() {
        assert_eq!(
            spec("id=tok,src=/a/b").unwrap(),
            SecretSpec {
                id: "tok".into(),
                source: SecretSource::File("/a/b".into()),
                as_env: None
            }
        );
        assert_eq!(
            spec("type=env,id=tok,env=MY_TOKEN,as-env=TOKEN").unwrap(),
            SecretSpec {
                id: "tok".into(),
                source: SecretSource::Env("MY_TOKEN".into()),
                as_env: Some("TOKEN".into())
            }
        );
        assert_eq!(
            spec("id=GH_TOKEN,type=env").unwrap().source,
            SecretSource::Env("GH_TOKEN".into())
        );
        assert_eq!(
            spec("id=k,source=f").unwrap().source,
            SecretSource::File("f".into())
        );
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (s, want) in [
            ("src=f", "id=NAME is missing"),
            ("id=a/b,src=f", "names a file"),
            ("id=..,src=f", "names a file"),
            ("id=a", "src=FILE or env=VAR is missing"),
            ("id=a,src=f,env=V", "not both"),
            ("id=a,src=f,mode=0400", "unknown key \"mode\""),
            ("id=a,src=f,as-env=1X", "as-env \"1X\""),
            ("id=a,env=A-B", "env \"A-B\""),
            ("id=a,src=f,id=b", "id is given twice"),
            ("id=a,type=ssh,src=f", "type \"ssh\""),
            ("id=a,type=env,src=f", "does not match"),
            ("id=a,src", "not KEY=VALUE"),
        ] {
            let e = spec(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
            assert!(e.contains(s), "{s}: {e}");
        }
    }

    #[test]
    fn loading_names_the_file_or_variable_and_refuses_duplicates() {
        let dir = std::env::temp_dir().join(format!("melange2-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("tok");
        std::fs::write(&f, b"v4lue\n").unwrap();
        let s = spec(&format!("id=tok,src={}", f.display()))
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(s.value(), b"v4lue\n");
        assert!(!format!("{s:?}").contains("v4lue"));
        let missing = spec("id=tok,src=/nonexistent/x")
            .unwrap()
            .load()
            .unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/x"), "{missing}");
        let unset = spec("id=tok,env=MELANGE2_TEST_SURELY_UNSET")
            .unwrap()
            .load()
            .unwrap_err();
        assert!(
            unset.to_string().contains("MELANGE2_TEST_SURELY_UNSET"),
            "{unset}"
        );
        let dir_as_src = spec(&format!("id=d,src={}", dir.display()))
            .unwrap()
            .load()
            .unwrap_err();
        assert!(
            dir_as_src.to_string().contains(&dir.display().to_string()),
            "{dir_as_src}"
        );
        let twice = [spec("id=a,src=f").unwrap(), spec("id=a,src=g").unwrap()];
        assert!(load(&twice).unwrap_err().to_string().contains("\"a\""));
        let env_twice = [
            spec("id=a,src=f,as-env=T").unwrap(),
            spec("id=b,src=g,as-env=T").unwrap(),
        ];
        assert!(load(&env_twice).unwrap_err().to_string().contains("as-env"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn values_larger_than_buildkit_takes_are_refused_without_reading_them_whole() {
        // an endless source stops at the limit
        let zero = spec("id=z,src=/dev/zero").unwrap().load().unwrap_err();
        let msg = zero.to_string();
        assert!(msg.contains("\"z\"") && msg.contains("/dev/zero"), "{msg}");
        assert!(msg.contains("500 KiB"), "{msg}");
        let dir = std::env::temp_dir().join(format!("melange2-secrets-max-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let at_limit = dir.join("at-limit");
        std::fs::write(&at_limit, vec![b'x'; MAX_VALUE]).unwrap();
        let s = spec(&format!("id=a,src={}", at_limit.display()))
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(s.value().len(), MAX_VALUE);
        let over = dir.join("over");
        std::fs::write(&over, vec![b'x'; MAX_VALUE + 1]).unwrap();
        let e = spec(&format!("id=o,src={}", over.display()))
            .unwrap()
            .load()
            .unwrap_err();
        assert!(matches!(e, SecretError::TooBig { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redacts_every_occurrence_longest_first() {
        let mut r = Redactor::new();
        r.add(b"abc");
        r.add(b"abcdef");
        assert_eq!(r.redact_str("xabcdefyabcz abab"), "x***y***z abab");
        assert_eq!(Redactor::new().redact_str("abc"), "abc");
        assert!(!format!("{r:?}").contains("abc"));
    }

    #[test]
    fn multi_line_values_and_their_lines() {
        let mut r = Redactor::new();
        r.add(b"-----BEGIN KEY-----\nAAAABBBBCCCC\nshort\n");
        assert_eq!(
            r.redact_str("key: -----BEGIN KEY-----\nAAAABBBBCCCC\nshort\n."),
            "key: ***."
        );
        assert_eq!(r.redact_str("+ echo AAAABBBBCCCC"), "+ echo ***");
        assert_eq!(r.redact_str("short"), "short");
    }

    #[test]
    fn a_value_split_across_chunks_is_masked() {
        let mut r = Redactor::new();
        r.add(b"s3cr3t-token");
        let value = b"log: s3cr3t-token, again s3cr3t-token!".to_vec();
        // every way to cut the stream in two and in three
        for a in 0..=value.len() {
            for b in a..=value.len() {
                let mut s = StreamRedactor::default();
                let mut out = s.feed(&r, &value[..a]);
                out.extend(s.feed(&r, &value[a..b]));
                out.extend(s.feed(&r, &value[b..]));
                out.extend(s.flush());
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    "log: ***, again ***!",
                    "cut at {a}, {b}"
                );
            }
        }
        // a tail that is only the start of a value is shown at the end
        let mut s = StreamRedactor::default();
        assert_eq!(s.feed(&r, b"x s3cr"), b"x ");
        assert!(s.is_holding());
        assert_eq!(s.flush(), b"s3cr");
    }
}
