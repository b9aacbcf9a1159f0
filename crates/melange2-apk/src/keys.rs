//! RSA keys: generation, PEM loading/saving, keyrings, PKCS#1 v1.5 signatures.
//!
//! Private keys are PKCS#1 PEM (`RSA PRIVATE KEY`, also PKCS#8 `PRIVATE KEY`
//! on input); public keys are PKIX PEM (`PUBLIC KEY`, also PKCS#1
//! `RSA PUBLIC KEY` on input). A key's identity in APK signatures is its
//! public key *file name* (`melange.rsa.pub`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey, PublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::{Error, Result};

/// Default key size for [`generate_key`].
pub const DEFAULT_KEY_BITS: usize = 4096;
/// Smallest key size accepted by [`generate_key`].
pub const MIN_KEY_BITS: usize = 2048;

/// Signature digest algorithm, as named in `.SIGN.<ALG>.<key>` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignatureAlgorithm {
    /// `RSA`: PKCS#1 v1.5 over SHA-1 (abuild, old apk-tools).
    RsaSha1,
    /// `RSA256`: PKCS#1 v1.5 over SHA-256 (melange default).
    RsaSha256,
    /// `RSA512`: PKCS#1 v1.5 over SHA-512 (apk-tools only; verify only).
    RsaSha512,
}

impl SignatureAlgorithm {
    /// Name used in signature entry names.
    pub fn tag(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha1 => "RSA",
            SignatureAlgorithm::RsaSha256 => "RSA256",
            SignatureAlgorithm::RsaSha512 => "RSA512",
        }
    }

    /// Parse a tag (`RSA`, `RSA256`, `RSA512`); `None` for unknown/DSA.
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "RSA" => Some(SignatureAlgorithm::RsaSha1),
            "RSA256" => Some(SignatureAlgorithm::RsaSha256),
            "RSA512" => Some(SignatureAlgorithm::RsaSha512),
            _ => None,
        }
    }

    /// Digest `data` with this algorithm.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            SignatureAlgorithm::RsaSha1 => Sha1::digest(data).to_vec(),
            SignatureAlgorithm::RsaSha256 => Sha256::digest(data).to_vec(),
            SignatureAlgorithm::RsaSha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn scheme(self) -> Pkcs1v15Sign {
        match self {
            SignatureAlgorithm::RsaSha1 => Pkcs1v15Sign::new::<Sha1>(),
            SignatureAlgorithm::RsaSha256 => Pkcs1v15Sign::new::<Sha256>(),
            SignatureAlgorithm::RsaSha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }
}

/// Digests of one byte string for every supported algorithm (computed
/// incrementally while reading a member).
#[derive(Debug, Clone, Default)]
pub struct MultiDigest {
    sha1: Sha1,
    sha256: Sha256,
    sha512: Sha512,
}

impl MultiDigest {
    /// Start empty.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        self.sha256.update(data);
        self.sha512.update(data);
    }
    /// Finish into [`Digests`].
    pub fn finish(self) -> Digests {
        Digests {
            sha1: self.sha1.finalize().into(),
            sha256: self.sha256.finalize().into(),
            sha512: self.sha512.finalize().to_vec(),
        }
    }
}

/// Finished digests of a byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// SHA-1.
    pub sha1: [u8; 20],
    /// SHA-256.
    pub sha256: [u8; 32],
    /// SHA-512.
    pub sha512: Vec<u8>,
}

impl Digests {
    /// Digest for an algorithm.
    pub fn for_algorithm(&self, alg: SignatureAlgorithm) -> &[u8] {
        match alg {
            SignatureAlgorithm::RsaSha1 => &self.sha1,
            SignatureAlgorithm::RsaSha256 => &self.sha256,
            SignatureAlgorithm::RsaSha512 => &self.sha512,
        }
    }
}

/// A private key plus the name it signs under.
#[derive(Clone)]
pub struct SigningKey {
    key: PrivateKey,
    /// Public key file name used in signature entries (`<basename>.pub`).
    name: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("bits", &(self.key.size() * 8))
            .finish_non_exhaustive()
    }
}

