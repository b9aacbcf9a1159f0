//! ExecOp: run a process on top of a root filesystem with extra mounts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bollard_buildkit_proto::pb;

use crate::LlbError;
use crate::state::{OpOptions, Output, State, Vertex, push_input};

/// Network mode of an exec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetMode {
    /// BuildKit's default sandboxed network (has outbound access).
    #[default]
    Sandbox,
    /// The host network (needs the `network.host` entitlement).
    Host,
    /// No network at all: hermetic.
    None,
}

/// Security mode of an exec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecurityMode {
    /// Normal container sandbox.
    #[default]
    Sandbox,
    /// Privileged (needs the `security.insecure` entitlement).
    Insecure,
}

/// How concurrent builds share a cache mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheSharing {
    /// Many writers at once.
    #[default]
    Shared,
    /// Each concurrent user gets its own copy.
    Private,
    /// One user at a time.
    Locked,
}

#[derive(Clone, Debug)]
enum MountKind {
    Bind(State),
    Cache {
        id: String,
        sharing: CacheSharing,
        base: State,
    },
    Tmpfs {
        size: i64,
    },
    Secret {
        id: String,
    },
    Ssh {
        id: String,
    },
}

/// A mount of an exec (besides the root filesystem).
#[derive(Clone, Debug)]
pub struct Mount {
    dest: String,
    kind: MountKind,
    selector: String,
    readonly: bool,
    no_output: bool,
    content_cache: Option<bool>,
    uid: u32,
    gid: u32,
    mode: u32,
    optional: bool,
}

impl Mount {
    fn new(dest: &str, kind: MountKind) -> Self {
        Self {
            dest: dest.to_string(),
            kind,
            selector: String::new(),
            readonly: false,
            no_output: false,
            content_cache: None,
            uid: 0,
            gid: 0,
            mode: 0o400,
            optional: false,
        }
    }
    /// Bind a state at `dest`. Writable by default; its result is an output of the exec.
    pub fn bind(dest: &str, state: State) -> Self {
        Self::new(dest, MountKind::Bind(state))
    }
    /// A persistent cache directory keyed by `id`.
    pub fn cache(dest: &str, id: impl Into<String>, sharing: CacheSharing) -> Self {
        Self::new(
            dest,
            MountKind::Cache {
                id: id.into(),
                sharing,
                base: State::scratch(),
            },
        )
    }
    /// Seed a cache mount from a state the first time it is created.
    pub fn cache_base(mut self, base: State) -> Self {
        if let MountKind::Cache { base: b, .. } = &mut self.kind {
            *b = base;
        }
        self
    }
    /// A tmpfs; `size` in bytes (0 = default).
    pub fn tmpfs(dest: &str, size: i64) -> Self {
        Self::new(dest, MountKind::Tmpfs { size })
    }
    /// A secret served by the client session, as a file at `dest` (mode 0400, root by default).
    pub fn secret(dest: &str, id: impl Into<String>) -> Self {
        Self::new(dest, MountKind::Secret { id: id.into() })
    }
    /// An SSH agent socket forwarded from the client session.
    pub fn ssh(dest: &str, id: impl Into<String>) -> Self {
        let mut m = Self::new(dest, MountKind::Ssh { id: id.into() });
        m.mode = 0o600;
        m
    }
    /// Mount only this subdirectory of the input.
    pub fn selector(mut self, path: impl Into<String>) -> Self {
        self.selector = path.into();
        self
    }
    /// Read-only (no output).
    pub fn readonly(mut self) -> Self {
        self.readonly = true;
        self
    }
    /// Writable, but its changes are thrown away (no output).
    pub fn no_output(mut self) -> Self {
        self.no_output = true;
        self
    }
    /// Force content-based cache keys on (true) or off (false) for this mount.
    pub fn content_cache(mut self, on: bool) -> Self {
        self.content_cache = Some(on);
        self
    }
    /// Owner and mode of a secret or SSH mount.
    pub fn owner(mut self, uid: u32, gid: u32, mode: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self.mode = mode;
        self
    }
    /// A missing secret/SSH socket is not an error.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    fn has_output(&self) -> bool {
        matches!(self.kind, MountKind::Bind(_)) && !self.readonly && !self.no_output
    }
}

