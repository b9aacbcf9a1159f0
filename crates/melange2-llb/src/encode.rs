//! Go-compatible encoding of `pb.Op` and digests.

use bollard_buildkit_proto::pb;
use prost::Message;
use sha2::{Digest, Sha256};

/// Encode an op with BuildKit Go's field order: every non-oneof field in field-number order,
/// then the `op` oneof. Prost would put the oneof at its lowest tag (2), before `platform` (10)
/// and `constraints` (11), which changes the bytes and therefore the digest.
pub fn encode_op(op: &pb::Op) -> Vec<u8> {
    let mut head = op.clone();
    let oneof = head.op.take();
    let mut buf = head.encode_to_vec();
    if let Some(o) = oneof {
        o.encode(&mut buf);
    }
    buf
}

/// The OCI digest string (`sha256:<hex>`) of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneof_goes_after_platform_and_constraints() {
        let op = pb::Op {
            inputs: vec![],
            platform: Some(pb::Platform {
                architecture: "amd64".into(),
                os: "linux".into(),
                ..Default::default()
            }),
            constraints: Some(pb::WorkerConstraints::default()),
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: "local://x".into(),
                attrs: Default::default(),
            })),
        };
        let bytes = encode_op(&op);
        // platform (field 10, wire type 2) = 0x52 comes first, then constraints (11) = 0x5a 00,
        // then the source oneof (field 3) = 0x1a.
        assert_eq!(bytes[0], 0x52);
        let platform_len = bytes[1] as usize;
        assert_eq!(&bytes[2 + platform_len..4 + platform_len], &[0x5a, 0x00]);
        assert_eq!(bytes[4 + platform_len], 0x1a);
        // Decoding gives the same message back: the order only matters for the digest.
        assert_eq!(pb::Op::decode(bytes.as_slice()).unwrap(), op);
        assert_ne!(bytes, op.encode_to_vec());
    }

    #[test]
    fn digest_format() {
        assert_eq!(
            digest_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
