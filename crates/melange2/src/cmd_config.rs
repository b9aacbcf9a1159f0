//! Build-file commands: `compile`, `query`, `package-version`, `lint-config`.
//! Each command is one `melange2_config` call.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use melange2_config::{Arch, CompileRequest, PipelineRegistry, Strictness, lint};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Compile a build file for one architecture and print the plan as JSON.
    ///
    /// Like `melange compile`, this accepts every file melange loads, also one whose
    /// `package.version` `build` would refuse.
    Compile {
        /// Build file.
        file: PathBuf,
        /// Target architecture (APK or Go name); defaults to the host's.
        #[arg(long)]
        arch: Option<String>,
        /// Directory of reusable pipelines, searched before the built-in set (repeatable).
        #[arg(long = "pipeline-dir")]
        pipeline_dirs: Vec<PathBuf>,
        /// Enable a build option declared in `options` (repeatable).
        #[arg(long = "build-option")]
        build_options: Vec<String>,
        /// YAML map of variables merged over `vars`.
        #[arg(long)]
        vars_file: Option<PathBuf>,
        /// dotenv file of environment variables (repeatable).
        #[arg(long = "env-file")]
        env_files: Vec<PathBuf>,
        /// Write the JSON to this file (atomically) instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Render a Go-template style query against a build file (e.g. '{{ .Package.Version }}').
    Query {
        /// Build file.
        file: PathBuf,
        /// Template.
        template: String,
    },
    /// Print NAME-VERSION-rEPOCH of a build file's main package.
    PackageVersion {
        /// Build file.
        file: PathBuf,
    },
    /// Fast checks over many build files or directories of them (every problem of a
    /// file is reported; notes never fail, not even with --strict).
    LintConfig {
        /// Files or directories (every *.yaml below a directory is checked).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Directory of reusable pipelines (repeatable).
        #[arg(long = "pipeline-dir")]
        pipeline_dirs: Vec<PathBuf>,
        /// Print findings as JSON lines.
        #[arg(long)]
        json: bool,
        /// Exit non-zero on warnings too.
        #[arg(long)]
        strict: bool,
    },
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        "x86" => "x86",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "loongarch64" => "loongarch64",
        "arm" => "armv7",
        _ => "x86_64",
    }
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Compile {
            file,
            arch,
            pipeline_dirs,
            build_options,
            vars_file,
            env_files,
            output,
        } => {
            let arch_name = arch.unwrap_or_else(|| host_arch().to_string());
            let arch = Arch::parse(&arch_name)?;
            let plan = melange2_config::compile_file_with(
                &CompileRequest {
                    file,
                    arch,
                    pipeline_dirs,
                    build_options,
                    vars_file,
                    env_files,
                },
                Strictness::Load,
            )?;
            let json = plan.to_json() + "\n";
            match output {
                Some(path) => {
                    let dir = path
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(std::path::Path::new("."));
                    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| {
                        format!("creating a temporary file in {}", dir.display())
                    })?;
                    tmp.write_all(json.as_bytes())?;
                    tmp.persist(&path)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                None => std::io::stdout().write_all(json.as_bytes())?,
            }
        }
        ConfigCommand::Query { file, template } => {
            let out = melange2_config::query_file(&file, &template)?;
            println!("{out}");
        }
        ConfigCommand::PackageVersion { file } => {
            println!("{}", melange2_config::package_version(&file)?);
        }
        ConfigCommand::LintConfig {
            files,
            pipeline_dirs,
            json,
            strict,
        } => {
            let reg = PipelineRegistry::new(pipeline_dirs);
            let report = lint::lint_files(&files, &reg);
            let mut out = std::io::stdout().lock();
            for f in &report.findings {
                if json {
                    writeln!(out, "{}", serde_json::to_string(f)?)?;
                } else {
                    writeln!(out, "{f}")?;
                }
            }
            let notes = match report.notes() {
                0 => String::new(),
                1 => ", 1 note".to_string(),
                n => format!(", {n} notes"),
            };
            eprintln!(
                "{} files checked: {} errors, {} warnings{notes}",
                report.files,
                report.errors(),
                report.warnings()
            );
            if report.errors() > 0 || (strict && report.warnings() > 0) {
                anyhow::bail!("lint-config found problems");
            }
        }
    }
    Ok(())
}
