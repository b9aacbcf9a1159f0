//! The LLB graph of one build: environment → workspace → one ExecOp per step → export.

use std::collections::BTreeMap;

use melange2_config::plan::{Plan, STEP_PATH, Step, WORKSPACE};
use melange2_llb::{
    CacheSharing, CopyOptions, Exec, FileActions, Mount, NetMode, OpOptions, Platform, State,
};

use crate::BuildError;
use melange2_secrets::SECRETS_DIR;

/// uid and gid of melange's `build` user, the owner of secret files.
const BUILD_UID: u32 = 1000;

/// Where the packages' trees are built inside the container.
pub const OUTPUT_DIR: &str = "/home/build/melange-out";

/// Options of the graph.
#[derive(Clone, Debug)]
pub struct GraphOptions {
    /// Platform every exec runs on.
    pub platform: Platform,
    /// SOURCE_DATE_EPOCH of the build (also the mtime of created directories).
    pub source_date_epoch: u64,
    /// The source directory as a state, copied into the workspace.
    pub source: Option<State>,
    /// Seed of the `/var/cache/melange` cache mount (`--cache-dir`) and its key.
    pub cache_dir: Option<(String, State)>,
    /// Mount the toolchain caches (go, cargo, pip, uv, npm, ccache).
    pub cache_mounts: bool,
    /// Run steps with `set -x`.
    pub debug: bool,
    /// Prefix of step names (e.g. `[aarch64] `) when several builds share one progress view.
    pub name_prefix: String,
    /// Secrets mounted into every step: id (at `/run/secrets/<id>`, mode 0400, owned by the
    /// build user) and the environment variable that also holds it, if any.
    pub secrets: Vec<(String, Option<String>)>,
}

/// A step as it appears in progress output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepInfo {
    /// Display name (`uses: autoconf/make`, `run: make -j4`, …).
    pub name: String,
    /// Digest of its ExecOp.
    pub digest: String,
}

/// The graph of a build.
#[derive(Clone, Debug)]
pub struct BuildGraph {
    /// The contents of `/home/build/melange-out` (one top-level directory per package).
    pub output: State,
    /// The root filesystem after the last step.
    pub final_root: State,
    /// Every exec step in order.
    pub steps: Vec<StepInfo>,
}

/// Toolchain caches: mount point, cache id stem, environment variable pointing at it.
const TOOL_CACHES: &[(&str, &str, Option<&str>)] = &[
    ("/home/build/.cache/go-build", "go-build", Some("GOCACHE")),
    (
        "/var/cache/melange/gomodcache",
        "go-mod",
        Some("GOMODCACHE"),
    ),
    ("/home/build/.cargo/registry", "cargo-registry", None),
    ("/home/build/.cargo/git", "cargo-git", None),
    ("/var/cache/melange/pip", "pip", Some("PIP_CACHE_DIR")),
    ("/var/cache/melange/uv", "uv", Some("UV_CACHE_DIR")),
    ("/var/cache/melange/npm", "npm", Some("npm_config_cache")),
    ("/home/build/.ccache", "ccache", Some("CCACHE_DIR")),
];

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Steps with a script, in execution order, each with the `uses:` of its nearest expanded
/// ancestor.
pub fn exec_steps(steps: &[Step]) -> Vec<(&Step, Option<&str>)> {
    fn walk<'a>(
        steps: &'a [Step],
        uses: Option<&'a str>,
        out: &mut Vec<(&'a Step, Option<&'a str>)>,
    ) {
        for s in steps {
            let here = s.uses.as_deref().or(uses);
            if s.runs.as_deref().is_some_and(|r| !r.trim().is_empty()) {
                out.push((s, here));
            }
            walk(&s.pipeline, here, out);
        }
    }
    let mut out = Vec::new();
    walk(steps, None, &mut out);
    out
}

/// A step's name in progress output: `uses: X (name)`, `uses: X`, the name, or
/// `run: <first line>`; one line of at most 120 characters.
pub fn step_name(step: &Step, uses: Option<&str>) -> String {
    let base = match (uses, &step.name) {
        (Some(u), Some(n)) if !n.is_empty() && n != u => format!("uses: {u} ({n})"),
        (Some(u), _) => format!("uses: {u}"),
        (None, Some(n)) if !n.is_empty() => n.clone(),
        _ => format!("run: {}", first_line(step.runs.as_deref().unwrap_or(""))),
    };
    let one_line = base.replace(['\n', '\r'], " ");
    let mut out: String = one_line.chars().take(120).collect();
    if one_line.chars().count() > 120 {
        out.push_str("...");
    }
    out
}

