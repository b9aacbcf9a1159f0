//! Discovery of build files from `FILE|DIR` arguments.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{GraphError, display_path, non_empty};

/// How much of a file is read to recognise a build file.
const SNIFF_LIMIT: u64 = 1 << 20;

/// The recipes found, and the top-level files of directories that are not recipes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Build files, sorted by file name (then path), each once.
    pub recipes: Vec<RecipeFile>,
    /// Top-level files of a directory argument that are not build files, sorted by path.
    pub skipped: Vec<Skipped>,
}

/// One build file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecipeFile {
    /// The file, as given or joined to its directory argument (not canonicalized).
    pub path: PathBuf,
    /// The directory argument, or the file's parent (`.` when empty).
    pub root: PathBuf,
    /// `root/pipelines` when that directory exists.
    pub pipeline_dir: Option<PathBuf>,
}

impl RecipeFile {
    /// A recipe at `path` in `root`, with `root/pipelines` when it is a directory.
    pub fn new(path: PathBuf, root: PathBuf) -> RecipeFile {
        let root = non_empty(root);
        let pd = root.join("pipelines");
        RecipeFile {
            path,
            pipeline_dir: pd.is_dir().then_some(pd),
            root,
        }
    }

    /// The recipe for a FILE argument (root: its parent directory).
    pub fn from_file(path: &Path) -> RecipeFile {
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        RecipeFile::new(path.to_path_buf(), root)
    }

    /// File name of the recipe (for ordering and messages).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| display_path(&self.path))
    }
}

/// A top-level file of a directory argument that is not a build file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file (joined to its directory argument).
    pub path: PathBuf,
    /// Why it is not a recipe.
    pub reason: String,
}

/// Reason of a `.yaml` file without a top-level `package:`.
pub const NOT_BUILD_FILE: &str = "not a melange build file (no top-level package:)";
/// Reason of a file that is not `.yaml`/`.yml`.
pub const NOT_YAML: &str = "not a .yaml file";

/// Is `path` a melange build file? True when a line of its first MiB starts with
/// `package:` at column 0.
pub fn is_build_file(path: &Path) -> std::io::Result<bool> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(SNIFF_LIMIT)
        .read_to_end(&mut buf)?;
    Ok(buf
        .split(|&b| b == b'\n')
        .any(|line| line.starts_with(b"package:")))
}

fn is_yaml_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Find the build files named by `inputs` (files and directories). See the crate docs.
///
/// # Errors
/// [`GraphError::Input`] when no input is given, an input does not exist, a FILE is not a
/// regular file, or a directory or file cannot be read.
pub fn discover(inputs: &[PathBuf]) -> Result<Discovery, GraphError> {
    if inputs.is_empty() {
        return Err(GraphError::Input(
            "no build file or directory given".to_string(),
        ));
    }
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut seen_skipped: HashSet<PathBuf> = HashSet::new();
    let mut out = Discovery::default();
    let canon = |p: &Path| -> Result<PathBuf, GraphError> {
        std::fs::canonicalize(p).map_err(|e| GraphError::Input(format!("{}: {e}", display_path(p))))
    };
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| {
            GraphError::Input(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{}: no such file or directory", display_path(input))
            } else {
                format!("{}: {e}", display_path(input))
            })
        })?;
        if meta.is_dir() {
            let rd = std::fs::read_dir(input)
                .map_err(|e| GraphError::Input(format!("{}: {e}", display_path(input))))?;
            let mut entries = Vec::new();
            for ent in rd {
                let ent =
                    ent.map_err(|e| GraphError::Input(format!("{}: {e}", display_path(input))))?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                entries.push(name);
            }
            entries.sort();
            for name in entries {
                let path = input.join(&name);
                // Follows symlinks: a link to a regular file counts as one.
                let Ok(m) = std::fs::metadata(&path) else {
                    continue;
                };
                if !m.is_file() {
                    continue;
                }
                let reason = if !is_yaml_name(&name) {
                    Some(NOT_YAML.to_string())
                } else {
                    match is_build_file(&path) {
                        Ok(true) => None,
                        Ok(false) => Some(NOT_BUILD_FILE.to_string()),
                        Err(e) => Some(format!("unreadable: {e}")),
                    }
                };
                let c = canon(&path)?;
                match reason {
                    None => {
                        if seen.insert(c) {
                            out.recipes.push(RecipeFile::new(path, input.clone()));
                        }
                    }
                    Some(reason) => {
                        if seen_skipped.insert(c) {
                            out.skipped.push(Skipped { path, reason });
                        }
                    }
                }
            }
        } else if meta.is_file() {
            if seen.insert(canon(input)?) {
                out.recipes.push(RecipeFile::from_file(input));
            }
        } else {
            return Err(GraphError::Input(format!(
                "{}: not a regular file or directory",
                display_path(input)
            )));
        }
    }
    // A file given explicitly and also skipped through its directory is a recipe.
    out.skipped
        .retain(|s| std::fs::canonicalize(&s.path).map_or(true, |c| !seen.contains(&c)));
    out.recipes
        .sort_by(|a, b| (a.file_name(), &a.path).cmp(&(b.file_name(), &b.path)));
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
