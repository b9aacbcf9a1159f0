//! SourceOps: local directories (through the client session), images, HTTP files, git.

use std::collections::{BTreeMap, BTreeSet};

use bollard_buildkit_proto::pb;

use crate::state::{OpOptions, State, Vertex};

fn source(
    identifier: String,
    attrs: BTreeMap<String, String>,
    caps: BTreeSet<&'static str>,
    opts: &OpOptions,
    with_platform: bool,
) -> State {
    let v = Vertex::new(
        pb::op::Op::Source(pb::SourceOp { identifier, attrs }),
        vec![],
        if with_platform {
            opts.platform.as_ref()
        } else {
            None
        },
        opts.metadata(&caps),
    );
    State::from_output(v, 0)
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// A directory sent by the client over the session (`local://NAME`).
#[derive(Clone, Debug, Default)]
pub struct LocalSource {
    name: String,
    unique: String,
    shared_key_hint: String,
    include: Vec<String>,
    exclude: Vec<String>,
    follow: Vec<String>,
    differ: String,
    opts: OpOptions,
}

impl LocalSource {
    /// The local directory the session serves under `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Default::default()
        }
    }
    /// A stable identity (e.g. a hash of the absolute path): keeps digests deterministic and
    /// keeps different directories with the same name apart.
    pub fn unique(mut self, id: impl Into<String>) -> Self {
        self.unique = id.into();
        self
    }
    /// Key under which the daemon keeps its copy for incremental transfers.
    pub fn shared_key_hint(mut self, k: impl Into<String>) -> Self {
        self.shared_key_hint = k.into();
        self
    }
    /// Only send paths matching these patterns.
    pub fn include(mut self, p: Vec<String>) -> Self {
        self.include = p;
        self
    }
    /// Do not send paths matching these patterns.
    pub fn exclude(mut self, p: Vec<String>) -> Self {
        self.exclude = p;
        self
    }
    /// Paths (and the targets of symlinks among them) to send.
    pub fn follow_paths(mut self, p: Vec<String>) -> Self {
        self.follow = p;
        self
    }
    /// `metadata` (default) or `none`: how the daemon decides which files changed.
    pub fn differ(mut self, d: impl Into<String>) -> Self {
        self.differ = d.into();
        self
    }
    /// Name and other options.
    pub fn options(mut self, o: OpOptions) -> Self {
        self.opts = o;
        self
    }
    /// The source state.
    pub fn build(self) -> State {
        let mut attrs = BTreeMap::new();
        let mut caps = BTreeSet::from(["source.local"]);
        if !self.unique.is_empty() {
            attrs.insert("local.unique".into(), self.unique.clone());
            caps.insert("source.local.unique");
        }
        if !self.shared_key_hint.is_empty() {
            attrs.insert("local.sharedkeyhint".into(), self.shared_key_hint.clone());
            caps.insert("source.local.sharedkeyhint");
        }
        if !self.include.is_empty() {
            attrs.insert("local.includepattern".into(), json_list(&self.include));
            caps.insert("source.local.includepatterns");
        }
        if !self.exclude.is_empty() {
            attrs.insert("local.excludepatterns".into(), json_list(&self.exclude));
            caps.insert("source.local.excludepatterns");
        }
        if !self.follow.is_empty() {
            attrs.insert("local.followpaths".into(), json_list(&self.follow));
            caps.insert("source.local.followpaths");
        }
        if !self.differ.is_empty() {
            attrs.insert("local.differ".into(), self.differ.clone());
            caps.insert("source.local.differ");
        }
        source(
            format!("local://{}", self.name),
            attrs,
            caps,
            &self.opts,
            false,
        )
    }
}