/// Builder for an ExecOp. Call [`Exec::build`] to get its outputs.
#[derive(Clone, Debug)]
pub struct Exec {
    root: State,
    root_content_cache: Option<bool>,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: String,
    user: String,
    hostname: String,
    valid_exit_codes: Vec<i32>,
    mounts: Vec<Mount>,
    network: NetMode,
    security: SecurityMode,
    secret_env: BTreeMap<String, (String, bool)>,
    opts: OpOptions,
}

impl Exec {
    /// Run `args` with `root` as the root filesystem.
    pub fn new<I, S>(root: State, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            root,
            root_content_cache: None,
            args: args.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            cwd: "/".into(),
            user: String::new(),
            hostname: String::new(),
            valid_exit_codes: vec![],
            mounts: vec![],
            network: NetMode::Sandbox,
            security: SecurityMode::Sandbox,
            secret_env: BTreeMap::new(),
            opts: OpOptions::default(),
        }
    }
    /// Run a POSIX shell script (`/bin/sh -c SCRIPT`).
    pub fn shell(root: State, script: impl Into<String>) -> Self {
        Self::new(root, ["/bin/sh".to_string(), "-c".into(), script.into()])
    }
    /// Set an environment variable (variables are emitted sorted by name).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    /// Set several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (k, v) in vars {
            self.env.insert(k.into(), v.into());
        }
        self
    }
    /// Working directory (absolute).
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = dir.into();
        self
    }
    /// User (`uid[:gid]` or a name from the root's /etc/passwd).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }
    /// Container hostname.
    pub fn hostname(mut self, h: impl Into<String>) -> Self {
        self.hostname = h.into();
        self
    }
    /// Exit codes that count as success (default: only 0).
    pub fn valid_exit_codes(mut self, codes: Vec<i32>) -> Self {
        self.valid_exit_codes = codes;
        self
    }
    /// Add a mount.
    pub fn mount(mut self, m: Mount) -> Self {
        self.mounts.push(m);
        self
    }
    /// Network mode.
    pub fn network(mut self, n: NetMode) -> Self {
        self.network = n;
        self
    }
    /// Security mode.
    pub fn security(mut self, s: SecurityMode) -> Self {
        self.security = s;
        self
    }
    /// Expose secret `id` as environment variable `name`.
    pub fn secret_env(mut self, name: impl Into<String>, id: impl Into<String>) -> Self {
        self.secret_env.insert(name.into(), (id.into(), false));
        self
    }
    /// Content-based cache keys for the root mount (needed when the root comes from a
    /// `local://` source, whose own cache key is per session).
    pub fn root_content_cache(mut self, on: bool) -> Self {
        self.root_content_cache = Some(on);
        self
    }
    /// Name, platform and cache options.
    pub fn options(mut self, o: OpOptions) -> Self {
        self.opts = o;
        self
    }

    /// Build the op.
    pub fn build(self) -> Result<ExecState, LlbError> {
        if self.args.is_empty() {
            return Err(LlbError::NoArgs);
        }
        for m in &self.mounts {
            if !m.dest.starts_with('/') {
                return Err(LlbError::RelativePath(m.dest.clone()));
            }
        }
        let mut caps: BTreeSet<&'static str> =
            BTreeSet::from(["exec.meta.base", "exec.mount.bind"]);
        let mut root = Mount::bind("/", self.root.clone());
        root.content_cache = self.root_content_cache;
        let mut all = vec![root];
        all.extend(self.mounts.iter().cloned());
        // Go sorts mounts by destination; output indices follow that order.
        all.sort_by(|a, b| a.dest.cmp(&b.dest));

        let mut inputs: Vec<Output> = Vec::new();
        let mut pb_mounts = Vec::new();
        let mut outputs = BTreeMap::new();
        let mut next_output = 0i64;
        for m in &all {
            let mut pm = pb::Mount {
                input: -1,
                selector: m.selector.clone(),
                dest: m.dest.clone(),
                output: -1,
                readonly: m.readonly,
                ..Default::default()
            };
            if !m.selector.is_empty() {
                caps.insert("exec.mount.selector");
            }
            if let Some(on) = m.content_cache {
                pm.content_cache = if on {
                    pb::MountContentCache::On as i32
                } else {
                    pb::MountContentCache::Off as i32
                };
                caps.insert("exec.mount.cache.content");
            }
            match &m.kind {
                MountKind::Bind(s) => {
                    pm.mount_type = pb::MountType::Bind as i32;
                    if let Some(o) = &s.out {
                        pm.input = push_input(&mut inputs, o.clone());
                    }
                }
                MountKind::Cache { id, sharing, base } => {
                    caps.insert("exec.mount.cache");
                    caps.insert("exec.mount.cache.sharing");
                    pm.mount_type = pb::MountType::Cache as i32;
                    if let Some(o) = &base.out {
                        pm.input = push_input(&mut inputs, o.clone());
                    }
                    pm.cache_opt = Some(pb::CacheOpt {
                        id: id.clone(),
                        sharing: match sharing {
                            CacheSharing::Shared => pb::CacheSharingOpt::Shared,
                            CacheSharing::Private => pb::CacheSharingOpt::Private,
                            CacheSharing::Locked => pb::CacheSharingOpt::Locked,
                        } as i32,
                    });
                }
                MountKind::Tmpfs { size } => {
                    caps.insert("exec.mount.tmpfs");
                    if *size > 0 {
                        caps.insert("exec.mount.tmpfs.size");
                    }
                    pm.mount_type = pb::MountType::Tmpfs as i32;
                    pm.tmpfs_opt = Some(pb::TmpfsOpt { size: *size });
                }
                MountKind::Secret { id } => {
                    caps.insert("exec.mount.secret");
                    pm.mount_type = pb::MountType::Secret as i32;
                    pm.secret_opt = Some(pb::SecretOpt {
                        id: id.clone(),
                        uid: m.uid,
                        gid: m.gid,
                        mode: m.mode,
                        optional: m.optional,
                    });
                }
                MountKind::Ssh { id } => {
                    caps.insert("exec.mount.ssh");
                    pm.mount_type = pb::MountType::Ssh as i32;
                    pm.ssh_opt = Some(pb::SshOpt {
                        id: id.clone(),
                        uid: m.uid,
                        gid: m.gid,
                        mode: m.mode,
                        optional: m.optional,
                    });
                }
            }
            if m.has_output() {
                pm.output = next_output;
                outputs.insert(m.dest.clone(), next_output);
                next_output += 1;
            }
            pb_mounts.push(pm);
        }
        if self.network != NetMode::Sandbox {
            caps.insert("exec.meta.network");
        }
        if self.security != SecurityMode::Sandbox {
            caps.insert("exec.meta.security");
        }
        if !self.valid_exit_codes.is_empty() {
            caps.insert("exec.validexitcode");
        }
        if !self.secret_env.is_empty() {
            caps.insert("exec.secretenv");
        }
        let exec = pb::ExecOp {
            meta: Some(pb::Meta {
                args: self.args.clone(),
                env: self.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                cwd: self.cwd.clone(),
                user: self.user.clone(),
                hostname: self.hostname.clone(),
                remove_mount_stubs_recursive: true,
                valid_exit_codes: self.valid_exit_codes.clone(),
                ..Default::default()
            }),
            mounts: pb_mounts,
            network: match self.network {
                NetMode::Sandbox => pb::NetMode::Unset,
                NetMode::Host => pb::NetMode::Host,
                NetMode::None => pb::NetMode::None,
            } as i32,
            security: match self.security {
                SecurityMode::Sandbox => pb::SecurityMode::Sandbox,
                SecurityMode::Insecure => pb::SecurityMode::Insecure,
            } as i32,
            secretenv: self
                .secret_env
                .iter()
                .map(|(name, (id, optional))| pb::SecretEnv {
                    id: id.clone(),
                    name: name.clone(),
                    optional: *optional,
                })
                .collect(),
            cdi_devices: vec![],
        };
        let vertex = Vertex::new(
            pb::op::Op::Exec(exec),
            inputs,
            self.opts.platform.as_ref(),
            self.opts.metadata(&caps),
        );
        Ok(ExecState { vertex, outputs })
    }
}

/// The outputs of a built exec: the root filesystem and every writable bind mount.
#[derive(Clone)]
pub struct ExecState {
    vertex: Arc<Vertex>,
    outputs: BTreeMap<String, i64>,
}

impl ExecState {
    /// The root filesystem after the process ran.
    pub fn root(&self) -> State {
        self.output("/").unwrap_or_default()
    }
    /// The content of the writable mount at `dest` after the process ran.
    pub fn output(&self, dest: &str) -> Option<State> {
        self.outputs
            .get(dest)
            .map(|i| State::from_output(self.vertex.clone(), *i))
    }
    /// Digest of the exec op.
    pub fn digest(&self) -> &str {
        self.vertex.digest()
    }
}
