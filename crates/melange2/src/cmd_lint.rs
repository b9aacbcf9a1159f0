//! `melange2 lint FILES.apk…`: run the package linters (spec F.5) on built packages.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Linters that fail (comma-separated or repeated); the others keep their defaults.
    #[arg(long, value_delimiter = ',', value_name = "LINTER", value_parser = melange2_lint::parse_linter_name)]
    pub lint_require: Vec<String>,
    /// Linters that only warn (comma-separated or repeated); the others keep their defaults.
    #[arg(long, value_delimiter = ',', value_name = "LINTER", value_parser = melange2_lint::parse_linter_name)]
    pub lint_warn: Vec<String>,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
    /// Packages to lint.
    #[arg(required = true, value_name = "FILE.apk")]
    pub packages: Vec<PathBuf>,
}

pub fn run(a: LintArgs) -> anyhow::Result<()> {
    let policy = melange2_lint::Policy::with_overrides(&a.lint_require, &a.lint_warn)?;
    let reports = melange2_lint::lint_apks(&a.packages, &policy)?;
    if a.json {
        let v: Vec<serde_json::Value> = reports
            .iter()
            .map(|(path, r)| {
                serde_json::json!({
                    "file": path.display().to_string(),
                    "package": r.package,
                    "findings": r.findings,
                    "notes": r.notes,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (path, r) in &reports {
            if r.findings.is_empty() && r.notes.is_empty() {
                println!("{} ({}): ok", path.display(), r.package);
            } else {
                println!("{} ({}):", path.display(), r.package);
                print!("{}", r.render_text());
            }
        }
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|(_, r)| r.has_failures())
        .map(|(_, r)| {
            let names: Vec<&str> = r.failures().map(|f| f.linter.as_str()).collect();
            format!("{} ({})", r.package, names.join(", "))
        })
        .collect();
    let warnings: usize = reports.iter().map(|(_, r)| r.warnings().count()).sum();
    eprintln!(
        "{} package(s) linted: {} failed, {} warning(s)",
        reports.len(),
        failed.len(),
        warnings
    );
    if !failed.is_empty() {
        anyhow::bail!("required linters failed: {}", failed.join("; "));
    }
    Ok(())
}
