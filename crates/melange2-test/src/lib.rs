//! `melange2 test`: run the `test:` blocks of a melange build file against packages that were
//! already built, on BuildKit.
//!
//! Contract:
//! * [`test`] compiles the build file for each architecture and runs one case per `test:` block
//!   ([`suite::test_cases`]): the main package first, then each subpackage in file order, each
//!   in a fresh state on its **own** environment (its `test.environment` packages, the
//!   `needs` of its steps, `--test-package-append`, and the package under test pinned to the
//!   version the recipe builds), resolved from the test environment's repositories and
//!   `-r`/`-k` (a subpackage also uses the main test's repositories and keys) and assembled
//!   with the same per-package layers as a build ([`melange2_environment::assemble`]).
//! * All steps of a case run in **one** ExecOp, each step in a shell process of its own
//!   ([`script`]): background services started by a step are still there for the next one,
//!   variables are not. The first failing step stops its case; the others still run.
//! * Packages without a `test:` block get one install check: they are installed together,
//!   and `/bin/sh -c true` runs when the environment has a shell.
//! * The [`TestReport`] holds one [`TestResult`] per case: pass or fail, duration and, for a
//!   failure, the step, exit code and the last lines that step printed. Test steps always
//!   run (their ExecOp ignores the cache) unless [`TestOptions::cache_results`] is set; the
//!   environment layers come from the cache like in builds.
//! * With [`TestOptions::bootstrap_rootfs`], every environment is that root filesystem with
//!   the packages it lacks layered over it ([`melange2_build::bootstrap`]); a test whose
//!   packages neither the rootfs nor a repository has fails, listing every one of them.
//! * A repository that cannot be loaded (missing directory, no answer) stops the run with an
//!   error naming it, before any test runs.

mod run;
pub mod script;
pub mod suite;

use std::path::PathBuf;
use std::time::Duration;

use melange2_buildkit::TlsFiles;
use melange2_buildkit::progress::ProgressMode;

pub use run::test;
pub use suite::{TestCase, TestKind};

/// Everything `melange2 test` takes.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// The build file (None: `melange.yaml` or `.melange.yaml` in the current directory).
    pub config: Option<PathBuf>,
    /// Replaces the main package's name in its test environment (e.g. `hello=1.0.0-r1`).
    pub package_name: Option<String>,
    /// APK architectures (empty: the host's).
    pub archs: Vec<String>,
    /// Extra repositories (`-r`), e.g. the `packages/` directory a build wrote.
    pub repository_append: Vec<String>,
    /// Extra trusted keys (`-k`).
    pub keyring_append: Vec<String>,
    /// Extra packages for every test environment.
    pub test_package_append: Vec<String>,
    /// Copied into `/home/build` of every test.
    pub source_dir: Option<PathBuf>,
    /// Download cache of the resolver.
    pub apk_cache_dir: Option<PathBuf>,
    /// `--env-file`s.
    pub env_files: Vec<PathBuf>,
    /// `--pipeline-dir`s.
    pub pipeline_dirs: Vec<PathBuf>,
    /// `set -x` in steps and their output shown live.
    pub debug: bool,
    /// Progress style.
    pub progress: ProgressMode,
    /// Accept unsigned repositories.
    pub ignore_signatures: bool,
    /// Let BuildKit answer a test whose inputs (packages, environment, steps) did not change
    /// from its cache instead of running it again.
    pub cache_results: bool,
    /// Layer every test environment over this root filesystem (a directory or a tar) instead
    /// of an empty one; packages it has installed count as present (as `build`'s
    /// `--bootstrap-rootfs`).
    pub bootstrap_rootfs: Option<PathBuf>,
    /// Daemon address (None: BUILDKIT_HOST, the default socket, or a local daemon).
    pub buildkit_addr: Option<String>,
    /// TLS for tcp:// addresses.
    pub tls: TlsFiles,
}

/// Errors that stop `melange2 test` before or outside a test case. A test that fails (its
/// environment cannot be resolved, a step fails) is a [`Failure`] in the report instead.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// Bad input: missing build file, source directory, …
    #[error("{0}")]
    Input(String),
    /// The build file does not compile.
    #[error("{0}")]
    Config(String),
    /// The daemon cannot run a requested architecture.
    #[error("{0}")]
    Platform(String),
    /// BuildKit failed outside a test (connection, session).
    #[error(transparent)]
    Buildkit(#[from] melange2_buildkit::BuildkitError),
    /// Building the LLB graph failed.
    #[error(transparent)]
    Llb(#[from] melange2_llb::LlbError),
}

impl From<melange2_build::BuildError> for TestError {
    fn from(e: melange2_build::BuildError) -> Self {
        use melange2_build::BuildError as B;
        match e {
            B::Input(m) => TestError::Input(m),
            B::Config(m) => TestError::Config(m),
            B::Platform(m) => TestError::Platform(m),
            B::Buildkit(b) => TestError::Buildkit(b),
            B::Llb(l) => TestError::Llb(l),
            other => TestError::Input(other.to_string()),
        }
    }
}

/// Why a test failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// One line: `step 2/3 "run: make check" failed with exit code 2`,
    /// `resolving the test environment: …`, …
    pub headline: String,
    /// The failing step's name, when a step failed.
    pub step: Option<String>,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// The last lines the failing step (or BuildKit operation) printed.
    pub log_tail: Vec<String>,
}

/// How a test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step passed (or the packages installed).
    Passed,
    /// It failed.
    Failed(Box<Failure>),
}