/// Normalise an image reference the way Docker does (`alpine` →
/// `docker.io/library/alpine:latest`).
pub fn normalize_image_ref(r: &str) -> String {
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && digest.is_none() {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

/// A container image as a state (`docker-image://…`), resolved for the op's platform.
pub fn image(reference: &str, opts: OpOptions) -> State {
    source(
        format!("docker-image://{}", normalize_image_ref(reference)),
        BTreeMap::new(),
        BTreeSet::from(["source.image"]),
        &opts,
        true,
    )
}

/// A file downloaded by the daemon over HTTP(S).
#[derive(Clone, Debug, Default)]
pub struct HttpSource {
    url: String,
    checksum: String,
    filename: String,
    perm: Option<u32>,
    uid_gid: Option<(u32, u32)>,
    opts: OpOptions,
}

impl HttpSource {
    /// Download `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Default::default()
        }
    }
    /// Expected digest (`sha256:…`); the daemon refuses other content.
    pub fn checksum(mut self, d: impl Into<String>) -> Self {
        self.checksum = d.into();
        self
    }
    /// File name inside the resulting state.
    pub fn filename(mut self, f: impl Into<String>) -> Self {
        self.filename = f.into();
        self
    }
    /// Permissions of the file.
    pub fn perm(mut self, p: u32) -> Self {
        self.perm = Some(p);
        self
    }
    /// Owner of the file.
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid_gid = Some((uid, gid));
        self
    }
    /// Name and other options.
    pub fn options(mut self, o: OpOptions) -> Self {
        self.opts = o;
        self
    }
    /// The source state.
    pub fn build(self) -> State {
        let mut attrs = BTreeMap::new();
        let mut caps = BTreeSet::from(["source.http"]);
        if !self.checksum.is_empty() {
            attrs.insert("http.checksum".into(), self.checksum.clone());
            caps.insert("source.http.checksum");
        }
        if !self.filename.is_empty() {
            attrs.insert("http.filename".into(), self.filename.clone());
        }
        if let Some(p) = self.perm {
            attrs.insert("http.perm".into(), format!("0{p:o}"));
            caps.insert("source.http.perm");
        }
        if let Some((u, g)) = self.uid_gid {
            attrs.insert("http.uid".into(), u.to_string());
            attrs.insert("http.gid".into(), g.to_string());
            // BuildKit's cap id really is spelled this way.
            caps.insert("soruce.http.uidgid");
        }
        source(self.url.clone(), attrs, caps, &self.opts, false)
    }
}

/// A git repository checked out by the daemon.
#[derive(Clone, Debug, Default)]
pub struct GitSource {
    remote: String,
    reference: String,
    keep_git_dir: bool,
    opts: OpOptions,
}

impl GitSource {
    /// Check out `reference` (branch, tag or commit) of `remote`.
    pub fn new(remote: impl Into<String>, reference: impl Into<String>) -> Self {
        Self {
            remote: remote.into(),
            reference: reference.into(),
            ..Default::default()
        }
    }
    /// Keep the `.git` directory.
    pub fn keep_git_dir(mut self) -> Self {
        self.keep_git_dir = true;
        self
    }
    /// Name and other options.
    pub fn options(mut self, o: OpOptions) -> Self {
        self.opts = o;
        self
    }
    /// The source state.
    pub fn build(self) -> State {
        let mut attrs = BTreeMap::new();
        let mut caps = BTreeSet::from(["source.git"]);
        let bare = match self.remote.split_once("://") {
            Some((_, rest)) => {
                attrs.insert("git.fullurl".into(), self.remote.clone());
                caps.insert("source.git.fullurl");
                rest.to_string()
            }
            None => self.remote.clone(),
        };
        let mut id = format!("git://{bare}");
        if !self.reference.is_empty() {
            id.push('#');
            id.push_str(&self.reference);
        }
        if self.keep_git_dir {
            attrs.insert("git.keepgitdir".into(), "true".into());
            caps.insert("source.git.keepgitdir");
        }
        source(id, attrs, caps, &self.opts, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs() {
        assert_eq!(
            normalize_image_ref("alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(normalize_image_ref("foo/bar:1"), "docker.io/foo/bar:1");
        assert_eq!(normalize_image_ref("ghcr.io/a/b"), "ghcr.io/a/b:latest");
        assert_eq!(
            normalize_image_ref("localhost:5000/x@sha256:ab"),
            "localhost:5000/x@sha256:ab"
        );
    }
}
