//! The lock: what was resolved, in install order, as stable JSON.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// Full version (`1.2.3-r0`).
    pub version: String,
    /// Package architecture (`x86_64`, `noarch`, …).
    pub arch: String,
    /// Control checksum (`Q1…`, the index `C:` value).
    pub checksum: String,
    /// Repository as configured (`@tag URL` for pinned ones).
    pub repository: String,
}

/// A resolution's lock, in install order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Target architecture.
    pub arch: String,
    /// Packages in install order.
    pub packages: Vec<LockedPackage>,
}

impl Lock {
    /// Pretty JSON with a trailing newline; the same lock always gives the
    /// same bytes (fields in declaration order, packages in install order).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parse [`Lock::to_json`] output.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid JSON.
    pub fn from_json(text: &str) -> Result<Lock> {
        serde_json::from_str(text).map_err(|e| Error::config("lock", e.to_string()))
    }

    /// One line per package: `name version arch checksum repository`.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for p in &self.packages {
            s.push_str(&format!(
                "{} {} {} {} {}\n",
                p.name, p.version, p.arch, p.checksum, p.repository
            ));
        }
        s
    }
}

/// A locked package the repositories no longer offer as locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The package as locked.
    pub package: LockedPackage,
    /// Packages of the same name the repositories do offer (other versions, or the same
    /// version with other content).
    pub found: Vec<LockedPackage>,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.package;
        write!(
            f,
            "{} {} ({}, from {})",
            p.name, p.version, p.checksum, p.repository
        )?;
        if self.found.is_empty() {
            return write!(f, ": no package of that name in the repositories");
        }
        let same_version: Vec<&LockedPackage> = self
            .found
            .iter()
            .filter(|c| c.version == p.version)
            .collect();
        if !same_version.is_empty() {
            write!(f, ": the repositories have this version with other content")?;
            for c in same_version {
                write!(f, " ({} in {})", c.checksum, c.repository)?;
            }
            return Ok(());
        }
        write!(f, ": gone from the repositories, which have")?;
        for (i, c) in self.found.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} ({} in {})", c.version, c.checksum, c.repository)?;
        }
        Ok(())
    }
}

/// Locked packages the repositories cannot supply ([`crate::Repositories::pinned`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} locked package(s) unavailable: {}", .unavailable.len(), list(.unavailable))]
pub struct PinError {
    /// Every package that is gone or changed, in lock order.
    pub unavailable: Vec<Unavailable>,
}

fn list(u: &[Unavailable]) -> String {
    u.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
