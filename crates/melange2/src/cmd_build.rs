//! `melange2 build`: flags compatible with melange/melange2 where they apply.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use melange2_buildkit::debug::{ExportFormat, OnFailure};
use melange2_buildkit::progress::ProgressMode;

use crate::cmd_buildkit::DaemonArgs;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build files, and directories whose top-level build files form one tree (default:
    /// melange.yaml or .melange.yaml in the current directory).
    #[arg(value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
    /// Build only these recipes and what they need that is not up to date (repeatable).
    #[arg(long, value_name = "NAME")]
    pub select: Vec<String>,
    /// Rebuild even what is up to date.
    #[arg(long)]
    pub force: bool,
    /// Print what would be built, in which order and why; build nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop at the first failure (default: build everything that does not depend on it).
    #[arg(long)]
    pub fail_fast: bool,
    /// Builds at once (default: the number of cores, at least 2).
    #[arg(long, short = 'j', default_value_t = 0, hide_default_value = true)]
    pub jobs: usize,
    /// Architectures to build (comma-separated or repeated; default: the host's).
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Where packages go (<out-dir>/<arch>/).
    #[arg(long, default_value = "packages")]
    pub out_dir: PathBuf,
    /// Key to sign packages and the index with (default: melange.rsa if present).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Extra repositories for the build environment.
    #[arg(short = 'r', long)]
    pub repository_append: Vec<String>,
    /// Extra trusted keys (files or URLs).
    #[arg(short = 'k', long)]
    pub keyring_append: Vec<String>,
    /// Extra packages for the build environment.
    #[arg(long)]
    pub package_append: Vec<String>,
    /// Source directory copied into /home/build (default: ./<package-name>/ if it exists).
    #[arg(long)]
    pub source_dir: Option<PathBuf>,
    /// Directory seeding the /var/cache/melange cache mount.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Download cache for packages (default: $XDG_CACHE_HOME/melange2/apk or ~/.cache/melange2/apk).
    #[arg(long, value_name = "DIR", env = "MELANGE2_APK_CACHE_DIR")]
    pub apk_cache_dir: Option<PathBuf>,
    /// Also unpack the built trees into <dir>/<arch>/melange-out/ for inspection.
    #[arg(long)]
    pub workspace_dir: Option<PathBuf>,
    /// Environment file(s) for the build (KEY=VALUE lines); their values are shown as *** in
    /// what the build writes.
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// A secret for every step, at /run/secrets/ID (repeatable): id=ID,src=FILE or
    /// id=ID,env=VAR, plus as-env=NAME to also set it as a variable; never written anywhere.
    #[arg(long, value_name = "id=ID,src=FILE|env=VAR[,as-env=NAME]")]
    pub secret: Vec<melange2_secrets::SecretSpec>,
    /// File of variables for ${{vars.*}}.
    #[arg(long)]
    pub vars_file: Option<PathBuf>,
    /// Build option(s) to enable.
    #[arg(long)]
    pub build_option: Vec<String>,
    /// Directories searched for pipelines before the built-in ones.
    #[arg(long)]
    pub pipeline_dir: Vec<PathBuf>,
    /// Merge the packages into <out-dir>/<arch>/APKINDEX.tar.gz.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub generate_index: bool,
    /// Trace steps (set -x) and show their output live.
    #[arg(long)]
    pub debug: bool,
    /// Progress output: auto, tty, plain, rawjson, quiet.
    #[arg(long, default_value = "auto")]
    pub progress: ProgressMode,
    /// Build date: unix seconds or RFC 3339 (default: $SOURCE_DATE_EPOCH, else 0).
    #[arg(long)]
    pub build_date: Option<String>,
    /// Give up after this long (e.g. 90m, 2h, 3600).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Accept unsigned repository indexes and packages.
    #[arg(long)]
    pub ignore_signatures: bool,
    /// Do not mount the toolchain caches (go, cargo, pip, uv, npm, ccache).
    #[arg(long)]
    pub no_cache_mounts: bool,
    /// Use this root filesystem (directory or tar) instead of resolving packages.
    #[arg(long)]
    pub bootstrap_rootfs: Option<PathBuf>,
    /// Namespace of the packages (recorded as their maintainer).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Write <name>-<version>.attest.tar.gz (in-toto/SLSA provenance) next to every APK.
    #[arg(long)]
    pub generate_provenance: bool,
    /// Write what the SCA found and why, as JSON, to <FILE>.<arch>.
    #[arg(long, value_name = "FILE")]
    pub dependency_log: Option<PathBuf>,
    /// Repository of the build file, recorded in the SBOM (default https://unknown/unknown/unknown).
    #[arg(long)]
    pub git_repo_url: Option<String>,
    /// Commit of the build file, recorded in the SBOM (default: the package's commit).
    #[arg(long)]
    pub git_commit: Option<String>,
    /// Licence of the build file, recorded in the SBOM (default NOASSERTION).
    #[arg(long)]
    pub license: Option<String>,
    /// Linters that fail the build (comma-separated or repeated; others keep their defaults).
    #[arg(long, value_delimiter = ',', value_name = "LINTER", value_parser = melange2_lint::parse_linter_name)]
    pub lint_require: Vec<String>,
    /// Linters that only warn (comma-separated or repeated; others keep their defaults).
    #[arg(long, value_delimiter = ',', value_name = "LINTER", value_parser = melange2_lint::parse_linter_name)]
    pub lint_warn: Vec<String>,
    /// Export each recipe's build cache (BuildKit cache options, e.g.
    /// `type=registry,ref=HOST/REPO:TAG,mode=max`; the tag gets `-<recipe>-<arch>`).
    #[arg(long, value_name = "OPTIONS")]
    pub cache_to: Vec<String>,
    /// Import build cache (same syntax and per-recipe tags as --cache-to).
    #[arg(long, value_name = "OPTIONS")]
    pub cache_from: Vec<String>,
    /// When a step fails, open a shell in its container as it was at the failure (needs a
    /// terminal); leaving the shell ends the build with the step's failure.
    #[arg(long, conflicts_with = "export_on_failure")]
    pub interactive: bool,
    /// When a step fails, write its root filesystem to --export-ref: tarball or dir.
    #[arg(long, value_name = "tarball|dir", requires = "export_ref")]
    pub export_on_failure: Option<melange2_buildkit::debug::ExportFormat>,
    /// Where --export-on-failure writes (a tar file, or a new or empty directory).
    #[arg(long, value_name = "PATH", requires = "export_on_failure")]
    pub export_ref: Option<PathBuf>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

fn parse_timeout(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| {
            anyhow::anyhow!("--timeout {s:?}: expected e.g. 90m, 2h, 1h30m or seconds")
        })?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => anyhow::bail!("--timeout {s:?}: unknown unit {c:?} (use h, m, s)"),
        };
    }
    if !num.is_empty() {
        anyhow::bail!("--timeout {s:?}: a number needs a unit (h, m, s)");
    }
    Ok(Duration::from_secs(total))
}

