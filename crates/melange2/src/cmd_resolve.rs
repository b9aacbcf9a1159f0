//! `melange2 resolve`: resolve packages against signed APK repositories,
//! download and verify them into the cache, and print the lock.

use std::path::PathBuf;

use clap::Args;
use melange2_config::{Arch, CompileRequest};

#[derive(Args, Debug)]
pub struct ResolveArgs {
    /// Target architecture (APK or Go name); defaults to the host's.
    #[arg(long)]
    arch: Option<String>,
    /// Repository to use (`URL`, `@tag URL`, `file://…` or a directory; repeatable).
    #[arg(short = 'r', long = "repository-append", value_name = "REPO")]
    repositories: Vec<String>,
    /// Trusted public key (file, directory of keys or URL; repeatable).
    #[arg(short = 'k', long = "keyring-append", value_name = "KEY")]
    keyring: Vec<String>,
    /// Accept unsigned indexes and packages (checksums are still verified).
    #[arg(long)]
    ignore_signatures: bool,
    /// Download cache (default: $XDG_CACHE_HOME/melange2/apk or ~/.cache/melange2/apk).
    #[arg(long, value_name = "DIR", env = "MELANGE2_APK_CACHE_DIR")]
    apk_cache_dir: Option<PathBuf>,
    /// Concurrent downloads.
    #[arg(long, default_value_t = melange2_resolve::DEFAULT_PARALLEL_DOWNLOADS)]
    parallel_downloads: usize,
    /// Print the lock as JSON instead of one line per package.
    #[arg(long)]
    json: bool,
    /// Build file whose `environment.contents` (packages, repositories, keyring) is resolved
    /// (the packages, repositories and keys given here are added to it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of reusable pipelines for --config, searched before the built-in set (repeatable).
    #[arg(long, value_name = "DIR", requires = "config")]
    pipeline_dir: Vec<PathBuf>,
    /// Package constraints (`busybox`, `go>1.21`, `so:libc.so.6`, `curl@edge`, `!foo`).
    packages: Vec<String>,
}

pub fn run(a: ResolveArgs) -> anyhow::Result<()> {
    let arch_name = a.arch.unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let arch = Arch::parse(&arch_name)?;
    let mut opts = melange2_resolve::Options {
        arch: arch.apk().to_string(),
        ignore_signatures: a.ignore_signatures,
        cache_dir: a.apk_cache_dir,
        parallel_downloads: a.parallel_downloads,
        ..Default::default()
    };
    let mut packages = Vec::new();
    if let Some(file) = &a.config {
        let plan = melange2_config::compile_file(&CompileRequest {
            file: file.clone(),
            arch,
            pipeline_dirs: a.pipeline_dir.clone(),
            build_options: Vec::new(),
            vars_file: None,
            env_files: Vec::new(),
        })?; // a config error names the file (and line) itself
        let env = plan.environment;
        opts.repositories.extend(env.repositories);
        opts.repositories.extend(env.build_repositories);
        opts.keyring.extend(env.keyring);
        packages.extend(env.packages);
    }
    opts.repositories.extend(a.repositories);
    opts.keyring.extend(a.keyring);
    packages.extend(a.packages);
    if packages.is_empty() {
        anyhow::bail!(
            "nothing to resolve: give packages or --config with environment.contents.packages"
        );
    }
    // SIGINT/SIGTERM stop the downloads and remove their temporary files (docs/resolve.md)
    let r = melange2_interrupt::block_on(melange2_resolve::resolve(&opts, &packages))??;
    let lock = r.lock();
    if a.json {
        print!("{}", lock.to_json());
    } else {
        print!("{}", lock.to_text());
    }
    eprintln!(
        "resolved {} packages for {} ({} fetched, {} from the cache, {} bytes downloaded)",
        r.packages.len(),
        r.arch,
        r.stats.packages_fetched,
        r.stats.packages_cached,
        r.stats.bytes_downloaded
    );
    Ok(())
}
