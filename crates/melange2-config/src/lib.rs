//! melange build files: strict parsing, melange's two substitution phases, `data`/`range`
//! expansion, build options, `if:` conditions, reusable pipelines (`--pipeline-dir`
//! directories first, then the built-in set embedded in the binary) and compilation into a
//! per-architecture [`Plan`].
//!
//! Contract:
//! * [`load_file`]/[`parse_str`] decode a build file strictly (unknown keys are errors) and
//!   run the architecture-independent parse phase; every error names file:line:column,
//!   the field path and, for typos, the closest valid key ([`Diagnostic`]).
//! * [`compile`] turns a parsed file into a [`Plan`] for one architecture: the public
//!   contract consumed by the BuildKit build, the packager and `melange2 test`.
//! * [`lint`] runs fast checks over many files; [`query`] renders Go-template style
//!   queries; [`package_version`] prints `name-version-rEPOCH`.
//!
//! The crate never touches the network or a container: it is pure data transformation.

pub mod arch;
mod compile;
pub mod cond;
mod duration;
mod error;
pub mod lint;
mod locate;
pub mod model;
mod parse;
pub mod pipelines;
pub mod plan;
mod query;
mod subst;
pub mod version;

use std::path::{Path, PathBuf};

pub use arch::Arch;
pub use compile::{CompileOptions, compile};
pub use error::{Diagnostic, Error, Result};
pub use parse::{Config, DEFAULT_ENV, ParseOptions, load_file, parse_str};
pub use pipelines::PipelineRegistry;
pub use plan::{Plan, Step};
pub use query::query;

/// Everything `melange2 compile` needs.
#[derive(Debug, Clone)]
pub struct CompileRequest {
    /// Build file.
    pub file: PathBuf,
    /// Target architecture.
    pub arch: Arch,
    /// `--pipeline-dir` directories, searched in order before the built-in pipelines.
    pub pipeline_dirs: Vec<PathBuf>,
    /// `--build-option` names.
    pub build_options: Vec<String>,
    /// `--vars-file`.
    pub vars_file: Option<PathBuf>,
    /// `--env-file` files.
    pub env_files: Vec<PathBuf>,
}

/// Parse and compile one file (convenience for the CLI and the build).
pub fn compile_file(req: &CompileRequest) -> Result<Plan> {
    let opts = ParseOptions {
        vars_file: req.vars_file.clone(),
        env_files: req.env_files.clone(),
    };
    let cfg = load_file(&req.file, &opts)?;
    let reg = PipelineRegistry::new(req.pipeline_dirs.clone());
    let mut co = CompileOptions::new(req.arch);
    co.build_options = req.build_options.clone();
    compile(&cfg, &reg, &co)
}

/// Render a query template against a build file (`melange2 query`).
pub fn query_file(file: &Path, template: &str) -> Result<String> {
    let cfg = load_file(file, &ParseOptions::default())?;
    query(&cfg, template)
}

/// `name-version-rEPOCH` of the main package, as `melange package-version` prints it.
pub fn package_version(file: &Path) -> Result<String> {
    let cfg = load_file(file, &ParseOptions::default())?;
    let p = &cfg.configuration.package;
    Ok(format!("{}-{}-r{}", p.name, p.version, p.epoch))
}
