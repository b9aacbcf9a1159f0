//! `melange2 rebuild`: flags for the inputs a package cannot carry; the work is
//! `melange2_rebuild::rebuild` (see `docs/rebuild.md`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use melange2_buildkit::progress::ProgressMode;

use crate::cmd_buildkit::DaemonArgs;

#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// The packages to rebuild and compare (built by melange2; a subpackage's origin package
    /// is read from the same directory).
    #[arg(required = true, value_name = "PKG.apk")]
    pub packages: Vec<PathBuf>,
    /// Where the rebuilt packages go (<out-dir>/<arch>/); never the originals' directory.
    #[arg(long, default_value = "rebuilt")]
    pub out_dir: PathBuf,
    /// Key to sign the rebuilt packages with (default: melange.rsa if present).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Repositories holding the locked environment packages.
    #[arg(short = 'r', long)]
    pub repository_append: Vec<String>,
    /// Keys trusting them (files, directories or URLs).
    #[arg(short = 'k', long)]
    pub keyring_append: Vec<String>,
    /// The source directory the packages were built with (its content is not recorded: another
    /// source shows as files that differ).
    #[arg(long)]
    pub source_dir: Option<PathBuf>,
    /// The bootstrap root filesystem the packages were built on (checked by content digest).
    #[arg(long, value_name = "DIR|TAR")]
    pub bootstrap_rootfs: Option<PathBuf>,
    /// The --env-file(s) of the original build (their values are hidden in the package).
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Download cache for packages (default: ~/.cache/melange2/apk).
    #[arg(long, value_name = "DIR", env = "MELANGE2_APK_CACHE_DIR")]
    pub apk_cache_dir: Option<PathBuf>,
    /// Accept unsigned repository indexes and packages.
    #[arg(long)]
    pub ignore_signatures: bool,
    /// Resolve the environment anew instead of pinning the recorded lock, and report what
    /// changed in it.
    #[arg(long)]
    pub update_environment: bool,
    /// Progress output: auto, tty, plain, rawjson, quiet.
    #[arg(long, default_value = "auto")]
    pub progress: ProgressMode,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

pub fn run(a: RebuildArgs) -> anyhow::Result<()> {
    let (addr, tls) = match a.daemon.address()? {
        Some(_) => {
            let (addr, tls) = a.daemon.resolve()?;
            (Some(addr.to_string()), tls)
        }
        None => (None, a.daemon.tls()),
    };
    let opts = melange2_rebuild::RebuildOptions {
        packages: a.packages,
        out_dir: a.out_dir,
        signing_key: a.signing_key,
        repository_append: a.repository_append,
        keyring_append: a.keyring_append,
        source_dir: a.source_dir,
        bootstrap_rootfs: a.bootstrap_rootfs,
        env_files: a.env_file,
        apk_cache_dir: a.apk_cache_dir,
        ignore_signatures: a.ignore_signatures,
        update_environment: a.update_environment,
        progress: a.progress,
        buildkit_addr: addr,
        tls,
    };
    // SIGINT/SIGTERM cancel the build and remove its temporary files (docs/build.md)
    let report = melange2_interrupt::block_on(melange2_rebuild::rebuild(&opts))??;
    print!("{report}");
    std::io::stdout().flush()?;
    let differing = report.differing();
    if !differing.is_empty() {
        anyhow::bail!(
            "{} of {} packages differ from their rebuild",
            differing.len(),
            report.compared()
        );
    }
    Ok(())
}
