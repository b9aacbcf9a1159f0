//! melange build files: strict parsing, melange's two substitution phases, `data`/`range`
//! expansion, build options, `if:` conditions, reusable pipelines (`--pipeline-dir`
//! directories first, then the built-in set embedded in the binary) and compilation into a
//! per-architecture [`Plan`].
//!
//! Contract:
//! * [`load_file`]/[`parse_str`] decode a build file strictly (unknown keys are errors) and
//!   run the architecture-independent parse phase; every error names file:line:column,
//!   the field path and, for typos, the closest valid key ([`Diagnostic`]). Every problem
//!   of a file is reported at once ([`Error::diagnostics`]), not only the first.
//! * Pipeline files (built-in and `--pipeline-dir`) are decoded leniently, as melange
//!   decodes them: unknown keys are skipped ([`pipelines::LoadedPipeline::ignored_keys`]).
//!   A problem inside one is reported at the build file's step that uses it, with the
//!   pipeline file's diagnostic as its [`Diagnostic::cause`].
//! * [`compile`] turns a parsed file into a [`Plan`] for one architecture: the public
//!   contract consumed by the BuildKit build, the packager and `melange2 test`. Like
//!   melange, loading accepts any non-empty `package.version`; [`Strictness::Build`] (the
//!   default of [`CompileOptions`], used by the build) refuses one that is not an APK
//!   version, [`Strictness::Load`] (`melange2 compile`) accepts it.
//! * [`lint`] runs fast checks over many files; [`query`] renders Go-template style
//!   queries; [`package_version`] prints `name-version-rEPOCH`.
//!
//! The crate never touches the network or a container: it is pure data transformation.

pub mod arch;
mod compile;
pub mod cond;
mod decode;
mod duration;
mod error;
pub mod limits;
pub mod lint;
mod locate;
pub mod model;
mod parse;
pub mod pipelines;
pub mod plan;
mod query;
mod scan;
mod subst;
mod tree;
pub mod version;

use std::path::{Path, PathBuf};

pub use arch::Arch;
pub use compile::{CompileOptions, Strictness, compile};
pub use error::{Diagnostic, Error, Result};
pub use parse::{Config, DEFAULT_ENV, ParseOptions, env_file_values, load_file, parse_str};
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

/// Parse and compile one file as the build does ([`Strictness::Build`]).
pub fn compile_file(req: &CompileRequest) -> Result<Plan> {
    compile_file_with(req, Strictness::Build)
}

/// Parse and compile one file with the given strictness (`melange2 compile` uses
/// [`Strictness::Load`]: it accepts what melange loads, even what it would not build).
pub fn compile_file_with(req: &CompileRequest, strictness: Strictness) -> Result<Plan> {
    let opts = ParseOptions {
        vars_file: req.vars_file.clone(),
        env_files: req.env_files.clone(),
    };
    let cfg = load_file(&req.file, &opts)?;
    let reg = PipelineRegistry::new(req.pipeline_dirs.clone());
    let mut co = CompileOptions::new(req.arch);
    co.build_options = req.build_options.clone();
    co.strictness = strictness;
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
