//! The linters (spec F.5, crate `melange2-lint`) over the ingested package
//! trees, before anything is written: warnings join the run's warnings, a
//! required linter that fires fails packaging with every offending path.

use melange2_apk::PackageTree;
use melange2_config::plan::Plan;
use melange2_lint::{LintTarget, PackageFiles, Policy, lint_package};

use crate::error::{PackageError, Result};

/// Lint every package of the build with its own `checks:` and test pipeline.
///
/// # Errors
/// [`PackageError::Lint`] with the findings of every required linter that
/// fired, in every package.
pub(crate) fn lint_trees(
    plan: &Plan,
    trees: &[(&str, &PackageTree)],
    policy: &Policy,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut failures = Vec::new();
    for (name, tree) in trees {
        let target = LintTarget::from_plan(plan, name).unwrap_or_else(|| LintTarget::new(*name));
        let files = PackageFiles::from_tree(tree);
        let report = lint_package(&files, &target, policy);
        warnings.extend(report.warnings().map(|f| format!("lint: {f}")));
        warnings.extend(
            report
                .notes
                .iter()
                .map(|n| format!("lint: package {name}: {n}")),
        );
        failures.extend(report.failures().cloned());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(PackageError::Lint(failures))
    }
}