fn parse_build_date(s: &str) -> anyhow::Result<u64> {
    if let Ok(n) = s.trim().parse::<u64>() {
        return Ok(n);
    }
    // RFC 3339: YYYY-MM-DDTHH:MM:SSZ (UTC or with an offset).
    let bad = || anyhow::anyhow!("--build-date {s:?}: expected unix seconds or RFC 3339");
    let (date, rest) = s.split_once(['T', ' ']).ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if d.len() != 3 {
        return Err(bad());
    }
    let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0i64)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, o) = rest.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':').ok_or_else(bad)?;
        let off = oh.parse::<i64>().map_err(|_| bad())? * 3600
            + om.parse::<i64>().map_err(|_| bad())? * 60;
        (t, sign * off)
    } else {
        return Err(bad());
    };
    let t: Vec<i64> = time
        .split('.')
        .next()
        .unwrap_or("")
        .split(':')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if t.len() != 3 {
        return Err(bad());
    }
    // Days from civil date (proleptic Gregorian).
    let (y, m, day) = (d[0], d[1], d[2]);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + t[0] * 3600 + t[1] * 60 + t[2] - offset;
    u64::try_from(secs).map_err(|_| bad())
}

/// What a failed step leads to: `--interactive` needs a terminal on stdin and stdout.
fn on_failure(
    interactive: bool,
    export: Option<ExportFormat>,
    export_ref: Option<PathBuf>,
) -> anyhow::Result<Option<OnFailure>> {
    use std::io::IsTerminal;
    if interactive {
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            anyhow::bail!(
                "--interactive needs a terminal (stdin and stdout): it opens a shell in the \
                 failed step; without one, use --export-on-failure=tarball|dir --export-ref PATH"
            );
        }
        return Ok(Some(OnFailure::Interactive));
    }
    Ok(match (export, export_ref) {
        (Some(format), Some(path)) => Some(OnFailure::Export { format, path }),
        _ => None,
    })
}