/// The result of one test case.
#[derive(Clone, Debug)]
pub struct TestResult {
    /// APK architecture.
    pub arch: String,
    /// Packages under test.
    pub packages: Vec<String>,
    /// Pipeline or install check.
    pub kind: TestKind,
    /// Names of its steps, in order.
    pub steps: Vec<String>,
    /// Resolution, assembly and solve.
    pub duration: Duration,
    /// Pass or fail.
    pub outcome: Outcome,
    /// A remark for the summary (e.g. an install check without a shell to run).
    pub note: Option<String>,
}

impl TestResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// The package column of the summary.
    pub fn label(&self) -> String {
        self.packages.join(", ")
    }
}

/// Everything `melange2 test` did.
#[derive(Clone, Debug, Default)]
pub struct TestReport {
    /// One result per case, in the order they ran.
    pub results: Vec<TestResult>,
    /// Architectures skipped because `package.target-architecture` excludes them.
    pub skipped_archs: Vec<String>,
}

impl TestReport {
    /// The failed cases.
    pub fn failures(&self) -> Vec<&TestResult> {
        self.results.iter().filter(|r| !r.passed()).collect()
    }

    /// Details of every failure: package, step, exit code and the step's last lines.
    pub fn failure_details(&self) -> String {
        let mut out = String::new();
        for r in self.failures() {
            let Outcome::Failed(f) = &r.outcome else {
                continue;
            };
            out.push_str(&format!(
                "FAIL {} ({} test, {}): {}\n",
                r.label(),
                r.kind,
                r.arch,
                f.headline
            ));
            if !f.log_tail.is_empty() {
                let whose = match &f.step {
                    Some(s) => format!("step {s:?}"),
                    None => "output".to_string(),
                };
                out.push_str(&format!(
                    "--- last {} lines of {whose} ---\n",
                    f.log_tail.len()
                ));
                for l in &f.log_tail {
                    out.push_str(l);
                    out.push('\n');
                }
                out.push_str("---\n");
            }
        }
        out
    }
}

impl std::fmt::Display for TestReport {
    /// The summary table: package × result with durations.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Test summary:")?;
        for a in &self.skipped_archs {
            writeln!(f, "  {a}: skipped (not in package.target-architecture)")?;
        }
        if self.results.is_empty() {
            return Ok(());
        }
        let rows: Vec<[String; 6]> = self
            .results
            .iter()
            .map(|r| {
                let detail = match (&r.outcome, &r.note) {
                    (Outcome::Failed(x), _) => x.headline.clone(),
                    (Outcome::Passed, Some(n)) => n.clone(),
                    (Outcome::Passed, None) => match r.steps.len() {
                        0 => String::new(),
                        1 => "1 step".to_string(),
                        n => format!("{n} steps"),
                    },
                };
                [
                    r.label(),
                    r.arch.clone(),
                    r.kind.to_string(),
                    if r.passed() { "pass" } else { "FAIL" }.to_string(),
                    format!("{:.1}s", r.duration.as_secs_f64()),
                    detail.lines().next().unwrap_or("").to_string(),
                ]
            })
            .collect();
        let head = ["PACKAGE", "ARCH", "TEST", "RESULT", "DURATION", ""];
        let mut w = [0usize; 5];
        for r in rows.iter().chain(std::iter::once(&head.map(String::from))) {
            for (i, c) in r.iter().take(5).enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |r: &[String; 6]| {
            format!(
                "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:>w4$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3],
                w4 = w[4]
            )
            .trim_end()
            .to_string()
        };
        writeln!(f, "{}", line(&head.map(String::from)))?;
        for r in &rows {
            writeln!(f, "{}", line(r))?;
        }
        let failed = self.failures().len();
        writeln!(
            f,
            "  {} passed, {} failed",
            self.results.len() - failed,
            failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_table_and_details() {
        let report = TestReport {
            results: vec![
                TestResult {
                    arch: "x86_64".into(),
                    packages: vec!["hello".into()],
                    kind: TestKind::Pipeline,
                    steps: vec!["a".into(), "b".into()],
                    duration: Duration::from_millis(1234),
                    outcome: Outcome::Passed,
                    note: None,
                },
                TestResult {
                    arch: "x86_64".into(),
                    packages: vec!["hello-dev".into()],
                    kind: TestKind::Pipeline,
                    steps: vec!["run: false".into()],
                    duration: Duration::from_millis(400),
                    outcome: Outcome::Failed(Box::new(Failure {
                        headline: "step 1/1 \"run: false\" failed with exit code 1".into(),
                        step: Some("run: false".into()),
                        exit_code: Some(1),
                        log_tail: vec!["oops".into()],
                    })),
                    note: None,
                },
            ],
            skipped_archs: vec!["aarch64".into()],
        };
        let t = report.to_string();
        assert!(t.contains("aarch64: skipped"), "{t}");
        assert!(
            t.contains("PACKAGE    ARCH    TEST      RESULT  DURATION"),
            "{t}"
        );
        assert!(
            t.contains("hello      x86_64  pipeline  pass        1.2s  2 steps"),
            "{t}"
        );
        assert!(
            t.contains("hello-dev  x86_64  pipeline  FAIL        0.4s  step 1/1"),
            "{t}"
        );
        assert!(t.contains("1 passed, 1 failed"), "{t}");
        let d = report.failure_details();
        assert!(
            d.starts_with("FAIL hello-dev (pipeline test, x86_64): step 1/1"),
            "{d}"
        );
        assert!(d.contains("--- last 1 lines of step \"run: false\" ---\noops\n"));
    }
}
