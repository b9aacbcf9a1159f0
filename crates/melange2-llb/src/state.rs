//! Graph nodes, states and marshalling to a `pb.Definition`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use bollard_buildkit_proto::pb;

use crate::encode::{digest_of, encode_op};
use crate::{LlbError, Platform};

/// Options shared by every op: display name, platform, cache control and progress grouping.
#[derive(Clone, Debug, Default)]
pub struct OpOptions {
    pub(crate) name: Option<String>,
    pub(crate) platform: Option<Platform>,
    pub(crate) ignore_cache: bool,
    pub(crate) progress_group: Option<(String, String)>,
    pub(crate) description: BTreeMap<String, String>,
}

impl OpOptions {
    /// Options with a custom display name (`llb.customname`), shown in progress output.
    pub fn named(name: impl Into<String>) -> Self {
        Self::default().name(name)
    }
    /// Set the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Run (or resolve) this op for a platform.
    pub fn platform(mut self, p: Platform) -> Self {
        self.platform = Some(p);
        self
    }
    /// Never take this op from the cache.
    pub fn ignore_cache(mut self, yes: bool) -> Self {
        self.ignore_cache = yes;
        self
    }
    /// Group this op with others under one progress line.
    pub fn progress_group(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.progress_group = Some((id.into(), name.into()));
        self
    }
    /// Attach a free-form description key (e.g. `com.example.step`).
    pub fn describe(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.description.insert(key.into(), value.into());
        self
    }

    pub(crate) fn metadata(&self, caps: &BTreeSet<&'static str>) -> pb::OpMetadata {
        let mut description = self.description.clone();
        if let Some(n) = &self.name {
            description.insert("llb.customname".into(), n.clone());
        }
        let mut caps: BTreeMap<String, bool> =
            caps.iter().map(|c| ((*c).to_string(), true)).collect();
        if !description.is_empty() {
            caps.insert("meta.description".into(), true);
        }
        if self.ignore_cache {
            caps.insert("meta.ignorecache".into(), true);
        }
        pb::OpMetadata {
            ignore_cache: self.ignore_cache,
            description,
            export_cache: None,
            caps,
            progress_group: self
                .progress_group
                .as_ref()
                .map(|(id, name)| pb::ProgressGroup {
                    id: id.clone(),
                    name: name.clone(),
                    weak: false,
                }),
        }
    }
}

/// One op of the graph with its input edges. Immutable once built.
pub(crate) struct Vertex {
    op: pb::Op,
    inputs: Vec<Output>,
    meta: pb::OpMetadata,
    encoded: OnceLock<(String, Vec<u8>)>,
}

impl Vertex {
    /// Build a vertex. `op.inputs` is filled from `inputs` when the vertex is encoded.
    pub(crate) fn new(
        kind: pb::op::Op,
        inputs: Vec<Output>,
        platform: Option<&Platform>,
        meta: pb::OpMetadata,
    ) -> Arc<Self> {
        Arc::new(Self {
            op: pb::Op {
                inputs: vec![],
                platform: platform.map(Platform::to_pb),
                // Go always sets an empty constraints message on real ops.
                constraints: Some(pb::WorkerConstraints::default()),
                op: Some(kind),
            },
            inputs,
            meta,
            encoded: OnceLock::new(),
        })
    }

    /// Digest and Go-compatible bytes of this op (computed once).
    fn encoded(&self) -> &(String, Vec<u8>) {
        self.encoded.get_or_init(|| {
            let mut op = self.op.clone();
            op.inputs = self.inputs.iter().map(Output::to_input).collect();
            let bytes = encode_op(&op);
            (digest_of(&bytes), bytes)
        })
    }

    pub(crate) fn digest(&self) -> &str {
        &self.encoded().0
    }
}

/// A reference to one output of a vertex.
#[derive(Clone)]
pub(crate) struct Output {
    pub(crate) vertex: Arc<Vertex>,
    pub(crate) index: i64,
}

impl Output {
    fn to_input(&self) -> pb::Input {
        pb::Input {
            digest: self.vertex.digest().to_string(),
            index: self.index,
        }
    }
    fn same(&self, other: &Output) -> bool {
        self.index == other.index
            && (Arc::ptr_eq(&self.vertex, &other.vertex)
                || self.vertex.digest() == other.vertex.digest())
    }
}

/// An immutable filesystem state: the output of an op, or scratch (empty).
#[derive(Clone, Default)]
pub struct State {
    pub(crate) out: Option<Output>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.out {
            None => write!(f, "State(scratch)"),
            Some(o) => write!(f, "State({}#{})", o.vertex.digest(), o.index),
        }
    }
}

impl State {
    /// The empty filesystem.
    pub fn scratch() -> Self {
        Self { out: None }
    }

