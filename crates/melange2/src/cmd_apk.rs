//! APK commands: `keygen`, `sign`, `index`, `sign-index`, `verify`.
//! Flags follow melange; each command is one `melange2_apk` call.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use melange2_apk::{Keyring, SignatureAlgorithm, SigningKey, VerifiedFile};

#[derive(Subcommand, Debug)]
pub enum ApkCommand {
    /// Generate an RSA signing key pair (NAME and NAME.pub).
    Keygen {
        /// Private key file to write; the public key goes to <NAME>.pub.
        #[arg(default_value = "melange.rsa")]
        name: PathBuf,
        /// Key size in bits (minimum 2048).
        #[arg(long, default_value_t = melange2_apk::DEFAULT_KEY_BITS)]
        key_size: usize,
    },
    /// Sign .apk packages in place (replaces existing signatures).
    Sign {
        /// Private key (PEM).
        #[arg(short = 'k', long, default_value = "local-melange.rsa")]
        signing_key: PathBuf,
        /// Packages to sign.
        #[arg(required = true)]
        packages: Vec<PathBuf>,
    },
    /// Build or update an APKINDEX.tar.gz from packages.
    ///
    /// Every package is checked like `verify` does (paths, checksums, data
    /// hash), except its signature; the update runs under the lock of the
    /// index's directory (`.melange2.lock`), shared with concurrent builds.
    Index {
        /// Index file to write.
        #[arg(short = 'o', long, default_value = "APKINDEX.tar.gz")]
        output: PathBuf,
        /// Existing index to merge into (default: the output file).
        #[arg(short = 's', long)]
        source: Option<PathBuf>,
        /// Merge the packages into the existing index instead of replacing it.
        #[arg(short = 'm', long)]
        merge: bool,
        /// Only index packages of this architecture (others are skipped with a warning).
        #[arg(short = 'a', long)]
        arch: Option<String>,
        /// Sign the index with this private key.
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Packages to index.
        #[arg(required = true)]
        packages: Vec<PathBuf>,
    },
    /// Sign an APKINDEX.tar.gz in place.
    SignIndex {
        /// Private key (PEM).
        #[arg(long, default_value = "melange.rsa")]
        signing_key: PathBuf,
        /// Re-sign even if the index is already signed.
        #[arg(short = 'f', long)]
        force: bool,
        /// Index file.
        index: PathBuf,
    },
    /// Verify packages and indexes against trusted public keys.
    Verify {
        /// Trusted public key file, or a directory of them (repeatable).
        #[arg(long, required = true)]
        keyring: Vec<PathBuf>,
        /// .apk files and APKINDEX.tar.gz files to verify.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn load_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    SigningKey::load(path).with_context(|| format!("loading signing key {}", path.display()))
}

pub fn run(cmd: ApkCommand) -> anyhow::Result<()> {
    match cmd {
        ApkCommand::Keygen { name, key_size } => {
            melange2_apk::generate_key_files(&name, key_size)?;
            eprintln!("wrote {} and {}.pub", name.display(), name.display());
        }
        ApkCommand::Sign {
            signing_key,
            packages,
        } => {
            let key = load_key(&signing_key)?;
            for p in &packages {
                melange2_apk::sign_package_file(p, &key, &[SignatureAlgorithm::RsaSha256])?;
                eprintln!("signed {}", p.display());
            }
        }
        ApkCommand::Index {
            output,
            source,
            merge,
            arch,
            signing_key,
            packages,
        } => {
            let key = signing_key.as_deref().map(load_key).transpose()?;
            let merge_from = merge.then(|| source.unwrap_or_else(|| output.clone()));
            let index = melange2_apk::index_packages(
                &packages,
                &output,
                merge_from.as_deref(),
                arch.as_deref(),
                key.as_ref(),
            )?;
            eprintln!(
                "wrote {} ({} packages)",
                output.display(),
                index.entries.len()
            );
        }
        ApkCommand::SignIndex {
            signing_key,
            force,
            index,
        } => {
            let key = load_key(&signing_key)?;
            if melange2_apk::sign_index_file(&index, &key, force)? {
                eprintln!("signed {}", index.display());
            } else {
                eprintln!(
                    "{} is already signed (use --force to re-sign)",
                    index.display()
                );
            }
        }
        ApkCommand::Verify { keyring, files } => {
            let keyring = Keyring::from_paths(&keyring)?;
            let mut failed = 0usize;
            for f in &files {
                match melange2_apk::verify_file(f, &keyring) {
                    Ok(VerifiedFile::Package { id, key }) => {
                        println!("{}: OK ({id}, signed by {key})", f.display())
                    }
                    Ok(VerifiedFile::Index { packages, key }) => {
                        println!(
                            "{}: OK (index, {packages} packages, signed by {key})",
                            f.display()
                        );
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} files failed verification", files.len());
            }
        }
    }
    Ok(())
}
