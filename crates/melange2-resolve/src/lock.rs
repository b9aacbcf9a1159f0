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
