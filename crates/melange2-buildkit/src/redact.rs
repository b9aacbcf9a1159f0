//! Masking secret values in the status stream of a solve, before anything shows or keeps it.

use std::collections::BTreeMap;

use bollard_buildkit_proto::moby::buildkit::v1::{StatusResponse, VertexLog};
use melange2_secrets::{Redactor, StreamRedactor};

/// Masks the values of a [`Redactor`] in vertex logs (per vertex and stream, so a value split
/// across two log messages is masked too), vertex errors and warnings.
pub(crate) struct StatusRedactor {
    redactor: Redactor,
    /// Per (vertex, stream): the held-back tail and the last log's timestamp.
    streams: BTreeMap<(String, i64), (StreamRedactor, Option<VertexLog>)>,
}

impl StatusRedactor {
    pub(crate) fn new(redactor: Redactor) -> Self {
        Self {
            redactor,
            streams: BTreeMap::new(),
        }
    }

    /// The message with every value masked. Tails held back for a vertex that completes in
    /// this message are released before it completes: the message then becomes two, the
    /// first with the released output and that vertex not yet completed, the second
    /// completing it (a vertex's output reported after its end would be lost).
    pub(crate) fn apply(&mut self, mut msg: StatusResponse) -> Vec<StatusResponse> {
        if self.redactor.is_empty() {
            return vec![msg];
        }
        let r = &self.redactor;
        for log in &mut msg.logs {
            let (s, last) = self
                .streams
                .entry((log.vertex.clone(), log.stream))
                .or_default();
            log.msg = s.feed(r, &log.msg);
            *last = Some(VertexLog {
                msg: Vec::new(),
                ..log.clone()
            });
        }
        msg.logs.retain(|l| !l.msg.is_empty());
        for v in &mut msg.vertexes {
            v.error = r.redact_str(&v.error);
            v.name = r.redact_str(&v.name);
        }
        for w in &mut msg.warnings {
            w.short = r.redact(&w.short);
            for d in &mut w.detail {
                *d = r.redact(d);
            }
        }
        let mut completing = Vec::new();
        for v in &mut msg.vertexes {
            if v.completed.is_none() {
                continue;
            }
            let released = self.release(|d| d == v.digest);
            if !released.is_empty() {
                msg.logs.extend(released);
                completing.push(v.clone());
                v.completed = None;
            }
        }
        if completing.is_empty() {
            return vec![msg];
        }
        let end = StatusResponse {
            vertexes: completing,
            ..Default::default()
        };
        vec![msg, end]
    }

    /// Whatever is still held back, as a last message (the solve ended).
    pub(crate) fn finish(&mut self) -> Option<StatusResponse> {
        let logs = self.release(|_| true);
        (!logs.is_empty()).then(|| StatusResponse {
            logs,
            ..Default::default()
        })
    }

    fn release(&mut self, which: impl Fn(&str) -> bool) -> Vec<VertexLog> {
        let mut out = Vec::new();
        for ((vertex, _), (s, last)) in self.streams.iter_mut() {
            if which(vertex) && s.is_holding() {
                let msg = s.flush();
                if let Some(l) = last {
                    out.push(VertexLog { msg, ..l.clone() });
                }
            }
        }
        out
    }

    /// `s` with every value masked.
    pub(crate) fn redact_str(&self, s: &str) -> String {
        self.redactor.redact_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::moby::buildkit::v1::Vertex;

    fn log(vertex: &str, msg: &str) -> VertexLog {
        VertexLog {
            vertex: vertex.into(),
            stream: 1,
            msg: msg.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn text(logs: &[VertexLog]) -> String {
        logs.iter()
            .map(|l| String::from_utf8_lossy(&l.msg).into_owned())
            .collect()
    }

    #[test]
    fn split_values_are_masked_and_tails_released_when_the_vertex_completes() {
        let mut r = Redactor::new();
        r.add(b"hunter22-secret");
        let mut sr = StatusRedactor::new(r);
        let one = |sr: &mut StatusRedactor, m| {
            let mut v = sr.apply(m);
            assert_eq!(v.len(), 1, "{v:?}");
            v.remove(0)
        };
        let a = one(
            &mut sr,
            StatusResponse {
                logs: vec![log("v1", "+ echo hunter22-"), log("v2", "other hunt")],
                ..Default::default()
            },
        );
        assert_eq!(text(&a.logs), "+ echo other ");
        // v2 completes with a held tail: its output comes first, then its completion
        let b = sr.apply(StatusResponse {
            logs: vec![log("v1", "secret\n")],
            vertexes: vec![Vertex {
                digest: "v2".into(),
                completed: Some(Default::default()),
                error: "failed: hunter22-secret".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(text(&b[0].logs), "***\nhunt");
        assert!(b[0].vertexes[0].completed.is_none());
        assert_eq!(b[0].vertexes[0].error, "failed: ***");
        assert!(b[1].logs.is_empty());
        assert!(b[1].vertexes[0].completed.is_some());
        assert_eq!(b[1].vertexes[0].error, "failed: ***");
        // the tracker sees the released tail as the vertex's last line
        let mut t = crate::progress::Tracker::default();
        t.update(&StatusResponse {
            vertexes: ["v1", "v2"]
                .map(|d| Vertex {
                    digest: d.into(),
                    started: Some(Default::default()),
                    ..Default::default()
                })
                .to_vec(),
            ..Default::default()
        });
        t.update(&a);
        t.update(&b[0]);
        t.update(&b[1]);
        assert_eq!(
            t.get("v2").map(|v| v.log_tail()),
            Some(vec!["other hunt".to_string()])
        );
        let c = one(
            &mut sr,
            StatusResponse {
                logs: vec![log("v1", "end hunter")],
                ..Default::default()
            },
        );
        assert_eq!(text(&c.logs), "end ");
        assert_eq!(text(&sr.finish().unwrap().logs), "hunter");
        assert!(sr.finish().is_none());
    }
}
