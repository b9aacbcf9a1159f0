//! What a build records about itself in the main package's `.melange.yaml` besides the plan
//! and the environment lock: the settings that change package bytes and that the package
//! cannot show otherwise, so `melange2 rebuild` can run the same build again
//! (see `docs/rebuild.md`).

use serde::{Deserialize, Serialize};

use crate::context::{BuildContext, NodeInputs};

/// The `build` section of `.melange.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildSettings {
    /// melange2's version.
    pub melange2: String,
    /// SOURCE_DATE_EPOCH (`--build-date`).
    pub source_date_epoch: u64,
    /// `--namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `--git-repo-url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_repo_url: Option<String>,
    /// `--git-commit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// `--license`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// `MELANGE_VERSIONED_SHLIB_DEPENDS`.
    pub versioned_shlib_deps: bool,
    /// Toolchain cache mounts (off with `--no-cache-mounts`).
    pub cache_mounts: bool,
    /// `--debug`.
    pub debug: bool,
    /// `--lint-require`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lint_require: Vec<String>,
    /// `--lint-warn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lint_warn: Vec<String>,
    /// Whether a source directory was copied in. Only that it was, not its content digest:
    /// a digest would give the package new bytes whenever any file of the directory changes,
    /// even one nothing installs, and so rebuild everything that depends on the package
    /// (docs/tree.md); `rebuild` shows a different source through the files that differ.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_dir: bool,
}

impl BuildSettings {
    /// The settings of a build.
    pub(crate) fn of(ctx: &BuildContext, n: &NodeInputs) -> BuildSettings {
        let o = &ctx.opts;
        BuildSettings {
            melange2: env!("CARGO_PKG_VERSION").to_string(),
            source_date_epoch: ctx.sde,
            namespace: o.namespace.clone(),
            git_repo_url: o.git_repo_url.clone(),
            git_commit: o.git_commit.clone(),
            license: o.license.clone(),
            versioned_shlib_deps: o.versioned_shlib_deps,
            cache_mounts: o.cache_mounts,
            debug: o.debug,
            lint_require: o.lint_require.clone(),
            lint_warn: o.lint_warn.clone(),
            source_dir: n.source_dir.is_some(),
        }
    }
}