    pub(crate) fn from_output(vertex: Arc<Vertex>, index: i64) -> Self {
        Self {
            out: Some(Output { vertex, index }),
        }
    }

    /// True for the empty filesystem.
    pub fn is_scratch(&self) -> bool {
        self.out.is_none()
    }

    /// Digest of the op that produces this state (None for scratch).
    pub fn digest(&self) -> Option<&str> {
        self.out.as_ref().map(|o| o.vertex.digest())
    }

    /// Lay `layers` on top of each other (later layers win) without copying. Scratch layers are
    /// dropped; a single remaining layer is returned as is.
    pub fn merge(layers: &[State], opts: OpOptions) -> State {
        let real: Vec<Output> = layers.iter().filter_map(|s| s.out.clone()).collect();
        match real.len() {
            0 => return State::scratch(),
            1 => {
                return State {
                    out: real.into_iter().next(),
                };
            }
            _ => {}
        }
        let mut inputs: Vec<Output> = Vec::new();
        let mut merge_inputs = Vec::new();
        for o in real {
            let idx = push_input(&mut inputs, o);
            merge_inputs.push(pb::MergeInput { input: idx });
        }
        let caps = BTreeSet::from(["mergeop"]);
        let v = Vertex::new(
            pb::op::Op::Merge(pb::MergeOp {
                inputs: merge_inputs,
            }),
            inputs,
            None,
            opts.metadata(&caps),
        );
        State::from_output(v, 0)
    }

    /// The changes that turn `lower` into `upper`, as a layer of its own.
    pub fn diff(lower: &State, upper: &State, opts: OpOptions) -> State {
        if upper.is_scratch() {
            return State::scratch();
        }
        let mut inputs = Vec::new();
        let lower_idx = match &lower.out {
            Some(o) => push_input(&mut inputs, o.clone()),
            None => -1,
        };
        let upper_idx = match &upper.out {
            Some(o) => push_input(&mut inputs, o.clone()),
            None => -1,
        };
        let caps = BTreeSet::from(["diffop"]);
        let v = Vertex::new(
            pb::op::Op::Diff(pb::DiffOp {
                lower: Some(pb::LowerDiffInput { input: lower_idx }),
                upper: Some(pb::UpperDiffInput { input: upper_idx }),
            }),
            inputs,
            None,
            opts.metadata(&caps),
        );
        State::from_output(v, 0)
    }

    /// Serialise the graph that produces this state.
    pub fn marshal(&self) -> Result<Definition, LlbError> {
        let out = self.out.as_ref().ok_or(LlbError::EmptyDefinition)?;
        let mut seen = BTreeSet::new();
        let mut def = pb::Definition::default();
        let mut digests = Vec::new();
        // Iterative post-order walk: dependencies before dependents.
        let mut stack: Vec<(Arc<Vertex>, bool)> = vec![(out.vertex.clone(), false)];
        while let Some((v, expanded)) = stack.pop() {
            let d = v.digest().to_string();
            if seen.contains(&d) {
                continue;
            }
            if expanded {
                seen.insert(d.clone());
                def.def.push(v.encoded().1.clone());
                def.metadata.insert(d.clone(), v.meta.clone());
                digests.push(d);
            } else {
                stack.push((v.clone(), true));
                for i in v.inputs.iter().rev() {
                    if !seen.contains(i.vertex.digest()) {
                        stack.push((i.vertex.clone(), false));
                    }
                }
            }
        }
        // The return op: only the result edge, no platform or constraints.
        let ret = pb::Op {
            inputs: vec![out.to_input()],
            ..Default::default()
        };
        let ret_bytes = encode_op(&ret);
        let ret_digest = digest_of(&ret_bytes);
        def.def.push(ret_bytes);
        def.metadata.insert(
            ret_digest,
            pb::OpMetadata {
                caps: BTreeMap::from([("constraints".into(), true), ("platform".into(), true)]),
                ..Default::default()
            },
        );
        Ok(Definition {
            pb: def,
            vertex_digests: digests,
            result: out.vertex.digest().to_string(),
        })
    }
}

/// Add an input edge once; return its index.
pub(crate) fn push_input(inputs: &mut Vec<Output>, o: Output) -> i64 {
    if let Some(i) = inputs.iter().position(|x| x.same(&o)) {
        return i as i64;
    }
    inputs.push(o);
    (inputs.len() - 1) as i64
}

/// A marshalled graph, ready for `SolveRequest.definition`.
#[derive(Clone, Debug)]
pub struct Definition {
    /// The protobuf definition (ops in dependency order, then the return op).
    pub pb: pb::Definition,
    /// Digests of every real op (not the return op), in the order they were emitted.
    pub vertex_digests: Vec<String>,
    /// Digest of the op whose output is the result.
    pub result: String,
}

impl Definition {
    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        prost::Message::encoded_len(&self.pb)
    }
}
