//! What a build keeps out of everything it writes (docs/build.md, "Secrets"):
//! - `--secret` values are served by the session and mounted into every step (never in the
//!   graph, so never in a layer or a cache key);
//! - `--env-file` values reach the steps' environment (and BuildKit's cache key, as any
//!   input does), but `.melange.yaml` and the records show their names only (the value is
//!   `***`); the record holds a digest of the values, so a changed value still rebuilds —
//!   keyed with the signing key when there is one ([`BuildSecrets::keyed`]), so that a
//!   published record cannot be used to test guesses of a value;
//! - both are masked in step output, logs and errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use melange2_apk::{SignatureAlgorithm, SigningKey};
use melange2_config::plan::{Plan, Step};
use melange2_secrets::{MASK, Redactor, Secret};
use sha2::{Digest, Sha256};

use crate::BuildError;

/// `--env-file` values at least this long are masked in step output; shorter ones (`1`,
/// `yes`, `/usr`) would mask ordinary words. Secrets are always masked.
pub const MIN_ENV_FILE_MASK: usize = 8;

/// The secrets of a run.
#[derive(Clone, Default)]
pub struct BuildSecrets {
    /// `--secret`s with their values.
    pub secrets: Vec<Secret>,
    /// `--env-file` values by name.
    env_file: BTreeMap<String, BTreeSet<String>>,
    /// The digest of the `--env-file` values the record shows.
    env_file_digest: String,
    /// Masks both in step output.
    pub redactor: Redactor,
}

/// Names only: no value of a secret or an `--env-file`.
impl std::fmt::Debug for BuildSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildSecrets")
            .field("secrets", &self.secrets)
            .field("env_file", &self.env_file.keys().collect::<Vec<_>>())
            .field("redactor", &self.redactor)
            .finish()
    }
}

impl BuildSecrets {
    /// Read the `--env-file`s (an unreadable file is an error naming it).
    pub fn new(secrets: &[Secret], env_files: &[PathBuf]) -> Result<Self, BuildError> {
        let pairs = melange2_config::env_file_values(env_files)
            .map_err(|e| BuildError::Input(e.to_string()))?;
        let mut redactor = Redactor::new();
        for s in secrets {
            redactor.add(s.value());
        }
        let mut env_file: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (k, v) in pairs {
            if v.len() >= MIN_ENV_FILE_MASK {
                redactor.add(v.as_bytes());
            }
            env_file.entry(k).or_default().insert(v);
        }
        let env_file_digest = format!("sha256:{}", hex::encode(env_file_hash(&env_file)));
        Ok(Self {
            secrets: secrets.to_vec(),
            env_file,
            env_file_digest,
            redactor,
        })
    }

    /// Key the record's digest of the `--env-file` values with the signing key: the digest is
    /// the SHA-256 of the key's (deterministic, PKCS#1 v1.5) signature of their SHA-256, so it
    /// stays the same for the same values and key, and nobody without the key can check a
    /// guess against it. Without a key, the plain SHA-256 stays.
    pub fn keyed(mut self, key: Option<&SigningKey>) -> Result<Self, BuildError> {
        if let Some(k) = key
            && !self.env_file.is_empty()
        {
            let sig = k
                .sign_digest(
                    SignatureAlgorithm::RsaSha256,
                    &env_file_hash(&self.env_file),
                )
                .map_err(|e| BuildError::Input(format!("keying the --env-file digest: {e}")))?;
            self.env_file_digest = format!("keyed-sha256:{}", hex::encode(Sha256::digest(sig)));
        }
        Ok(self)
    }

    /// The plan as packages and records show it: every variable that holds a value of an
    /// `--env-file` is `***` (a value the build file sets itself stays).
    pub fn public_plan(&self, plan: &Plan) -> Plan {
        let mut p = plan.clone();
        if self.env_file.is_empty() {
            return p;
        }
        self.mask(&mut p.environment.env);
        self.mask_steps(&mut p.pipeline);
        for sp in &mut p.subpackages {
            self.mask_steps(&mut sp.pipeline);
            if let Some(t) = &mut sp.test {
                self.mask(&mut t.environment.env);
                self.mask_steps(&mut t.pipeline);
            }
        }
        if let Some(t) = &mut p.test {
            self.mask(&mut t.environment.env);
            self.mask_steps(&mut t.pipeline);
        }
        p
    }

    fn mask(&self, env: &mut BTreeMap<String, String>) {
        for (k, v) in env.iter_mut() {
            if self.env_file.get(k).is_some_and(|vals| vals.contains(v)) {
                *v = MASK.to_string();
            }
        }
    }

    fn mask_steps(&self, steps: &mut [Step]) {
        for s in steps {
            self.mask(&mut s.env);
            self.mask_steps(&mut s.pipeline);
        }
    }

