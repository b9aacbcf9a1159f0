//! Findings and their rendering.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::policy::Severity;

/// How many paths a one-line rendering shows before "and N more".
const SHOWN_PATHS: usize = 10;

/// One offending path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offender {
    /// Path inside the package (`usr/bin/foo`).
    pub path: String,
    /// Why, when the linter says more than its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Offender {
    pub(crate) fn new(path: &str) -> Self {
        Offender {
            path: path.to_string(),
            detail: None,
        }
    }

    pub(crate) fn with(path: &str, detail: impl Into<String>) -> Self {
        Offender {
            path: path.to_string(),
            detail: Some(detail.into()),
        }
    }
}

impl fmt::Display for Offender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{} ({d})", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// One linter that fired on one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Linter name (`usrmerge`).
    pub linter: String,
    /// Package name.
    pub package: String,
    /// [`Severity::Required`] or [`Severity::Warn`].
    pub severity: Severity,
    /// What the linter reports.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// The offending paths (empty for `empty`).
    pub offenders: Vec<Offender>,
    /// The package's `checks.disabled` names this linter: it is reported,
    /// never fatal (melange's behaviour).
    pub disabled: bool,
}

impl Finding {
    /// The offending paths.
    pub fn paths(&self) -> Vec<&str> {
        self.offenders.iter().map(|o| o.path.as_str()).collect()
    }

    /// True when this finding fails the build.
    pub fn is_required(&self) -> bool {
        self.severity == Severity::Required
    }
}

impl fmt::Display for Finding {
    /// `package hello: usrmerge (required): <message>: bin/a, bin/b`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "package {}: {} ({}{}): {}",
            self.package,
            self.linter,
            self.severity,
            if self.disabled {
                ", disabled in checks"
            } else {
                ""
            },
            self.message
        )?;
        if !self.offenders.is_empty() {
            let shown: Vec<String> = self
                .offenders
                .iter()
                .take(SHOWN_PATHS)
                .map(ToString::to_string)
                .collect();
            write!(f, ": {}", shown.join(", "))?;
            if self.offenders.len() > SHOWN_PATHS {
                write!(f, " and {} more", self.offenders.len() - SHOWN_PATHS)?;
            }
        }
        Ok(())
    }
}

/// The result of linting one package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// Package name.
    pub package: String,
    /// Linters that fired, in registry order.
    pub findings: Vec<Finding>,
    /// Linters not run or files skipped, and why (unreadable content,
    /// unknown test configuration, unknown names in `checks:`).
    pub notes: Vec<String>,
}

impl LintReport {
    /// Findings that fail the build.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_required())
    }

    /// Findings that are only warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.is_required())
    }

    /// True when a required linter fired.
    pub fn has_failures(&self) -> bool {
        self.failures().next().is_some()
    }

    /// Multi-line text for people: every finding with all its paths.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let mark = if f.is_required() { "error" } else { "warning" };
            let off = if f.disabled {
                ", disabled in checks"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  {mark}: {} ({}{off}): {}",
                f.linter, f.severity, f.message
            );
            for o in &f.offenders {
                let _ = writeln!(s, "      {o}");
            }
            let _ = writeln!(s, "      hint: {}", f.hint);
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }
}

/// The error text of a failed build: every required finding with all its
/// paths, then how to override.
pub fn render_failures(findings: &[Finding]) -> String {
    let mut s = String::from("required linters failed; nothing was written:");
    let mut names = std::collections::BTreeSet::new();
    for f in findings.iter().filter(|f| f.is_required()) {
        names.insert(f.linter.as_str());
        let _ = write!(s, "\n  {}: {}: {}", f.package, f.linter, f.message);
        for o in &f.offenders {
            let _ = write!(s, "\n      {o}");
        }
        let _ = write!(s, "\n    hint: {}", f.hint);
    }
    let names: Vec<&str> = names.into_iter().collect();
    let _ = write!(
        s,
        "\n  (to only warn: `checks: disabled: [{}]` in the package, or --lint-warn {})",
        names.join(", "),
        names.join(",")
    );
    s
}