fn parse_private_pem(pem: &str, ctx: &str) -> Result<PrivateKey> {
    if pem.contains("Proc-Type: 4,ENCRYPTED") || pem.contains("ENCRYPTED PRIVATE KEY") {
        return Err(Error::key(
            ctx,
            "encrypted private keys are not supported; decrypt it first (openssl rsa -in KEY -out KEY.plain)",
        ));
    }
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        PrivateKey::from_pkcs1_pem(pem)
            .map_err(|e| Error::key(ctx, format!("invalid PKCS#1 RSA private key: {e}")))
    } else if pem.contains("BEGIN PRIVATE KEY") {
        PrivateKey::from_pkcs8_pem(pem).map_err(|e| {
            Error::key(
                ctx,
                format!("invalid PKCS#8 private key (must be RSA): {e}"),
            )
        })
    } else {
        Err(Error::key(ctx, "not a PEM RSA private key"))
    }
}

fn parse_public_pem(pem: &str, ctx: &str) -> Result<PublicKey> {
    if pem.contains("BEGIN RSA PUBLIC KEY") {
        PublicKey::from_pkcs1_pem(pem)
            .map_err(|e| Error::key(ctx, format!("invalid PKCS#1 RSA public key: {e}")))
    } else if pem.contains("BEGIN PUBLIC KEY") {
        PublicKey::from_public_key_pem(pem)
            .map_err(|e| Error::key(ctx, format!("invalid public key (must be RSA): {e}")))
    } else {
        Err(Error::key(ctx, "not a PEM RSA public key"))
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::key(
                path.display().to_string(),
                "key path has no UTF-8 file name",
            )
        })
}

impl SigningKey {
    /// Wrap a key; `name` is the private key's file name (e.g. `melange.rsa`),
    /// signatures are then named `.SIGN.<ALG>.melange.rsa.pub`.
    pub fn new(key: PrivateKey, private_key_file_name: impl Into<String>) -> Self {
        SigningKey {
            key,
            name: format!("{}.pub", private_key_file_name.into()),
        }
    }

    /// Parse a PEM private key.
    ///
    /// # Errors
    /// [`Error::Key`] for unreadable, encrypted or non-RSA keys.
    pub fn from_pem(pem: &str, private_key_file_name: &str) -> Result<Self> {
        let key = parse_private_pem(pem, private_key_file_name)?;
        Ok(SigningKey::new(key, private_key_file_name))
    }

    /// Load a PEM private key; the signature key name is `<file name>.pub`.
    ///
    /// # Errors
    /// I/O errors or [`Error::Key`].
    pub fn load(path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(path).map_err(|e| Error::io_path(path, e))?;
        let name = file_name(path)?;
        let key = parse_private_pem(&pem, &path.display().to_string())?;
        Ok(SigningKey::new(key, name))
    }

    /// Public key file name the signatures refer to (e.g. `melange.rsa.pub`).
    pub fn public_key_name(&self) -> &str {
        &self.name
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.key.to_public_key()
    }

    /// Public key as PKIX PEM.
    ///
    /// # Errors
    /// Encoding failures (should not happen).
    pub fn public_key_pem(&self) -> Result<String> {
        self.key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| Error::key(&self.name, format!("cannot encode public key: {e}")))
    }

    /// Private key as PKCS#1 PEM.
    ///
    /// # Errors
    /// Encoding failures (should not happen).
    pub fn private_key_pem(&self) -> Result<String> {
        self.key
            .to_pkcs1_pem(LineEnding::LF)
            .map(|z| z.as_str().to_string())
            .map_err(|e| Error::key(&self.name, format!("cannot encode private key: {e}")))
    }

    /// Entry name of a signature made with `alg`: `.SIGN.<ALG>.<key>.pub`.
    pub fn signature_entry_name(&self, alg: SignatureAlgorithm) -> String {
        format!(".SIGN.{}.{}", alg.tag(), self.name)
    }

    /// Sign `message` (hashing it with `alg`).
    ///
    /// # Errors
    /// [`Error::Key`] when signing fails.
    pub fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        self.sign_digest(alg, &alg.digest(message))
    }

    /// Sign a precomputed digest.
    ///
    /// # Errors
    /// [`Error::Key`] when signing fails.
    pub fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        self.key
            .sign(alg.scheme(), digest)
            .map_err(|e| Error::key(&self.name, format!("RSA signing failed: {e}")))
    }
}