    /// Flags of the record: the `--env-file` names with a digest of their values, and the
    /// secrets' ids (their values never change the packages). Empty without either.
    pub fn flags(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        if !self.env_file.is_empty() {
            let names: Vec<&str> = self.env_file.keys().map(String::as_str).collect();
            f.insert(
                "env-file".to_string(),
                format!("{} {}", names.join(","), self.env_file_digest),
            );
        }
        if !self.secrets.is_empty() {
            let mut ids: Vec<String> = self
                .secrets
                .iter()
                .map(|s| match &s.as_env {
                    Some(e) => format!("{} as-env={e}", s.id),
                    None => s.id.clone(),
                })
                .collect();
            ids.sort();
            f.insert("secrets".to_string(), ids.join(","));
        }
        f
    }
}

/// SHA-256 over the `--env-file` names and values, each length-prefixed.
fn env_file_hash(env_file: &BTreeMap<String, BTreeSet<String>>) -> Vec<u8> {
    let mut h = Sha256::new();
    for (k, vals) in env_file {
        for v in vals {
            h.update(format!("{}={}\n", k.len(), k).as_bytes());
            h.update(format!("{}=", v.len()).as_bytes());
            h.update(v.as_bytes());
        }
    }
    h.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_values_are_masked_where_they_reach_and_kept_where_the_recipe_sets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let ef = dir.path().join("build.env");
        std::fs::write(&ef, "TOKEN=tok-1234567890\nMODE=fast\nSHORT=ab\n").unwrap();
        let s = BuildSecrets::new(&[], std::slice::from_ref(&ef)).unwrap();
        let recipe = dir.path().join("x.yaml");
        std::fs::write(
            &recipe,
            "package: {name: x, version: '1', epoch: 0}\n\
             environment:\n  environment:\n    MODE: from-the-recipe\n\
             pipeline:\n  - runs: echo hi\n    environment:\n      OTHER: x\n",
        )
        .unwrap();
        let plan = melange2_config::compile_file(&melange2_config::CompileRequest {
            file: recipe,
            arch: melange2_config::Arch::X86_64,
            pipeline_dirs: vec![],
            build_options: vec![],
            vars_file: None,
            env_files: vec![ef.clone()],
        })
        .unwrap();
        assert_eq!(plan.pipeline[0].env["TOKEN"], "tok-1234567890");
        let public = s.public_plan(&plan);
        assert_eq!(public.environment.env["TOKEN"], MASK);
        assert_eq!(public.environment.env["MODE"], "from-the-recipe");
        assert_eq!(public.pipeline[0].env["TOKEN"], MASK);
        assert_eq!(public.pipeline[0].env["OTHER"], "x");
        let debug = format!("{s:?}");
        assert!(
            debug.contains("TOKEN") && !debug.contains("tok-1234567890"),
            "{debug}"
        );
        let json = serde_json::to_string(&public).unwrap();
        assert!(!json.contains("tok-1234567890"), "{json}");
        let flags = s.flags();
        assert!(flags["env-file"].starts_with("MODE,SHORT,TOKEN sha256:"));
        assert!(!flags["env-file"].contains("tok-"));
        // long values are masked in output, short ones are not
        assert_eq!(s.redactor.redact_str("x tok-1234567890 ab"), "x *** ab");
        // another value, another digest
        std::fs::write(&ef, "TOKEN=tok-0000000000\nMODE=fast\nSHORT=ab\n").unwrap();
        let t = BuildSecrets::new(&[], &[ef]).unwrap();
        assert_ne!(t.flags()["env-file"], flags["env-file"]);
        // keyed with a signing key: stable for the same key and values, another key or value
        // gives another digest, and the plain digest is not in it
        let key = melange2_apk::generate_key(2048, "a.rsa").unwrap();
        let keyed = |s: &BuildSecrets, k: &SigningKey| {
            s.clone().keyed(Some(k)).unwrap().flags()["env-file"].clone()
        };
        let k1 = keyed(&s, &key);
        assert!(k1.starts_with("MODE,SHORT,TOKEN keyed-sha256:"), "{k1}");
        assert_eq!(k1, keyed(&s, &key));
        assert_ne!(k1, keyed(&t, &key));
        let other = melange2_apk::generate_key(2048, "b.rsa").unwrap();
        assert_ne!(k1, keyed(&s, &other));
        let plain = flags["env-file"].split_once(" sha256:").unwrap().1;
        assert!(!k1.contains(plain), "{k1}");
        assert_eq!(s.clone().keyed(None).unwrap().flags(), flags);
        let missing = BuildSecrets::new(&[], &[dir.path().join("nope.env")]).unwrap_err();
        assert!(missing.to_string().contains("nope.env"), "{missing}");
    }
}
