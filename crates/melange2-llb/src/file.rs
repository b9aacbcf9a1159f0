//! FileOp: mkdir, mkfile, copy, rm and symlink actions applied in sequence.

use std::collections::BTreeSet;

use bollard_buildkit_proto::pb;

use crate::LlbError;
use crate::state::{OpOptions, Output, State, Vertex, push_input};

/// Convert a unix `st_mode` permission set (incl. setuid 0o4000, setgid 0o2000, sticky 0o1000)
/// to the Go `os.FileMode` bits BuildKit expects in file actions and FileSync stats.
pub fn go_file_mode(unix: u32) -> u32 {
    let mut m = unix & 0o777;
    if unix & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if unix & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if unix & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// Owner of created or copied files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChownOpt {
    /// Numeric ids.
    Ids(u32, u32),
    /// Names looked up in the destination's /etc/passwd and /etc/group.
    Names(String, String),
}

impl ChownOpt {
    fn to_pb(&self) -> pb::ChownOpt {
        use pb::user_opt::User;
        let (u, g) = match self {
            ChownOpt::Ids(u, g) => (User::ById(*u), User::ById(*g)),
            ChownOpt::Names(u, g) => (
                User::ByName(pb::NamedUserOpt {
                    name: u.clone(),
                    input: -1,
                }),
                User::ByName(pb::NamedUserOpt {
                    name: g.clone(),
                    input: -1,
                }),
            ),
        };
        pb::ChownOpt {
            user: Some(pb::UserOpt { user: Some(u) }),
            group: Some(pb::UserOpt { user: Some(g) }),
        }
    }
}

/// Options of a copy action. Defaults match `COPY`: keep modes and times, copy a directory as
/// a directory, create the destination's parents.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Follow a symlink given as the source.
    pub follow_symlinks: bool,
    /// Copy the contents of a source directory rather than the directory itself.
    pub contents_only: bool,
    /// Unpack a source archive (tar, tar.gz, …) into the destination.
    pub unpack: bool,
    /// Create missing parents of the destination.
    pub create_dest_path: bool,
    /// Treat the source as a glob.
    pub allow_wildcard: bool,
    /// A glob matching nothing is not an error.
    pub allow_empty_wildcard: bool,
    /// Only copy paths matching these patterns.
    pub include: Vec<String>,
    /// Skip paths matching these patterns.
    pub exclude: Vec<String>,
    /// Owner of the copied files (None: keep).
    pub owner: Option<ChownOpt>,
    /// Unix mode for the copied files (None: keep the source mode). Special bits are honoured.
    pub mode: Option<u32>,
    /// mtime in unix nanoseconds (None: keep).
    pub timestamp: Option<i64>,
    /// Replace existing destination paths even when types differ.
    pub always_replace: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            follow_symlinks: false,
            contents_only: false,
            unpack: false,
            create_dest_path: true,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            include: vec![],
            exclude: vec![],
            owner: None,
            mode: None,
            timestamp: None,
            always_replace: false,
        }
    }
}

#[derive(Clone, Debug)]
enum Action {
    Mkdir {
        path: String,
        mode: u32,
        parents: bool,
        owner: Option<ChownOpt>,
        timestamp: Option<i64>,
    },
    Mkfile {
        path: String,
        mode: u32,
        data: Vec<u8>,
        owner: Option<ChownOpt>,
        timestamp: Option<i64>,
    },
    Copy {
        from: State,
        src: String,
        dest: String,
        opts: Box<CopyOptions>,
    },
    Rm {
        path: String,
        allow_not_found: bool,
        allow_wildcard: bool,
    },
    Symlink {
        old: String,
        new: String,
        owner: Option<ChownOpt>,
        timestamp: Option<i64>,
    },
}

/// A sequence of file actions, applied with [`State::file`].
#[derive(Clone, Debug, Default)]
pub struct FileActions {
    actions: Vec<Action>,
}

