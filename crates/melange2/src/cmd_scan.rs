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
}

pub fn run(a: ScanArgs) -> anyhow::Result<()> {
    let scanned = melange2_rebuild::scan::scan(&a.packages)?;
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