/// Build the graph of `plan` on top of the environment `env`.
pub fn build_graph(
    plan: &Plan,
    env: &State,
    opts: &GraphOptions,
) -> Result<BuildGraph, BuildError> {
    let ts = Some(opts.source_date_epoch as i64 * 1_000_000_000);
    let platform = opts.platform.clone();

    // Workspace: /home/build, one output directory per package, /tmp (1777), the melange cache,
    // the source.
    let tmp = State::scratch().file(
        FileActions::new().mkdir_with("/tmp", 0o777, true, None, ts),
        OpOptions::default(),
    )?;
    let mut fa = FileActions::new()
        .mkdir_with(WORKSPACE, 0o755, true, None, ts)
        .mkdir_with("/var/cache/melange", 0o755, true, None, ts)
        .copy(
            &tmp,
            "/tmp",
            "/tmp",
            CopyOptions {
                mode: Some(0o1777),
                timestamp: ts,
                ..Default::default()
            },
        );
    for name in plan.package_names() {
        fa = fa.mkdir_with(&format!("{OUTPUT_DIR}/{name}"), 0o755, true, None, ts);
    }
    if let Some(src) = &opts.source {
        fa = fa.copy(
            src,
            "/",
            WORKSPACE,
            CopyOptions {
                contents_only: true,
                ..Default::default()
            },
        );
    }
    // A layer of its own laid over the environment: made from scratch, it does not wait for
    // the environment and no FileOp has to mount the merged environment (docs/build.md).
    let workspace = State::scratch().file(
        fa,
        OpOptions::named(format!("{}prepare workspace", opts.name_prefix)),
    )?;
    let mut state = State::merge(
        &[env.clone(), workspace],
        OpOptions::named(format!("{}environment + workspace", opts.name_prefix)),
    );

    let arch = &plan.arch;
    let mut steps_info = Vec::new();
    let mut all: Vec<(Option<&str>, &Step, Option<&str>)> = Vec::new();
    all.extend(
        exec_steps(&plan.pipeline)
            .into_iter()
            .map(|(s, u)| (None, s, u)),
    );
    for sp in &plan.subpackages {
        let name = Some(sp.package.name.as_str());
        all.extend(
            exec_steps(&sp.pipeline)
                .into_iter()
                .map(|(s, u)| (name, s, u)),
        );
    }
    for (subpkg, step, uses) in all {
        let mut name = step_name(step, uses);
        if let Some(sp) = subpkg {
            name = format!("{sp}: {name}");
        }
        let name = format!("{}{name}", opts.name_prefix);
        let mut env: BTreeMap<String, String> = step.env.clone();
        env.entry("PATH".into())
            .or_insert_with(|| STEP_PATH.to_string());
        env.entry("HOME".into())
            .or_insert_with(|| WORKSPACE.to_string());
        env.insert(
            "SOURCE_DATE_EPOCH".into(),
            opts.source_date_epoch.to_string(),
        );
        let mut exec = Exec::shell(state, step.script(opts.debug))
            .cwd(WORKSPACE)
            .user("0:0")
            .network(NetMode::Sandbox)
            .options(OpOptions::named(name.clone()).platform(platform.clone()));
        let melange_cache = match &opts.cache_dir {
            Some((key, seed)) => Mount::cache(
                "/var/cache/melange",
                format!("melange2-cache-{arch}-{key}"),
                CacheSharing::Shared,
            )
            .cache_base(seed.clone()),
            None => Mount::cache(
                "/var/cache/melange",
                format!("melange2-cache-{arch}"),
                CacheSharing::Shared,
            ),
        };
        exec = exec.mount(melange_cache);
        if opts.cache_mounts {
            for (dest, id, var) in TOOL_CACHES {
                exec = exec.mount(Mount::cache(
                    dest,
                    format!("melange2-{id}-{arch}"),
                    CacheSharing::Shared,
                ));
                if let Some(v) = var {
                    env.entry((*v).to_string())
                        .or_insert_with(|| (*dest).to_string());
                }
            }
        }
        for (id, var) in &opts.secrets {
            exec = exec.mount(
                Mount::secret(&format!("{SECRETS_DIR}/{id}"), id.clone())
                    .owner(BUILD_UID, BUILD_UID, 0o400),
            );
            if let Some(v) = var {
                // The secret wins over a variable of the same name from the recipe.
                env.remove(v);
                exec = exec.secret_env(v.clone(), id.clone());
            }
        }
        let built = exec.envs(env).build()?;
        steps_info.push(StepInfo {
            name,
            digest: built.digest().to_string(),
        });
        state = built.root();
    }

    let output = State::scratch().file(
        FileActions::new().copy(
            &state,
            &format!("{OUTPUT_DIR}/"),
            "/",
            CopyOptions {
                contents_only: true,
                ..Default::default()
            },
        ),
        OpOptions::named(format!("{}collect package trees", opts.name_prefix)),
    )?;
    Ok(BuildGraph {
        output,
        final_root: state,
        steps: steps_info,
    })
}
