//! Which tests a compiled plan asks for: one case per `test:` block (main package first, then
//! each subpackage in file order, each with its own environment) plus one install check for
//! the packages that have no `test:` block.

use melange2_config::plan::{Accounts, Environment, Plan, Step};

/// What a case checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKind {
    /// The steps of a `test:` block.
    Pipeline,
    /// Packages without a `test:` block: they install together (and a shell runs, when the
    /// environment has one).
    Install,
}

impl std::fmt::Display for TestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TestKind::Pipeline => "pipeline",
            TestKind::Install => "install",
        })
    }
}

/// A step of a test, with the name progress output and failures use.
#[derive(Clone, Debug, PartialEq)]
pub struct TestStep {
    /// Display name (`uses: python/test`, `check the greeting`, `run: hello | grep …`).
    pub name: String,
    /// The compiled step (its own `runs`; nested steps are listed separately).
    pub step: Step,
}

/// The environment of one case, before resolution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseEnvironment {
    /// Package constraints (the packages under test pinned to the recipe's version).
    pub packages: Vec<String>,
    /// Repositories, in priority order.
    pub repositories: Vec<String>,
    /// Trusted keys.
    pub keyring: Vec<String>,
    /// Users and groups.
    pub accounts: Accounts,
}

/// One test to run in a fresh state.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    /// APK architecture.
    pub arch: String,
    /// The packages under test (one for a pipeline; every untested package for an install
    /// check).
    pub packages: Vec<String>,
    /// What it checks.
    pub kind: TestKind,
    /// Its environment.
    pub environment: CaseEnvironment,
    /// Steps in order (empty for an install check).
    pub steps: Vec<TestStep>,
}

impl TestCase {
    /// The name shown in the summary: the package, or the installed packages joined by `, `.
    pub fn label(&self) -> String {
        self.packages.join(", ")
    }
}

/// What the command line adds to every case.
#[derive(Clone, Debug, Default)]
pub struct CaseOptions {
    /// Replaces the main package's name in its test environment (melange's second argument,
    /// e.g. `hello=1.0.0-r1`).
    pub package_name: Option<String>,
    /// Extra packages for every test environment.
    pub test_package_append: Vec<String>,
    /// Extra repositories (`-r`).
    pub repository_append: Vec<String>,
    /// Extra keys (`-k`).
    pub keyring_append: Vec<String>,
}

pub use melange2_build::graph::step_name;

/// The steps of a test pipeline, flattened, with their display names.
pub fn test_steps(pipeline: &[Step]) -> Vec<TestStep> {
    melange2_build::graph::exec_steps(pipeline)
        .into_iter()
        .map(|(s, u)| {
            let mut step = s.clone();
            step.pipeline.clear();
            TestStep {
                name: step_name(s, u),
                step,
            }
        })
        .collect()
}

fn push_unique(out: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !i.trim().is_empty() && !out.contains(&i) {
            out.push(i);
        }
    }
}

/// Packages of this recipe named bare in `packages` are pinned to the recipe's version, so the
/// test runs against what the recipe builds, not whatever else a repository offers. The main
/// package's entry is replaced by `package_name` when given.
fn pin(plan: &Plan, packages: &[String], opts: &CaseOptions) -> Vec<String> {
    let version = &plan.package.full_version;
    let own: Vec<&str> = plan.package_names();
    let mut out = Vec::new();
    for p in packages {
        let p = p.trim();
        let pinned = if p == plan.package.name
            && let Some(given) = &opts.package_name
        {
            given.clone()
        } else if own.contains(&p) {
            format!("{p}={version}")
        } else {
            p.to_string()
        };
        push_unique(&mut out, [pinned]);
    }
    push_unique(&mut out, opts.test_package_append.iter().cloned());
    out
}

