//! Reusable pipelines: `--pipeline-dir` directories first (in order), then the built-in set
//! embedded in the binary from `crates/melange2-config/pipelines/**.yaml`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::decode::{self, UnknownKeys};
use crate::error::{Diagnostic, Error, Result, Source};
use crate::model::Pipeline;

include!(concat!(env!("OUT_DIR"), "/embedded_pipelines.rs"));

/// Names of the built-in pipelines (sorted).
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(n, _)| *n)
}

/// YAML text of a built-in pipeline.
pub fn builtin(name: &str) -> Option<&'static str> {
    EMBEDDED
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| EMBEDDED[i].1)
}

/// A decoded pipeline file.
#[derive(Debug)]
pub struct LoadedPipeline {
    /// The `uses:` name.
    pub name: String,
    /// Where it came from (a path, or `builtin:pipelines/<name>.yaml`).
    pub origin: String,
    /// Its content.
    pub def: Pipeline,
    /// Keys of the file that the schema does not know and that were skipped (melange
    /// reads pipeline files leniently; distributions put `description:` on steps, …).
    pub ignored_keys: Vec<Diagnostic>,
    pub(crate) source: Source,
}

/// Finds and caches reusable pipelines. Cheap to share between threads.
#[derive(Debug, Default)]
pub struct PipelineRegistry {
    dirs: Vec<PathBuf>,
    cache: RwLock<HashMap<String, Arc<LoadedPipeline>>>,
}

/// Why a `uses:` name could not be loaded.
#[derive(Debug)]
pub(crate) enum LookupError {
    /// Absolute or `..` path.
    BadName,
    /// No such pipeline anywhere.
    NotFound,
    /// Found, but unreadable or invalid.
    Invalid(Error),
}

impl PipelineRegistry {
    /// A registry searching `dirs` (in order) before the built-in set.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        PipelineRegistry {
            dirs,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The `--pipeline-dir` directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Load `uses: name`.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<LoadedPipeline>, LookupError> {
        if let Ok(c) = self.cache.read()
            && let Some(p) = c.get(name)
        {
            return Ok(p.clone());
        }
        if name.is_empty()
            || name.starts_with('/')
            || Path::new(name).is_absolute()
            || name.split(['/', '\\']).any(|c| c == "..")
        {
            return Err(LookupError::BadName);
        }
        let mut found: Option<(String, String)> = None;
        for d in &self.dirs {
            let p = d.join(format!("{name}.yaml"));
            match crate::limits::read_text(&p) {
                Ok(text) => {
                    found = Some((p.display().to_string(), text));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LookupError::Invalid(Error::Io { path: p, source: e })),
            }
        }
        if found.is_none() {
            found =
                builtin(name).map(|t| (format!("builtin:pipelines/{name}.yaml"), t.to_string()));
        }
        let Some((origin, text)) = found else {
            return Err(LookupError::NotFound);
        };
        let loaded = Arc::new(parse_pipeline(name, &origin, &text).map_err(LookupError::Invalid)?);
        if let Ok(mut c) = self.cache.write() {
            c.insert(name.to_string(), loaded.clone());
        }
        Ok(loaded)
    }

    /// Every pipeline name visible through this registry (for suggestions and listings).
    pub fn names(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = builtin_names().map(str::to_string).collect();
        for d in &self.dirs {
            for e in walkdir::WalkDir::new(d).into_iter().flatten() {
                if e.file_type().is_file()
                    && let Ok(rel) = e.path().strip_prefix(d)
                    && let Some(s) = rel.to_str()
                    && let Some(n) = s.strip_suffix(".yaml")
                {
                    out.insert(n.replace('\\', "/"));
                }
            }
        }
        out
    }
}

/// Decode one pipeline file as melange does: leniently, so that keys the schema does not
/// know are skipped (and listed in [`LoadedPipeline::ignored_keys`]); wrong types and bad
/// YAML are still errors, every one of them reported.
pub(crate) fn parse_pipeline(name: &str, origin: &str, text: &str) -> Result<LoadedPipeline> {
    let source = Source::new(origin, text);
    let (def, ignored_keys) = if source.text.trim().is_empty() {
        (Pipeline::default(), Vec::new())
    } else {
        let d = decode::decode::<Pipeline>(&source, UnknownKeys::Ignore)?;
        if !d.errors.is_empty() {
            return Err(Error::from_diagnostics(d.errors));
        }
        for k in &d.ignored {
            tracing::debug!("{k}");
        }
        (d.value, d.ignored)
    };
    Ok(LoadedPipeline {
        name: name.to_string(),
        origin: origin.to_string(),
        def,
        ignored_keys,
        source,
    })
}

/// Every pipeline a list of steps uses, directly or through the pipelines it uses, in the
/// order first met (names that cannot be loaded are left out).
pub(crate) fn used_pipelines(
    reg: &PipelineRegistry,
    steps: &[Pipeline],
) -> Vec<Arc<LoadedPipeline>> {
    fn walk(
        reg: &PipelineRegistry,
        steps: &[Pipeline],
        seen: &mut BTreeSet<String>,
        out: &mut Vec<Arc<LoadedPipeline>>,
    ) {
        for s in steps {
            if !s.uses.is_empty()
                && s.pipeline.is_empty()
                && seen.insert(s.uses.clone())
                && let Ok(l) = reg.get(&s.uses)
            {
                out.push(l.clone());
                walk(reg, &l.def.pipeline, seen, out);
            }
            walk(reg, &s.pipeline, seen, out);
        }
    }
    let mut out = Vec::new();
    walk(reg, steps, &mut BTreeSet::new(), &mut out);
    out
}