/// Generate an RSA key (`bits` ≥ 2048).
///
/// # Errors
/// [`Error::Key`] for a too small size or RNG failure.
pub fn generate_key(bits: usize, private_key_file_name: &str) -> Result<SigningKey> {
    if bits < MIN_KEY_BITS {
        return Err(Error::key(
            private_key_file_name,
            format!("key size {bits} is too small (minimum {MIN_KEY_BITS})"),
        ));
    }
    let mut rng = getrandom::SysRng;
    let key = PrivateKey::new(&mut rng, bits)
        .map_err(|e| Error::key(private_key_file_name, format!("key generation failed: {e}")))?;
    Ok(SigningKey::new(key, private_key_file_name))
}

/// Write `text` to `path` atomically (temp file in the same directory + rename).
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io_path(&dir, e))?;
    tmp.write_all(data).map_err(|e| Error::io_path(path, e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io_path(path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io_path(path, e.error))?;
    Ok(())
}

/// Generate a key pair and write `path` (PKCS#1 PEM, mode 0600) and
/// `path.pub` (PKIX PEM, mode 0644), like `melange keygen`.
///
/// # Errors
/// Key generation or I/O errors.
pub fn generate_key_files(path: &Path, bits: usize) -> Result<SigningKey> {
    let name = file_name(path)?;
    let key = generate_key(bits, &name)?;
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    write_atomic(path, key.private_key_pem()?.as_bytes(), 0o600)?;
    write_atomic(&pub_path, key.public_key_pem()?.as_bytes(), 0o644)?;
    Ok(key)
}

/// Trusted public keys, by file name.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<String, PublicKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a key under a name (its file name, e.g. `melange.rsa.pub`).
    pub fn add(&mut self, name: impl Into<String>, key: PublicKey) {
        self.keys.insert(name.into(), key);
    }

    /// Add a PEM public key under a name.
    ///
    /// # Errors
    /// [`Error::Key`] for invalid PEM.
    pub fn add_pem(&mut self, name: &str, pem: &str) -> Result<()> {
        let key = parse_public_pem(pem, name)?;
        self.add(name, key);
        Ok(())
    }

    /// Load a public key file; its file name is its key name.
    ///
    /// # Errors
    /// I/O or [`Error::Key`].
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let pem = std::fs::read_to_string(path).map_err(|e| Error::io_path(path, e))?;
        let name = file_name(path)?;
        let key = parse_public_pem(&pem, &path.display().to_string())?;
        self.add(name, key);
        Ok(())
    }

    /// Keyring from public key files.
    ///
    /// # Errors
    /// As [`Keyring::add_file`].
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let mut k = Keyring::new();
        for p in paths {
            k.add_file(p.as_ref())?;
        }
        Ok(k)
    }

    /// Keyring from paths that are key files or directories of key files.
    ///
    /// # Errors
    /// As [`Keyring::add_file`].
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let mut k = Keyring::new();
        for p in paths {
            let p = p.as_ref();
            if p.is_dir() {
                for (name, key) in Keyring::from_dir(p)?.keys {
                    k.add(name, key);
                }
            } else {
                k.add_file(p)?;
            }
        }
        Ok(k)
    }

    /// Keyring from every regular file of a directory (e.g. `/etc/apk/keys`).
    ///
    /// # Errors
    /// As [`Keyring::add_file`].
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut k = Keyring::new();
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io_path(dir, e))?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            k.add_file(&p)?;
        }
        Ok(k)
    }

    /// Key for a signature key name: exact file name, or equal after
    /// stripping `.rsa.pub`/`.pub` on either side (apko accepts both forms).
    pub fn get(&self, name: &str) -> Option<(&str, &PublicKey)> {
        if let Some((k, v)) = self.keys.get_key_value(name) {
            return Some((k.as_str(), v));
        }
        let stem = |s: &str| -> String {
            s.strip_suffix(".rsa.pub")
                .or_else(|| s.strip_suffix(".pub"))
                .unwrap_or(s)
                .to_string()
        };
        let want = stem(name);
        self.keys
            .iter()
            .find(|(k, _)| stem(k) == want)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Key names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verify an RSA PKCS#1 v1.5 signature over a digest.
///
/// # Errors
/// [`Error::Verification`] when the signature does not match.
pub fn verify_digest(
    key: &PublicKey,
    alg: SignatureAlgorithm,
    digest: &[u8],
    signature: &[u8],
    context: &str,
) -> Result<()> {
    key.verify(alg.scheme(), digest, signature)
        .map_err(|_| Error::verification(context, "RSA signature does not match"))
}