fn environment(
    plan: &Plan,
    own: &Environment,
    inherit: Option<&Environment>,
    packages: &[String],
    opts: &CaseOptions,
) -> CaseEnvironment {
    let mut repositories = own.repositories.clone();
    let mut keyring = own.keyring.clone();
    if let Some(parent) = inherit {
        push_unique(&mut repositories, parent.repositories.iter().cloned());
        push_unique(&mut keyring, parent.keyring.iter().cloned());
    }
    push_unique(&mut repositories, opts.repository_append.iter().cloned());
    push_unique(&mut keyring, opts.keyring_append.iter().cloned());
    CaseEnvironment {
        packages: pin(plan, packages, opts),
        repositories,
        keyring,
        accounts: own.accounts.clone(),
    }
}

/// The cases of one compiled plan: the main package's test, each subpackage's test (its own
/// environment; repositories and keys of the main test environment are inherited), then one
/// install check of every package without a `test:` block.
pub fn test_cases(plan: &Plan, opts: &CaseOptions) -> Vec<TestCase> {
    let mut cases = Vec::new();
    let main_env = plan.test.as_ref().map(|t| &t.environment);
    if let Some(t) = &plan.test {
        cases.push(TestCase {
            arch: plan.arch.clone(),
            packages: vec![plan.package.name.clone()],
            kind: TestKind::Pipeline,
            environment: environment(plan, &t.environment, None, &t.environment.packages, opts),
            steps: test_steps(&t.pipeline),
        });
    }
    let mut untested = Vec::new();
    if plan.test.is_none() {
        untested.push(plan.package.name.clone());
    }
    for sp in &plan.subpackages {
        match &sp.test {
            Some(t) => cases.push(TestCase {
                arch: plan.arch.clone(),
                packages: vec![sp.package.name.clone()],
                kind: TestKind::Pipeline,
                environment: environment(
                    plan,
                    &t.environment,
                    main_env,
                    &t.environment.packages,
                    opts,
                ),
                steps: test_steps(&t.pipeline),
            }),
            None => untested.push(sp.package.name.clone()),
        }
    }
    if !untested.is_empty() {
        let own = Environment::default();
        cases.push(TestCase {
            arch: plan.arch.clone(),
            packages: untested.clone(),
            kind: TestKind::Install,
            environment: environment(plan, &own, main_env, &untested, opts),
            steps: vec![],
        });
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use melange2_config::{Arch, CompileRequest};

    fn plan(yaml: &str) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.yaml");
        std::fs::write(&f, yaml).unwrap();
        melange2_config::compile_file(&CompileRequest {
            file: f,
            arch: Arch::parse("x86_64").unwrap(),
            pipeline_dirs: vec![],
            build_options: vec![],
            vars_file: None,
            env_files: vec![],
        })
        .unwrap()
    }

    const RECIPE: &str = r#"
package:
  name: hello
  version: 1.2.3
  epoch: 4
test:
  environment:
    contents:
      repositories: [https://example.invalid/main]
      keyring: [https://example.invalid/main.rsa.pub]
      packages: [busybox]
    environment:
      GREETING: hi
  pipeline:
    - name: greet
      runs: hello
    - uses: python/test
      with:
        command: python3 -c 1
subpackages:
  - name: hello-doc
  - name: hello-dev
    test:
      environment:
        contents:
          packages: [grep, hello]
      pipeline:
        - runs: |
            grep -q x /etc/passwd
            echo more
          pipeline:
            - runs: echo nested
  - name: hello-extra
"#;

    #[test]
    fn cases_per_test_block_plus_install_check() {
        let p = plan(RECIPE);
        let cases = test_cases(
            &p,
            &CaseOptions {
                repository_append: vec!["./packages".into()],
                keyring_append: vec!["melange.rsa.pub".into()],
                test_package_append: vec!["strace".into()],
                ..Default::default()
            },
        );
        assert_eq!(cases.len(), 3);
        let main = &cases[0];
        assert_eq!(main.kind, TestKind::Pipeline);
        assert_eq!(main.packages, vec!["hello"]);
        assert!(
            main.environment
                .packages
                .contains(&"hello=1.2.3-r4".to_string())
        );
        assert!(main.environment.packages.contains(&"busybox".to_string()));
        // `needs` of the expanded python/test pipeline.
        assert!(
            main.environment
                .packages
                .contains(&"wolfi-base".to_string())
        );
        assert!(main.environment.packages.contains(&"strace".to_string()));
        assert_eq!(
            main.environment.repositories,
            vec!["https://example.invalid/main", "./packages"]
        );
        assert_eq!(
            main.steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            vec!["greet", "uses: python/test"]
        );
        assert_eq!(main.steps[0].step.env.get("GREETING").unwrap(), "hi");

        // The subpackage's own environment; the main test's repositories are inherited.
        let dev = &cases[1];
        assert_eq!(dev.packages, vec!["hello-dev"]);
        let pk = &dev.environment.packages;
        assert!(pk.contains(&"grep".to_string()), "{pk:?}");
        assert!(pk.contains(&"hello-dev=1.2.3-r4".to_string()), "{pk:?}");
        assert!(pk.contains(&"hello=1.2.3-r4".to_string()), "{pk:?}");
        assert!(!pk.contains(&"busybox".to_string()), "{pk:?}");
        assert_eq!(
            dev.environment.repositories,
            vec!["https://example.invalid/main", "./packages"]
        );
        assert_eq!(
            dev.environment.keyring,
            vec!["https://example.invalid/main.rsa.pub", "melange.rsa.pub"]
        );
        // Nested steps are separate steps, in order.
        assert_eq!(
            dev.steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            vec!["run: grep -q x /etc/passwd", "run: echo nested"]
        );
        assert!(dev.steps[0].step.pipeline.is_empty());

        // Untested packages install together.
        let inst = &cases[2];
        assert_eq!(inst.kind, TestKind::Install);
        assert_eq!(inst.packages, vec!["hello-doc", "hello-extra"]);
        assert_eq!(
            inst.environment.packages,
            vec!["hello-doc=1.2.3-r4", "hello-extra=1.2.3-r4", "strace"]
        );
        assert!(inst.steps.is_empty());
        assert_eq!(inst.label(), "hello-doc, hello-extra");
    }

    #[test]
    fn package_name_replaces_the_main_package() {
        let p = plan(RECIPE);
        let cases = test_cases(
            &p,
            &CaseOptions {
                package_name: Some("hello=1.2.3-r3".into()),
                ..Default::default()
            },
        );
        let pk = &cases[0].environment.packages;
        assert!(pk.contains(&"hello=1.2.3-r3".to_string()), "{pk:?}");
        assert!(!pk.contains(&"hello=1.2.3-r4".to_string()), "{pk:?}");
    }

    #[test]
    fn untested_recipe_is_one_install_check_with_subpackages() {
        let p = plan(
            "package: {name: lonely, version: '1', epoch: 0}\nsubpackages:\n  - name: lonely-doc\n",
        );
        let cases = test_cases(&p, &CaseOptions::default());
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].kind, TestKind::Install);
        assert_eq!(
            cases[0].environment.packages,
            vec!["lonely=1-r0", "lonely-doc=1-r0"]
        );
        assert!(cases[0].environment.repositories.is_empty());
    }

    #[test]
    fn names_match_the_build() {
        let mut s = test_steps(&plan(RECIPE).test.unwrap().pipeline)[1]
            .step
            .clone();
        s.name = Some("custom".into());
        assert_eq!(step_name(&s, Some("x/y")), "uses: x/y (custom)");
        s.name = None;
        s.runs = Some("\n\n  make check\nmore".into());
        assert_eq!(step_name(&s, None), "run: make check");
        s.runs = Some("x".repeat(200));
        assert_eq!(step_name(&s, None).chars().count(), 123);
    }
}
