//! Architecture names: APK (`x86_64`) and Go/OCI (`amd64`) spellings, GNU and Rust triplets.

use crate::error::{Error, Result};

/// One supported architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
    X86,
    Armhf,
    Armv7,
    Ppc64le,
    S390x,
    Riscv64,
    Loongarch64,
}

/// Every architecture, in APK-name order.
pub const ALL: [Arch; 9] = [
    Arch::Aarch64,
    Arch::Armhf,
    Arch::Armv7,
    Arch::Loongarch64,
    Arch::Ppc64le,
    Arch::Riscv64,
    Arch::S390x,
    Arch::X86,
    Arch::X86_64,
];

impl Arch {
    /// Parse an APK or Go spelling (`x86_64`, `amd64`, `arm64`, `arm/v7`, …).
    pub fn parse(s: &str) -> Result<Arch> {
        Ok(match s.trim() {
            "x86_64" | "amd64" => Arch::X86_64,
            "aarch64" | "arm64" | "arm64/v8" => Arch::Aarch64,
            "x86" | "386" | "i386" | "i686" => Arch::X86,
            "armhf" | "arm/v6" | "armv6" => Arch::Armhf,
            "armv7" | "arm/v7" | "arm" => Arch::Armv7,
            "ppc64le" => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            "riscv64" => Arch::Riscv64,
            "loongarch64" | "loong64" => Arch::Loongarch64,
            other => {
                return Err(Error::Usage(format!(
                    "unknown architecture {other:?} (known: {})",
                    ALL.iter().map(|a| a.apk()).collect::<Vec<_>>().join(", ")
                )));
            }
        })
    }

    /// APK name (`${{build.arch}}`).
    pub fn apk(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::X86 => "x86",
            Arch::Armhf => "armhf",
            Arch::Armv7 => "armv7",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
            Arch::Loongarch64 => "loongarch64",
        }
    }

    /// Go/OCI name (`${{build.goarch}}`).
    pub fn go(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::X86 => "386",
            Arch::Armhf => "arm/v6",
            Arch::Armv7 => "arm/v7",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
            Arch::Loongarch64 => "loong64",
        }
    }

    /// GNU triplet with the given libc flavour (`gnu` or `musl`).
    pub fn gnu_triplet(self, flavor: &str) -> String {
        match self {
            Arch::X86_64 => format!("x86_64-pc-linux-{flavor}"),
            Arch::Aarch64 => format!("aarch64-unknown-linux-{flavor}"),
            Arch::X86 => format!("i486-pc-linux-{flavor}"),
            Arch::Armhf => format!("arm-unknown-linux-{flavor}eabihf"),
            Arch::Armv7 => format!("armv7l-unknown-linux-{flavor}eabihf"),
            Arch::Ppc64le => format!("powerpc64le-unknown-linux-{flavor}"),
            Arch::S390x => format!("s390x-ibm-linux-{flavor}"),
            Arch::Riscv64 => format!("riscv64-unknown-linux-{flavor}"),
            Arch::Loongarch64 => format!("loongarch64-unknown-linux-{flavor}"),
        }
    }

    /// Rust triplet with the given libc flavour.
    pub fn rust_triplet(self, flavor: &str) -> String {
        match self {
            Arch::X86_64 => format!("x86_64-unknown-linux-{flavor}"),
            Arch::Aarch64 => format!("aarch64-unknown-linux-{flavor}"),
            Arch::X86 => format!("i686-unknown-linux-{flavor}"),
            Arch::Armhf => format!("armv6-unknown-linux-{flavor}eabihf"),
            Arch::Armv7 => format!("armv7-unknown-linux-{flavor}eabihf"),
            other => format!("{}-unknown-linux-{flavor}", other.apk()),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.apk())
    }
}

/// Does `package.target-architecture` allow building for `arch`?
pub fn targets_arch(target_architecture: &[String], arch: Arch) -> bool {
    if target_architecture.is_empty() {
        return true;
    }
    target_architecture
        .iter()
        .any(|t| t == "all" || Arch::parse(t).is_ok_and(|a| a == arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Arch::parse("amd64").unwrap(), Arch::X86_64);
        assert_eq!(Arch::parse("arm64").unwrap().apk(), "aarch64");
        assert_eq!(Arch::Aarch64.go(), "arm64");
        assert_eq!(Arch::X86_64.gnu_triplet("gnu"), "x86_64-pc-linux-gnu");
        assert_eq!(
            Arch::Armv7.rust_triplet("musl"),
            "armv7-unknown-linux-musleabihf"
        );
        assert!(Arch::parse("sparc").is_err());
        assert!(targets_arch(&["amd64".into()], Arch::X86_64));
        assert!(!targets_arch(&["aarch64".into()], Arch::X86_64));
        assert!(targets_arch(&["all".into()], Arch::S390x));
    }
}
