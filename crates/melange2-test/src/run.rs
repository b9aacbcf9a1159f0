//! The whole test run: compile → cases → per case resolve, assemble, one ExecOp, solve.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use melange2_build::{bootstrap, support};
use melange2_buildkit::progress::{Change, Progress, Tracker};
use melange2_buildkit::{BuildkitError, Client, SolveOptions, local};
use melange2_config::plan::{STEP_PATH, WORKSPACE};
use melange2_config::{Arch, CompileRequest};
use melange2_environment::{EnvironmentRequest, PackageFile, assemble};
use melange2_llb::{CopyOptions, Exec, FileActions, Mount, NetMode, OpOptions};
use melange2_llb::{Platform, State};

use crate::script::{self, RUNNER, SCRIPT_DIR};
use crate::suite::{CaseOptions, TestCase, TestKind, test_cases};
use crate::{Failure, Outcome, TestError, TestOptions, TestReport, TestResult};

/// `KEY=VALUE` lines of an env file: `export ` prefixes, quoted values (`\n` and `\"` in
/// double quotes), `#` comments.
fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let quoted = v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')));
        let v = if quoted && v.starts_with('"') {
            v[1..v.len() - 1].replace("\\n", "\n").replace("\\\"", "\"")
        } else if quoted {
            v[1..v.len() - 1].to_string()
        } else {
            match v.find(" #") {
                Some(i) => v[..i].trim_end().to_string(),
                None => v.to_string(),
            }
        };
        out.push((k.trim().to_string(), v));
    }
    out
}

/// `--source-dir` as a layer copied into every test's workspace.
struct Source {
    name: String,
    dir: PathBuf,
    state: State,
}

fn source_layer(dir: &Path) -> Result<Source, TestError> {
    let (name, dir, state) = support::source_layer(dir, "test-source")?;
    Ok(Source { name, dir, state })
}

