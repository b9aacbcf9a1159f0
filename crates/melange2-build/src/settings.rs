//! What a build records about itself in the main package's `.melange.yaml` besides the plan
//! and the environment lock: the settings that change package bytes and that the package
//! cannot show otherwise, so `melange2 rebuild` can run the same build again
//! (see `docs/rebuild.md`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Content digest of the source directory (`sha256:…`), when one was copied in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dir: Option<String>,
}

/// One digest of a source directory's per-file digests (as [`melange2_fingerprint::Inputs`]
/// holds them), to compare a source directory with the one a package was built from.
pub fn source_digest(files: &std::collections::BTreeMap<String, String>) -> String {
    let json = serde_json::to_vec(files).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&json)))
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
            source_dir: n
                .source_dir
                .as_ref()
                .map(|_| source_digest(&n.inputs.source)),
        }
    }
}
