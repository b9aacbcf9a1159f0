//! `melange2 scan`: the SCA again on built packages; the work is
//! `melange2_rebuild::scan::scan` (see `docs/rebuild.md`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// The packages to scan (built by melange2; the other packages of their build are read
    /// from the same directory).
    #[arg(required = true, value_name = "PKG.apk")]
    pub packages: Vec<PathBuf>,
    /// Print the difference from each package's own .PKGINFO instead of the scanned
    /// .PKGINFO, and fail when there is one.
    #[arg(long)]
    pub diff: bool,
    /// Repositories holding the build's environment packages: read only for a build with
    /// versioned shlib depends, for the provides of its environment packages.
    #[arg(short = 'r', long)]
    pub repository_append: Vec<String>,
    /// Keys trusting them (files, directories or URLs).
    #[arg(short = 'k', long)]
    pub keyring_append: Vec<String>,
    /// Accept unsigned repository indexes.
    #[arg(long)]
    pub ignore_signatures: bool,
    /// Download cache for indexes (default: ~/.cache/melange2/apk).
    #[arg(long, value_name = "DIR", env = "MELANGE2_APK_CACHE_DIR")]
    pub apk_cache_dir: Option<PathBuf>,
}

pub fn run(a: ScanArgs) -> anyhow::Result<()> {
    let opts = melange2_rebuild::scan::ScanOptions {
        packages: a.packages,
        repository_append: a.repository_append,
        keyring_append: a.keyring_append,
        ignore_signatures: a.ignore_signatures,
        apk_cache_dir: a.apk_cache_dir,
    };
    let rt = tokio::runtime::Runtime::new()?;
    let scanned = rt.block_on(melange2_rebuild::scan::scan(&opts))?;
    let mut out = std::io::stdout().lock();
    let mut changed = 0;
    for s in &scanned {
        if !a.diff {
            if scanned.len() > 1 {
                writeln!(out, "# {}", s.path.display())?;
            }
            write!(out, "{}", s.scanned)?;
        } else if s.unchanged() {
            writeln!(out, "{}: .PKGINFO unchanged", s.path.display())?;
        } else {
            changed += 1;
            write!(out, "{}", s.diff())?;
        }
    }
    out.flush()?;
    if changed > 0 {
        anyhow::bail!(
            "{changed} of {} packages would get another .PKGINFO",
            scanned.len()
        );
    }
    Ok(())
}