/// Run the tests of a build file.
pub async fn test(opts: &TestOptions) -> Result<TestReport, TestError> {
    let config = support::find_config(opts.config.as_deref())?;
    let archs: Vec<String> = if opts.archs.is_empty() {
        vec![Platform::host().apk_arch().unwrap_or("x86_64").to_string()]
    } else {
        opts.archs.clone()
    };
    let source = opts.source_dir.as_deref().map(source_layer).transpose()?;
    let rootfs = match &opts.bootstrap_rootfs {
        Some(p) => Some(bootstrap::read_rootfs(p).map_err(TestError::Input)?),
        None => None,
    };

    // Compile every architecture first: a bad build file fails before anything runs.
    let mut report = TestReport::default();
    let mut cases = Vec::new();
    let case_opts = CaseOptions {
        package_name: opts.package_name.clone(),
        test_package_append: opts.test_package_append.clone(),
        repository_append: opts.repository_append.clone(),
        keyring_append: opts.keyring_append.clone(),
    };
    for a in &archs {
        let arch = Arch::parse(a).map_err(|e| TestError::Input(e.to_string()))?;
        let plan = melange2_config::compile_file(&CompileRequest {
            file: config.clone(),
            arch,
            pipeline_dirs: opts.pipeline_dirs.clone(),
            build_options: vec![],
            vars_file: None,
            env_files: opts.env_files.clone(),
        })
        .map_err(|e| TestError::Config(e.to_string()))?;
        if !plan.enabled {
            report.skipped_archs.push(plan.arch.clone());
            continue;
        }
        cases.extend(test_cases(&plan, &case_opts));
    }
    // --env-file: variables for every test step that neither the test environment nor the
    // step sets.
    let mut env_file_vars = Vec::new();
    for f in &opts.env_files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| TestError::Input(format!("env file {}: {e}", f.display())))?;
        env_file_vars.extend(parse_dotenv(&text));
    }
    for case in &mut cases {
        for s in &mut case.steps {
            for (k, v) in &env_file_vars {
                s.step.env.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if cases.is_empty() {
        return Ok(report);
    }
    // --env-file values are masked in the steps' output as `build` masks them
    // (docs/build.md, "Secrets").
    let masks = melange2_build::secrets::BuildSecrets::new(&[], &opts.env_files)
        .map_err(|e| TestError::Input(e.to_string()))?;

    let explicit = opts
        .buildkit_addr
        .clone()
        .or_else(|| std::env::var(melange2_buildkit::BUILDKIT_HOST_ENV).ok());
    let (client, _) = local::connect_or_start(explicit.as_deref(), &opts.tls).await?;
    let case_archs: Vec<String> = {
        let mut v: Vec<String> = cases.iter().map(|c| c.arch.clone()).collect();
        v.dedup();
        v
    };
    support::check_platforms(&client, &case_archs).await?;

    let multi = case_archs.len() > 1;
    let mut progress = Progress::new(opts.progress, opts.debug);
    let mut fatal = None;
    for case in &cases {
        let ctx = Ctx {
            client: &client,
            opts,
            source: source.as_ref(),
            rootfs: rootfs.as_ref(),
            masks: &masks,
            prefix: if multi {
                format!("[{}] ", case.arch)
            } else {
                String::new()
            },
        };
        match run_case(&ctx, case, &mut progress).await {
            Ok(r) => report.results.push(r),
            Err(e) => {
                fatal = Some(e);
                break;
            }
        }
    }
    progress.finish();
    match fatal {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

struct Ctx<'a> {
    client: &'a Client,
    opts: &'a TestOptions,
    source: Option<&'a Source>,
    rootfs: Option<&'a bootstrap::Rootfs>,
    /// Masks `--env-file` values in step output.
    masks: &'a melange2_build::secrets::BuildSecrets,
    prefix: String,
}

fn failed(headline: String) -> Outcome {
    Outcome::Failed(Box::new(Failure {
        headline,
        step: None,
        exit_code: None,
        log_tail: vec![],
    }))
}

/// Whether the environment has `/bin/sh`: a package ships `bin/sh` or `usr/bin/sh`, or lists
/// it among its busybox applets. Reading stops at the first hit.
fn has_shell(files: &[PathBuf]) -> bool {
    const SHELLS: [&str; 2] = ["bin/sh", "usr/bin/sh"];
    for f in files {
        let Ok(reader) = melange2_apk::PackageReader::open(f) else {
            continue;
        };
        let mut found = false;
        let _ = reader.read_data(|e, data| {
            if SHELLS.contains(&e.path.as_str()) {
                found = true;
            } else if e.path.starts_with("etc/busybox-paths.d/") {
                let mut text = String::new();
                let _ = data.take(1 << 20).read_to_string(&mut text);
                found = text
                    .lines()
                    .map(|l| l.trim().trim_start_matches('/'))
                    .any(|l| SHELLS.contains(&l));
            }
            if found {
                // Stop reading this package.
                Err(melange2_apk::Error::invalid("shell scan", "found"))
            } else {
                Ok(())
            }
        });
        if found {
            return true;
        }
    }
    false
}

/// The repositories of a case's environment; one that cannot be loaded (a missing
/// directory, a server that does not answer) stops the run.
async fn load_repositories(
    ctx: &Ctx<'_>,
    case: &TestCase,
) -> Result<melange2_resolve::Repositories, TestError> {
    let env = &case.environment;
    let repos = melange2_resolve::Repositories::load(&melange2_resolve::Options {
        arch: case.arch.clone(),
        repositories: env.repositories.clone(),
        keyring: env.keyring.clone(),
        ignore_signatures: ctx.opts.ignore_signatures,
        cache_dir: ctx.opts.apk_cache_dir.clone(),
        parallel_downloads: 0,
        ..Default::default()
    })
    .await
    .map_err(|e| TestError::Input(format!("test environment of {}: {e}", case.label())))?;
    Ok(match ctx.rootfs {
        Some(r) => repos.over(r.scan.installed.clone()),
        None => repos,
    })
}

/// Who asked for each package of a case's environment.
fn who_asked(case: &TestCase) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in &case.steps {
        for n in &s.step.needs {
            out.entry(n.clone())
                .or_insert_with(|| format!("needs of step {:?}", s.name));
        }
    }
    for p in &case.environment.packages {
        out.entry(p.clone())
            .or_insert_with(|| "the test environment".to_string());
    }
    out
}

/// Resolve and assemble a case's environment (over the bootstrap rootfs, if any); the
/// package files are returned for the shell check. A failure is the case's outcome.
async fn environment(
    ctx: &Ctx<'_>,
    case: &TestCase,
    repos: &melange2_resolve::Repositories,
    sde: i64,
    local_dirs: &mut BTreeMap<String, PathBuf>,
) -> Result<(melange2_environment::Environment, Vec<PathBuf>), Outcome> {
    let env = &case.environment;
    let base = match ctx.rootfs {
        Some(r) => {
            let who = format!("the test of {}", case.label());
            bootstrap::lock(repos, &who_asked(case), &who).map_err(|e| match e {
                melange2_build::BuildError::Resolve(m) => {
                    failed(format!("resolving the test environment: {m}"))
                }
                other => failed(other.to_string()),
            })?;
            let state = bootstrap::rootfs_layer(&r.path, &r.digest, local_dirs)
                .map_err(|e| failed(e.to_string()))?;
            Some(melange2_environment::Base {
                rootfs: state,
                scan: std::sync::Arc::clone(&r.scan),
            })
        }
        None => None,
    };
    let resolution = repos
        .resolve(&env.packages)
        .await
        .map_err(|e| failed(format!("resolving the test environment: {e}")))?;
    let (users, groups) = support::accounts(&env.accounts);
    let request = EnvironmentRequest {
        base,
        packages: resolution
            .packages
            .iter()
            .map(|p| PackageFile {
                entry: p.entry.clone(),
                file: p.file.clone(),
            })
            .collect(),
        world: resolution.world.clone(),
        repositories: resolution.repositories.clone(),
        keys: resolution.keys.clone(),
        users,
        groups,
        arch: case.arch.clone(),
        source_date_epoch: sde,
    };
    let assembled =
        assemble(&request).map_err(|e| failed(format!("assembling the test environment: {e}")))?;
    let files = resolution.packages.iter().map(|p| p.file.clone()).collect();
    Ok((assembled, files))
}

/// Whether a bootstrap rootfs has `/bin/sh` (directly or behind a usrmerge link).
fn rootfs_has_shell(scan: &melange2_rootfs::Scan) -> bool {
    let has = |p: &str| scan.entries.iter().any(|e| e.path == p);
    let bin_link = scan
        .entries
        .iter()
        .any(|e| e.path == "bin" && e.kind == melange2_rootfs::Kind::Symlink);
    has("bin/sh") || (bin_link && has("usr/bin/sh"))
}

/// Run one case; a failing test is an `Ok` result with a failure, only daemon trouble is an
/// error.
async fn run_case(
    ctx: &Ctx<'_>,
    case: &TestCase,
    progress: &mut Progress,
) -> Result<TestResult, TestError> {
    let start = Instant::now();
    let mut result = TestResult {
        arch: case.arch.clone(),
        packages: case.packages.clone(),
        kind: case.kind,
        steps: case.steps.iter().map(|s| s.name.clone()).collect(),
        duration: Default::default(),
        outcome: Outcome::Passed,
        note: None,
    };
    let outcome = run_case_inner(ctx, case, progress, &mut result).await?;
    result.outcome = outcome;
    result.duration = start.elapsed();
    Ok(result)
}

async fn run_case_inner(
    ctx: &Ctx<'_>,
    case: &TestCase,
    progress: &mut Progress,
    result: &mut TestResult,
) -> Result<Outcome, TestError> {
    let opts = ctx.opts;
    let t0 = Instant::now();
    let repos = load_repositories(ctx, case).await?;
    let sde = support::source_date_epoch_env()? as i64;
    let mut local_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let (assembled, files) = match environment(ctx, case, &repos, sde, &mut local_dirs).await {
        Ok(a) => a,
        Err(outcome) => return Ok(outcome),
    };
    tracing::debug!(case = %case.label(), elapsed = ?t0.elapsed(), "environment resolved and assembled");
    local_dirs.extend(assembled.local_dirs.clone());
    let platform = Platform::from_apk_arch(&case.arch)?;
    let label = case.label();
    let prefix = &ctx.prefix;

    // Fresh workspace: /home/build (with --source-dir), /tmp.
    let ts = Some(sde * 1_000_000_000);
    let tmp = State::scratch().file(
        FileActions::new().mkdir_with("/tmp", 0o777, true, None, ts),
        OpOptions::default(),
    )?;
    let mut fa = FileActions::new()
        .mkdir_with(WORKSPACE, 0o755, true, None, ts)
        .copy(
            &tmp,
            "/tmp",
            "/tmp",
            CopyOptions {
                mode: Some(0o1777),
                timestamp: ts,
                ..Default::default()
            },
        );
    if let Some(src) = ctx.source {
        local_dirs.insert(src.name.clone(), src.dir.clone());
        fa = fa.copy(
            &src.state,
            "/",
            WORKSPACE,
            CopyOptions {
                contents_only: true,
                ..Default::default()
            },
        );
    }
    let workspace = assembled.rootfs.file(
        fa,
        OpOptions::named(format!("{prefix}{label}: prepare test workspace")),
    )?;

    let exec_opts = |name: String| {
        OpOptions::named(name)
            .platform(platform.clone())
            .ignore_cache(!opts.cache_results)
    };
    let base_exec = |args: Vec<String>| {
        Exec::new(workspace.clone(), args)
            .cwd(WORKSPACE)
            .user("0:0")
            .network(NetMode::Sandbox)
            .env("PATH", STEP_PATH)
            .env("HOME", WORKSPACE)
    };
    let (target, exec_digest) = match case.kind {
        TestKind::Pipeline => {
            let mut files = FileActions::new();
            let names: Vec<String> = case.steps.iter().map(|s| s.name.clone()).collect();
            for (i, s) in case.steps.iter().enumerate() {
                let text = match script::step_script(&s.step, opts.debug) {
                    Ok(t) => t,
                    Err(e) => return Ok(failed(format!("step {:?}: {e}", s.name))),
                };
                files = files.mkfile_with(
                    &format!("/{}", script::step_file_name(i + 1)),
                    0o644,
                    text,
                    None,
                    ts,
                );
            }
            files = files.mkfile_with(
                &format!("/{RUNNER}"),
                0o644,
                script::runner(&names),
                None,
                ts,
            );
            let scripts = State::scratch().file(
                files,
                OpOptions::named(format!("{prefix}{label}: test scripts")),
            )?;
            let exec = base_exec(vec!["/bin/sh".into(), format!("{SCRIPT_DIR}/{RUNNER}")])
                .mount(Mount::bind(SCRIPT_DIR, scripts).readonly())
                .options(exec_opts(format!("{prefix}test {label}")))
                .build()?;
            let d = exec.digest().to_string();
            (exec.root(), Some(d))
        }
        TestKind::Install => {
            let shell = ctx.rootfs.is_some_and(|r| rootfs_has_shell(&r.scan))
                || tokio::task::spawn_blocking(move || has_shell(&files))
                    .await
                    .unwrap_or(false);
            if shell {
                let exec = base_exec(vec!["/bin/sh".into(), "-c".into(), "true".into()])
                    .options(exec_opts(format!("{prefix}install check {label}")))
                    .build()?;
                let d = exec.digest().to_string();
                (exec.root(), Some(d))
            } else {
                result.note = Some("installed; no /bin/sh in the environment to run".into());
                (workspace.clone(), None)
            }
        }
    };

    let def = target.marshal()?;
    let mut tracker = Tracker::default();
    let mut log = script::RunLog::new(case.steps.len());
    let mut on_status = |s: &StatusResponse| {
        progress.handle(s);
        for c in tracker.update(s) {
            if let Change::Log(d, line) = c
                && exec_digest.as_deref() == Some(d.as_str())
            {
                log.push(&line);
            }
        }
    };
    let solved = ctx
        .client
        .solve(
            &def,
            SolveOptions {
                local_dirs,
                redact: ctx.masks.redactor.clone(),
                ..Default::default()
            },
            &mut on_status,
        )
        .await;
    tracing::debug!(case = %case.label(), elapsed = ?t0.elapsed(), "solved");
    match solved {
        Ok(_) => Ok(Outcome::Passed),
        Err(BuildkitError::Solve(se)) => {
            let in_exec = se.vertex.is_some() && se.vertex == exec_digest;
            if in_exec && case.kind == TestKind::Pipeline {
                Ok(step_failure(case, &log, &se))
            } else {
                let what = se.step.clone().unwrap_or_else(|| "the test graph".into());
                Ok(Outcome::Failed(Box::new(Failure {
                    headline: format!("{what:?} failed: {}", se.message),
                    step: se.step.clone(),
                    exit_code: se.exit_code,
                    log_tail: se.log_tail.clone(),
                })))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Map a failed runner to the step that failed, with that step's own output.
fn step_failure(
    case: &TestCase,
    log: &script::RunLog,
    se: &melange2_buildkit::SolveError,
) -> Outcome {
    let total = case.steps.len();
    let tail = |v: &[String]| v.to_vec();
    let (index, code) = match (log.failed, log.last_started()) {
        (Some((i, c)), _) => (Some(i), Some(c)),
        (None, Some(i)) => (Some(i), se.exit_code),
        (None, None) => (None, se.exit_code),
    };
    let Some(i) = index else {
        // The runner did not get to the first step (no shell, …).
        let no_shell = log
            .preamble
            .iter()
            .any(|l| l.contains("\"/bin/sh\"") && l.contains("no such file"));
        let headline = if no_shell {
            "the test environment has no /bin/sh: add a shell (e.g. busybox) to \
             test.environment.contents.packages or pass --test-package-append busybox"
                .to_string()
        } else {
            format!("the test could not start: {}", se.message)
        };
        return Outcome::Failed(Box::new(Failure {
            headline,
            step: None,
            exit_code: se.exit_code,
            log_tail: tail(&log.preamble),
        }));
    };
    let name = case.steps.get(i - 1).map(|s| s.name.clone());
    let shown = name.clone().unwrap_or_default();
    let headline = match code {
        Some(c) => format!("step {i}/{total} {shown:?} failed with exit code {c}"),
        None => format!("step {i}/{total} {shown:?} failed: {}", se.message),
    };
    Outcome::Failed(Box::new(Failure {
        headline,
        step: name,
        exit_code: code,
        log_tail: log.steps.get(i - 1).map(|v| tail(v)).unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let v = parse_dotenv("# c\nA=1\nexport B=\"x y\\n\"\nC='z $D' \nD=v # comment\nbad\n");
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x y\n".into()),
                ("C".into(), "z $D".into()),
                ("D".into(), "v".into())
            ]
        );
    }

    #[test]
    fn missing_config_and_source_dir_are_input_errors() {
        let e = support::find_config(None).unwrap_err().to_string();
        assert!(e.contains("melange.yaml"), "{e}");
        let e = source_layer(Path::new("/nonexistent/src"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent/src"), "{e}");
    }
}