fn abs(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

impl FileActions {
    /// No actions yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Create a directory and its parents (mode is masked to 0o777 by the daemon).
    pub fn mkdir(self, path: &str, mode: u32) -> Self {
        self.mkdir_with(path, mode, true, None, None)
    }
    /// Create a directory with explicit options.
    pub fn mkdir_with(
        mut self,
        path: &str,
        mode: u32,
        parents: bool,
        owner: Option<ChownOpt>,
        timestamp: Option<i64>,
    ) -> Self {
        self.actions.push(Action::Mkdir {
            path: abs(path),
            mode,
            parents,
            owner,
            timestamp,
        });
        self
    }
    /// Create a file with some content (mode is masked to 0o777 by the daemon).
    pub fn mkfile(self, path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Self {
        self.mkfile_with(path, mode, data, None, None)
    }
    /// Create a file with explicit owner and mtime (unix ns).
    pub fn mkfile_with(
        mut self,
        path: &str,
        mode: u32,
        data: impl Into<Vec<u8>>,
        owner: Option<ChownOpt>,
        timestamp: Option<i64>,
    ) -> Self {
        self.actions.push(Action::Mkfile {
            path: abs(path),
            mode,
            data: data.into(),
            owner,
            timestamp,
        });
        self
    }
    /// Copy `src` from another state to `dest`.
    pub fn copy(mut self, from: &State, src: &str, dest: &str, opts: CopyOptions) -> Self {
        self.actions.push(Action::Copy {
            from: from.clone(),
            src: abs(src),
            dest: abs(dest),
            opts: Box::new(opts),
        });
        self
    }
    /// Remove a path; missing paths are not an error.
    pub fn rm(self, path: &str) -> Self {
        self.rm_with(path, true, false)
    }
    /// Remove a path with explicit options.
    pub fn rm_with(mut self, path: &str, allow_not_found: bool, allow_wildcard: bool) -> Self {
        self.actions.push(Action::Rm {
            path: abs(path),
            allow_not_found,
            allow_wildcard,
        });
        self
    }
    /// Create a symlink `new` → `old` (BuildKit ≥ v0.19).
    pub fn symlink(self, old: &str, new: &str) -> Self {
        self.symlink_with(old, new, None, None)
    }
    /// Create a symlink with explicit owner and mtime (unix ns).
    pub fn symlink_with(
        mut self,
        old: &str,
        new: &str,
        owner: Option<ChownOpt>,
        timestamp: Option<i64>,
    ) -> Self {
        self.actions.push(Action::Symlink {
            old: old.to_string(),
            new: abs(new),
            owner,
            timestamp,
        });
        self
    }
    /// True when no action was added.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

impl State {
    /// Apply file actions on top of this state (which may be scratch).
    pub fn file(&self, actions: FileActions, opts: OpOptions) -> Result<State, LlbError> {
        if actions.actions.is_empty() {
            return Ok(self.clone());
        }
        let mut caps: BTreeSet<&'static str> = BTreeSet::from(["file.base"]);
        let mut inputs: Vec<Output> = Vec::new();
        let base_idx = match &self.out {
            Some(o) => push_input(&mut inputs, o.clone()),
            None => -1,
        };
        let mut secondary = Vec::new();
        for a in &actions.actions {
            secondary.push(match a {
                Action::Copy { from, .. } => match &from.out {
                    Some(o) => push_input(&mut inputs, o.clone()),
                    None => -1,
                },
                _ => -1,
            });
        }
        let n_inputs = inputs.len() as i64;
        let last = actions.actions.len() - 1;
        let mut pb_actions = Vec::new();
        for (i, a) in actions.actions.into_iter().enumerate() {
            use pb::file_action::Action as A;
            let action = match a {
                Action::Mkdir {
                    path,
                    mode,
                    parents,
                    owner,
                    timestamp,
                } => A::Mkdir(pb::FileActionMkDir {
                    path,
                    mode: go_file_mode(mode) as i32,
                    make_parents: parents,
                    owner: owner.as_ref().map(ChownOpt::to_pb),
                    timestamp: timestamp.unwrap_or(-1),
                }),
                Action::Mkfile {
                    path,
                    mode,
                    data,
                    owner,
                    timestamp,
                } => A::Mkfile(pb::FileActionMkFile {
                    path,
                    mode: go_file_mode(mode) as i32,
                    data,
                    owner: owner.as_ref().map(ChownOpt::to_pb),
                    timestamp: timestamp.unwrap_or(-1),
                }),
                Action::Copy {
                    src, dest, opts, ..
                } => {
                    if !opts.include.is_empty() || !opts.exclude.is_empty() {
                        caps.insert("file.copy.includeexcludepatterns");
                    }
                    if opts.always_replace {
                        caps.insert("file.copy.alwaysreplaceexistingdestpaths");
                    }
                    A::Copy(pb::FileActionCopy {
                        src,
                        dest,
                        owner: opts.owner.as_ref().map(ChownOpt::to_pb),
                        // The daemon's copier reads this as unix st_mode bits (S_ISUID = 0o4000), unlike
                        // mkdir/mkfile (masked to 0o777) and FileSync stats (Go FileMode).
                        mode: opts.mode.map(|m| (m & 0o7777) as i32).unwrap_or(-1),
                        follow_symlink: opts.follow_symlinks,
                        dir_copy_contents: opts.contents_only,
                        attempt_unpack_docker_compatibility: opts.unpack,
                        create_dest_path: opts.create_dest_path,
                        allow_wildcard: opts.allow_wildcard,
                        allow_empty_wildcard: opts.allow_empty_wildcard,
                        timestamp: opts.timestamp.unwrap_or(-1),
                        include_patterns: opts.include.clone(),
                        exclude_patterns: opts.exclude.clone(),
                        always_replace_existing_dest_paths: opts.always_replace,
                        mode_str: String::new(),
                        required_paths: vec![],
                    })
                }
                Action::Rm {
                    path,
                    allow_not_found,
                    allow_wildcard,
                } => {
                    if allow_wildcard {
                        caps.insert("file.rm.wildcard");
                    }
                    A::Rm(pb::FileActionRm {
                        path,
                        allow_not_found,
                        allow_wildcard,
                    })
                }
                Action::Symlink {
                    old,
                    new,
                    owner,
                    timestamp,
                } => {
                    caps.insert("file.symlink.create");
                    A::Symlink(pb::FileActionSymlink {
                        oldpath: old,
                        newpath: new,
                        owner: owner.as_ref().map(ChownOpt::to_pb),
                        timestamp: timestamp.unwrap_or(-1),
                    })
                }
            };
            pb_actions.push(pb::FileAction {
                input: if i == 0 {
                    base_idx
                } else {
                    n_inputs + i as i64 - 1
                },
                secondary_input: secondary[i],
                output: if i == last { 0 } else { -1 },
                action: Some(action),
            });
        }
        let v = Vertex::new(
            pb::op::Op::File(pb::FileOp {
                actions: pb_actions,
            }),
            inputs,
            None,
            opts.metadata(&caps),
        );
        Ok(State::from_output(v, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(0o755), 0o755);
        assert_eq!(go_file_mode(0o4755), 0o755 | (1 << 23));
        assert_eq!(go_file_mode(0o2755), 0o755 | (1 << 22));
        assert_eq!(go_file_mode(0o1777), 0o777 | (1 << 20));
    }
}
