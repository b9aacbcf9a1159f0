//! Severities: melange's defaults, `--lint-require` / `--lint-warn`
//! overrides and a package's `checks:`.

use std::collections::BTreeMap;
use std::fmt;

use melange2_config::model::Checks;
use serde::Serialize;

use crate::error::LintError;
use crate::linters::{LINTERS, linter};

/// What happens when a linter fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// The build (or `melange2 lint`) fails.
    Required,
    /// Reported, nothing fails.
    Warn,
    /// Not run.
    Ignored,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Required => "required",
            Severity::Warn => "warn",
            Severity::Ignored => "ignored",
        })
    }
}

/// Check a linter name (for command-line value parsers).
///
/// # Errors
/// [`LintError::UnknownLinter`] listing the known names.
pub fn parse_linter_name(name: &str) -> Result<String, LintError> {
    let name = name.trim();
    if linter(name).is_some() {
        Ok(name.to_string())
    } else {
        Err(LintError::UnknownLinter(name.to_string()))
    }
}

/// The severity of every linter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    severities: BTreeMap<&'static str, Severity>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Policy {
    /// melange's defaults (spec F.5).
    pub fn defaults() -> Self {
        Policy {
            severities: LINTERS.iter().map(|l| (l.name, l.default)).collect(),
        }
    }

    /// The defaults with `require` moved to [`Severity::Required`] and `warn`
    /// to [`Severity::Warn`], one linter at a time (the others keep their
    /// defaults). Empty strings are ignored, so comma-split lists may have
    /// trailing commas.
    ///
    /// # Errors
    /// An unknown name, or a name given to both lists.
    pub fn with_overrides<S: AsRef<str>>(require: &[S], warn: &[S]) -> Result<Self, LintError> {
        let mut p = Self::defaults();
        let mut seen: BTreeMap<&'static str, Severity> = BTreeMap::new();
        for (names, sev) in [(require, Severity::Required), (warn, Severity::Warn)] {
            for n in names {
                let n = n.as_ref().trim();
                if n.is_empty() {
                    continue;
                }
                let l = linter(n).ok_or_else(|| LintError::UnknownLinter(n.to_string()))?;
                if let Some(prev) = seen.insert(l.name, sev)
                    && prev != sev
                {
                    return Err(LintError::Conflict(l.name.to_string()));
                }
                p.severities.insert(l.name, sev);
            }
        }
        Ok(p)
    }

    /// Severity of a linter ([`Severity::Ignored`] for unknown names).
    pub fn severity(&self, name: &str) -> Severity {
        self.severities
            .get(name)
            .copied()
            .unwrap_or(Severity::Ignored)
    }

    /// Set one linter's severity.
    ///
    /// # Errors
    /// An unknown name.
    pub fn set(&mut self, name: &str, severity: Severity) -> Result<(), LintError> {
        let l = linter(name).ok_or_else(|| LintError::UnknownLinter(name.to_string()))?;
        self.severities.insert(l.name, severity);
        Ok(())
    }

    /// The policy for one package, as melange applies `checks:`: a linter in
    /// `checks.disabled` that is required becomes a warning (it still runs
    /// and is reported); a linter in `checks.enabled` that would not run
    /// runs as a warning. Unknown names in `checks` are returned as notes.
    pub fn for_package(&self, checks: &Checks) -> (Policy, Vec<String>) {
        let mut p = self.clone();
        let mut notes = Vec::new();
        for (list, key) in [(&checks.disabled, "disabled"), (&checks.enabled, "enabled")] {
            for n in list {
                let Some(l) = linter(n.trim()) else {
                    notes.push(format!("checks.{key}: unknown linter {n:?} (ignored)"));
                    continue;
                };
                let cur = p.severity(l.name);
                let new = match (key, cur) {
                    ("disabled", Severity::Required) => Severity::Warn,
                    ("enabled", Severity::Ignored) => Severity::Warn,
                    _ => cur,
                };
                p.severities.insert(l.name, new);
            }
        }
        (p, notes)
    }

    /// Names with the given severity, in registry order.
    pub fn names(&self, severity: Severity) -> Vec<&'static str> {
        LINTERS
            .iter()
            .filter(|l| self.severity(l.name) == severity)
            .map(|l| l.name)
            .collect()
    }
}
