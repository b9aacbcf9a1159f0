//! OCI platforms and the APK architecture names that map onto them.

use crate::LlbError;
use bollard_buildkit_proto::pb;

/// An OCI platform (`linux/amd64`, `linux/arm/v7`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system, normally `linux`.
    pub os: String,
    /// Go/OCI architecture name (`amd64`, `arm64`, …).
    pub architecture: String,
    /// Variant (`v7`, `v6`), empty when none.
    pub variant: String,
}

impl Platform {
    /// A linux platform for an OCI architecture and variant.
    pub fn linux(architecture: &str, variant: &str) -> Self {
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.into(),
        }
    }

    /// The platform that runs packages of an APK architecture (`x86_64`, `aarch64`, …).
    pub fn from_apk_arch(arch: &str) -> Result<Self, LlbError> {
        let (a, v) = match arch {
            "x86_64" | "amd64" => ("amd64", ""),
            "aarch64" | "arm64" => ("arm64", ""),
            "x86" | "386" => ("386", ""),
            "armv7" => ("arm", "v7"),
            "armhf" => ("arm", "v6"),
            "ppc64le" => ("ppc64le", ""),
            "s390x" => ("s390x", ""),
            "riscv64" => ("riscv64", ""),
            "loongarch64" => ("loong64", ""),
            other => return Err(LlbError::UnknownArch(other.to_string())),
        };
        Ok(Self::linux(a, v))
    }

    /// The APK architecture name of this platform, if it has one.
    pub fn apk_arch(&self) -> Option<&'static str> {
        Some(match (self.architecture.as_str(), self.variant.as_str()) {
            ("amd64", _) => "x86_64",
            ("arm64", _) => "aarch64",
            ("386", _) => "x86",
            ("arm", "v7") => "armv7",
            ("arm", "v6") => "armhf",
            ("ppc64le", _) => "ppc64le",
            ("s390x", _) => "s390x",
            ("riscv64", _) => "riscv64",
            ("loong64", _) => "loongarch64",
            _ => return None,
        })
    }

    /// Parse `os/arch[/variant]` as printed by BuildKit workers.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('/');
        let os = it.next()?;
        let arch = it.next()?;
        let variant = it.next().unwrap_or("");
        if it.next().is_some() || os.is_empty() || arch.is_empty() {
            return None;
        }
        Some(Self {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
        })
    }

    /// The platform of the machine this process runs on.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "loongarch64" => "loong64",
            other => other,
        };
        Self::linux(arch, "")
    }

    pub(crate) fn to_pb(&self) -> pb::Platform {
        pb::Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            os_version: String::new(),
            os_features: vec![],
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apk_arch_round_trip() {
        for a in [
            "x86_64", "aarch64", "x86", "armv7", "armhf", "ppc64le", "s390x", "riscv64",
        ] {
            let p = Platform::from_apk_arch(a).unwrap();
            assert_eq!(p.apk_arch(), Some(a));
            assert_eq!(Platform::parse(&p.to_string()), Some(p));
        }
        assert!(Platform::from_apk_arch("vax").is_err());
        assert_eq!(Platform::parse("linux/arm/v7").unwrap().variant, "v7");
        assert_eq!(Platform::parse("linux"), None);
    }
}
