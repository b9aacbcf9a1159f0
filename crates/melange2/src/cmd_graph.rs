//! `melange2 graph`: the dependency graph of a tree and its build order.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Build files, and directories whose top-level build files form one tree.
    #[arg(value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
    /// Print Graphviz (dot).
    #[arg(long, conflicts_with = "json")]
    pub dot: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Architectures (comma-separated or repeated; default: the host's).
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Repositories that may break cycles (besides each recipe's own).
    #[arg(short = 'r', long)]
    pub repository_append: Vec<String>,
    /// Extra trusted keys (files or URLs).
    #[arg(short = 'k', long)]
    pub keyring_append: Vec<String>,
    /// The out-dir, whose packages may break cycles too.
    #[arg(long, default_value = "packages")]
    pub out_dir: PathBuf,
    /// Key the out-dir is signed with (default: melange.rsa if present).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Extra packages every recipe needs.
    #[arg(long)]
    pub package_append: Vec<String>,
    /// Directories searched for pipelines (default: DIR/pipelines of each recipe).
    #[arg(long)]
    pub pipeline_dir: Vec<PathBuf>,
    /// Build option(s) to enable.
    #[arg(long)]
    pub build_option: Vec<String>,
    /// File of variables for ${{vars.*}}.
    #[arg(long)]
    pub vars_file: Option<PathBuf>,
    /// Environment file(s).
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Download cache for repository indexes.
    #[arg(long)]
    pub apk_cache_dir: Option<PathBuf>,
    /// Accept unsigned repository indexes.
    #[arg(long)]
    pub ignore_signatures: bool,
}

pub fn run(a: GraphArgs) -> anyhow::Result<()> {
    let format = if a.dot {
        melange2_schedule::GraphFormat::Dot
    } else if a.json {
        melange2_schedule::GraphFormat::Json
    } else {
        melange2_schedule::GraphFormat::Text
    };
    let opts = melange2_schedule::TreeOptions {
        inputs: a.inputs,
        build: melange2_build::BuildOptions {
            archs: a.arch,
            repository_append: a.repository_append,
            keyring_append: a.keyring_append,
            out_dir: a.out_dir,
            signing_key: a.signing_key,
            package_append: a.package_append,
            pipeline_dirs: a.pipeline_dir,
            build_options: a.build_option,
            vars_file: a.vars_file,
            env_files: a.env_file,
            apk_cache_dir: a.apk_cache_dir,
            ignore_signatures: a.ignore_signatures,
            generate_index: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new()?;
    let (text, unbreakable) = rt.block_on(melange2_schedule::render_graph(&opts, format))?;
    print!("{text}");
    if unbreakable {
        anyhow::bail!("the graph has dependency cycles that no configured repository can break");
    }
    Ok(())
}