/// The flags every build of the run shares.
fn build_options(a: BuildArgs) -> anyhow::Result<melange2_build::BuildOptions> {
    let cache_to = a
        .cache_to
        .iter()
        .map(|c| melange2_buildkit::CacheOption::parse_export(c))
        .collect::<Result<Vec<_>, _>>()?;
    let cache_from = a
        .cache_from
        .iter()
        .map(|c| melange2_buildkit::CacheOption::parse_import(c))
        .collect::<Result<Vec<_>, _>>()?;
    let on_failure = on_failure(a.interactive, a.export_on_failure, a.export_ref)?;
    let progress = match (&on_failure, a.progress) {
        // the shell takes the terminal: no live display redrawing over it
        (Some(OnFailure::Interactive), ProgressMode::Auto | ProgressMode::Tty) => {
            ProgressMode::Plain
        }
        (_, p) => p,
    };
    Ok(melange2_build::BuildOptions {
        on_failure,
        archs: a.arch,
        out_dir: a.out_dir,
        signing_key: a.signing_key,
        repository_append: a.repository_append,
        keyring_append: a.keyring_append,
        package_append: a.package_append,
        source_dir: a.source_dir,
        cache_dir: a.cache_dir,
        apk_cache_dir: a.apk_cache_dir,
        workspace_dir: a.workspace_dir,
        env_files: a.env_file,
        secrets: melange2_secrets::load(&a.secret)?,
        vars_file: a.vars_file,
        build_options: a.build_option,
        pipeline_dirs: a.pipeline_dir,
        generate_index: a.generate_index,
        debug: a.debug,
        progress,
        source_date_epoch: a.build_date.as_deref().map(parse_build_date).transpose()?,
        timeout: a.timeout.as_deref().map(parse_timeout).transpose()?,
        ignore_signatures: a.ignore_signatures,
        cache_mounts: !a.no_cache_mounts,
        bootstrap_rootfs: a.bootstrap_rootfs,
        namespace: a.namespace,
        generate_provenance: a.generate_provenance,
        dependency_log: a.dependency_log,
        // melange's switch for `so-ver:` depends
        versioned_shlib_deps: std::env::var_os("MELANGE_VERSIONED_SHLIB_DEPENDS")
            .is_some_and(|v| !v.is_empty()),
        git_repo_url: a.git_repo_url,
        git_commit: a.git_commit,
        license: a.license,
        lint_require: a.lint_require,
        lint_warn: a.lint_warn,
        cache_to,
        cache_from,
        environment_pin: None,
    })
}

/// The tree options of a `build` command line.
pub fn tree_options(a: BuildArgs) -> anyhow::Result<melange2_schedule::TreeOptions> {
    Ok(melange2_schedule::TreeOptions {
        inputs: a.inputs.clone(),
        select: a.select.clone(),
        force: a.force,
        dry_run: a.dry_run,
        fail_fast: a.fail_fast,
        jobs: a.jobs,
        build: build_options(a)?,
    })
}

pub fn run(a: BuildArgs) -> anyhow::Result<()> {
    let pool = a.daemon.pool()?;
    let opts = tree_options(a)?;
    // SIGINT/SIGTERM cancel the build and remove its temporary files (docs/build.md)
    let report = melange2_interrupt::block_on(melange2_schedule::build_tree(&opts, pool))??;
    for n in &report.nodes {
        for p in n.packages.iter().chain(&n.attestations) {
            println!("{}", p.display());
        }
    }
    let mut indexes: Vec<_> = report
        .nodes
        .iter()
        .filter_map(|n| n.index.clone())
        .collect();
    indexes.sort();
    indexes.dedup();
    for i in indexes {
        println!("{}", i.display());
    }
    let failed = report.failed();
    for f in &failed {
        if let melange2_schedule::NodeResult::Failed(e) = &f.result {
            eprintln!("Error: {} ({}): {e}", f.name, f.arch);
        }
    }
    if !report.success() {
        anyhow::bail!(
            "{} of {} builds failed{}",
            failed.len(),
            report.nodes.len(),
            match report.count(|r| matches!(r, melange2_schedule::NodeResult::Skipped(_))) {
                0 => String::new(),
                n => format!(", {n} skipped"),
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_timeout("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_timeout("5x").is_err());
        assert!(parse_timeout("5h3").is_err());
    }

    /// `--apk-cache-dir` falls back to `MELANGE2_APK_CACHE_DIR`, like `resolve`.
    #[test]
    fn apk_cache_dir_reads_the_environment() {
        use clap::{CommandFactory as _, FromArgMatches as _, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            build: BuildArgs,
        }
        let arg = Cli::command()
            .get_arguments()
            .find(|a| a.get_id() == "apk_cache_dir")
            .map(|a| a.get_env().map(|e| e.to_os_string()))
            .expect("--apk-cache-dir exists");
        assert_eq!(
            arg.as_deref(),
            Some(std::ffi::OsStr::new("MELANGE2_APK_CACHE_DIR"))
        );
        // the flag still wins over the variable
        let m = Cli::command()
            .try_get_matches_from(["build", "--apk-cache-dir", "/flag"])
            .unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        assert_eq!(cli.build.apk_cache_dir, Some(PathBuf::from("/flag")));
    }

    #[test]
    fn build_dates() {
        assert_eq!(parse_build_date("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_build_date("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_build_date("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_build_date("2023-11-15T00:13:20+02:00").unwrap(),
            1_700_000_000
        );
        assert!(parse_build_date("yesterday").is_err());
    }
}
