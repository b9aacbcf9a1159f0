//! `melange2 test`: flags as in melange's `test` command.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use melange2_buildkit::progress::ProgressMode;

use crate::cmd_buildkit::DaemonArgs;

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The build file (default: melange.yaml or .melange.yaml in the current directory).
    pub config: Option<PathBuf>,
    /// Install this instead of the main package in its test environment (e.g. hello=1.0-r1).
    pub package_name: Option<String>,
    /// Architectures to test (comma-separated or repeated; default: the host's).
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Extra repositories for the test environments (e.g. ./packages after a build).
    #[arg(short = 'r', long)]
    pub repository_append: Vec<String>,
    /// Extra trusted keys (files, directories or URLs).
    #[arg(short = 'k', long)]
    pub keyring_append: Vec<String>,
    /// Extra packages for every test environment.
    #[arg(long)]
    pub test_package_append: Vec<String>,
    /// Directory copied into /home/build of every test.
    #[arg(long)]
    pub source_dir: Option<PathBuf>,
    /// Download cache for packages (default: ~/.cache/melange2/apk).
    #[arg(long)]
    pub apk_cache_dir: Option<PathBuf>,
    /// Environment file(s) (KEY=VALUE lines).
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Directories searched for pipelines before the built-in ones.
    #[arg(long, alias = "pipeline-dirs")]
    pub pipeline_dir: Vec<PathBuf>,
    /// Trace steps (set -x) and show their output live.
    #[arg(long)]
    pub debug: bool,
    /// Progress output: auto, tty, plain, rawjson, quiet.
    #[arg(long, default_value = "auto")]
    pub progress: ProgressMode,
    /// Accept unsigned repository indexes and packages.
    #[arg(long)]
    pub ignore_signatures: bool,
    /// Take a test whose packages, environment and steps did not change from BuildKit's cache
    /// instead of running it again.
    #[arg(long)]
    pub cache_results: bool,
    /// Layer the test environments over this root filesystem (directory or tar) instead of
    /// an empty one, as `build --bootstrap-rootfs` does.
    #[arg(long, value_name = "DIR|TAR")]
    pub bootstrap_rootfs: Option<PathBuf>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

pub fn run(a: TestArgs) -> anyhow::Result<()> {
    let (addr, tls) = match a.daemon.address()? {
        Some(_) => {
            let (addr, tls) = a.daemon.resolve()?;
            (Some(addr.to_string()), tls)
        }
        None => (None, a.daemon.tls()),
    };
    let opts = melange2_test::TestOptions {
        config: a.config,
        package_name: a.package_name,
        archs: a.arch,
        repository_append: a.repository_append,
        keyring_append: a.keyring_append,
        test_package_append: a.test_package_append,
        source_dir: a.source_dir,
        apk_cache_dir: a.apk_cache_dir,
        env_files: a.env_file,
        pipeline_dirs: a.pipeline_dir,
        debug: a.debug,
        progress: a.progress,
        ignore_signatures: a.ignore_signatures,
        cache_results: a.cache_results,
        bootstrap_rootfs: a.bootstrap_rootfs,
        buildkit_addr: addr,
        tls,
    };
    // SIGINT/SIGTERM cancel the test runs and remove partial downloads (docs/build.md)
    let report = melange2_interrupt::block_on(melange2_test::test(&opts))??;
    eprint!("{}", report.failure_details());
    print!("{report}");
    std::io::stdout().flush()?;
    let failures = report.failures();
    if failures.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = failures
        .iter()
        .map(|r| match &r.outcome {
            melange2_test::Outcome::Failed(f) => format!("{} ({})", r.label(), f.headline),
            melange2_test::Outcome::Passed => r.label(),
        })
        .collect();
    anyhow::bail!(
        "{} of {} tests failed: {}",
        failures.len(),
        report.results.len(),
        names.join("; ")
    )
}
