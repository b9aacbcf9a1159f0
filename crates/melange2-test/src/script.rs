//! The scripts of one test and the reading of its log.
//!
//! All steps of a test run in one ExecOp: a runner script starts each step in a shell of its
//! own (`/bin/sh step-N.sh`), one after the other, in the same container. A server a step
//! starts in the background keeps running for the next steps, while variables, the working
//! directory and shell options stay inside their step. Before each step the runner prints a
//! marker line, after a failing step a failure line with the exit code, and it stops there;
//! a step's standard error is merged into its standard output, so the log between two markers
//! is exactly that step's output.

use melange2_config::plan::{Step, shell_single_quote};

/// Where the scripts are mounted (read-only) inside the test container.
pub const SCRIPT_DIR: &str = "/run/melange2-test";
/// The runner inside [`SCRIPT_DIR`].
pub const RUNNER: &str = "run.sh";
/// Prefix of the runner's marker lines.
pub const MARKER: &str = "melange2-test: ";

/// File name of step `n` (1-based) inside [`SCRIPT_DIR`].
pub fn step_file_name(n: usize) -> String {
    format!("step-{n}.sh")
}

fn valid_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The script of one step: its complete environment exported, then melange's step wrapper
/// (`set -e`, create and enter the working directory, the `runs` text).
///
/// # Errors
/// A variable name the shell cannot export (the message names it).
pub fn step_script(step: &Step, debug: bool) -> Result<String, String> {
    let mut out = String::new();
    for (k, v) in &step.env {
        if !valid_env_name(k) {
            return Err(format!(
                "environment variable {k:?} is not a valid shell variable name"
            ));
        }
        out.push_str(&format!("export {k}={}\n", shell_single_quote(v)));
    }
    out.push_str(&step.script(debug));
    out.push('\n');
    Ok(out)
}

/// The runner: each step in its own shell, a marker before it, stop at the first failure.
pub fn runner(step_names: &[String]) -> String {
    let total = step_names.len();
    let mut out = String::from(
        "# melange2 test runner: each step runs in a shell of its own, in this process tree\n",
    );
    for (i, name) in step_names.iter().enumerate() {
        let n = i + 1;
        let marker = format!("{MARKER}step {n}/{total}: {name}");
        out.push_str(&format!(
            "printf '%s\\n' {marker}\n\
             /bin/sh {dir}/{file} 2>&1\n\
             m2_rc=$?\n\
             if [ \"$m2_rc\" -ne 0 ]; then\n  \
               printf '{MARKER}step {n}/{total} failed with exit code %s\\n' \"$m2_rc\"\n  \
               exit \"$m2_rc\"\n\
             fi\n",
            marker = shell_single_quote(&marker),
            dir = SCRIPT_DIR,
            file = step_file_name(n),
        ));
    }
    out.push_str(&format!(
        "printf '%s\\n' {}\nexit 0\n",
        shell_single_quote(&format!("{MARKER}{total}/{total} steps passed"))
    ));
    out
}

/// What the log of a test says. Only the last [`KEEP_LINES`] lines of each step (and of the
/// preamble) are kept, so a chatty test does not grow memory without bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunLog {
    /// Steps in the runner.
    total: usize,
    /// Last lines of each step that started (index 0 is step 1), markers removed.
    pub steps: Vec<Vec<String>>,
    /// Last lines before the first marker (the runner itself failing to start, …).
    pub preamble: Vec<String>,
    /// The failing step (1-based) and its exit code.
    pub failed: Option<(usize, i32)>,
    /// The runner reported that every step passed.
    pub passed: bool,
}

/// Lines kept per step.
pub const KEEP_LINES: usize = 40;

fn keep(v: &mut Vec<String>, line: &str) {
    if v.len() == KEEP_LINES {
        v.remove(0);
    }
    v.push(line.to_string());
}

impl RunLog {
    /// An empty log of a runner with `total` steps.
    pub fn new(total: usize) -> Self {
        Self {
            total,
            ..Default::default()
        }
    }

    /// The last step that started (1-based).
    pub fn last_started(&self) -> Option<usize> {
        (!self.steps.is_empty()).then_some(self.steps.len())
    }

    /// Take one line of the runner's output.
    pub fn push(&mut self, line: &str) {
        let total = self.total;
        if let Some(rest) = line.strip_prefix(MARKER) {
            if let Some(r) = rest.strip_prefix("step ") {
                let next = self.steps.len() + 1;
                // Start: "N/T: name".
                if r.starts_with(&format!("{next}/{total}: ")) {
                    self.steps.push(Vec::new());
                    return;
                }
                // Failure: "N/T failed with exit code C".
                let cur = self.steps.len();
                if let Some(code) = r
                    .strip_prefix(&format!("{cur}/{total} failed with exit code "))
                    .and_then(|c| c.trim().parse::<i32>().ok())
                    && cur > 0
                {
                    self.failed = Some((cur, code));
                    return;
                }
            } else if rest == format!("{total}/{total} steps passed") {
                self.passed = true;
                return;
            }
        }
        match self.steps.last_mut() {
            Some(s) => keep(s, line),
            None => keep(&mut self.preamble, line),
        }
    }
}

/// Split the log of a runner with `total` steps into the output of each step.
pub fn parse_log(lines: &[String], total: usize) -> RunLog {
    let mut log = RunLog::new(total);
    for line in lines {
        log.push(line);
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::process::Command;

    fn step(runs: &str, env: &[(&str, &str)]) -> Step {
        Step {
            name: None,
            uses: None,
            uses_origin: None,
            with: BTreeMap::new(),
            label: None,
            runs: Some(runs.into()),
            workdir: "/tmp".into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            needs: vec![],
            required_steps: None,
            retry: None,
            pipeline: vec![],
        }
    }

    /// Run a runner and its steps with the host's shell, with SCRIPT_DIR replaced.
    fn run(steps: &[Step]) -> (i32, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (1..=steps.len()).map(|i| format!("s{i}")).collect();
        for (i, s) in steps.iter().enumerate() {
            std::fs::write(
                dir.path().join(step_file_name(i + 1)),
                step_script(s, false).unwrap(),
            )
            .unwrap();
        }
        let r = runner(&names).replace(SCRIPT_DIR, &dir.path().display().to_string());
        let out = Command::new("/bin/sh").arg("-c").arg(&r).output().unwrap();
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        (out.status.code().unwrap_or(-1), lines)
    }

    #[test]
    fn steps_share_processes_but_not_variables() {
        let (code, lines) = run(&[
            step(
                "export LEAK=1\nFOO=local\necho \"own=$OWN\"\necho err >&2",
                &[("OWN", "it's mine")],
            ),
            step("echo \"leak=${LEAK:-none} own=${OWN:-none}\"; pwd", &[]),
        ]);
        assert_eq!(code, 0, "{lines:?}");
        let log = parse_log(&lines, 2);
        assert!(log.passed);
        assert_eq!(log.failed, None);
        assert_eq!(log.steps[0], vec!["own=it's mine", "err"]);
        assert_eq!(log.steps[1], vec!["leak=none own=none", "/tmp"]);
    }

    #[test]
    fn first_failure_stops_with_its_code() {
        let (code, lines) = run(&[
            step("echo one", &[]),
            step("echo two\nfalse\necho unreachable", &[]),
            step("echo three", &[]),
        ]);
        assert_eq!(code, 1);
        let log = parse_log(&lines, 3);
        assert_eq!(log.failed, Some((2, 1)));
        assert!(!log.passed);
        assert_eq!(log.steps.len(), 2);
        assert_eq!(log.steps[1], vec!["two"]);
        assert_eq!(log.last_started(), Some(2));

        let (code, lines) = run(&[step("exit 7", &[])]);
        assert_eq!(code, 7);
        assert_eq!(parse_log(&lines, 1).failed, Some((1, 7)));
    }

    #[test]
    fn bad_variable_names_are_refused() {
        let e = step_script(&step("true", &[("A-B", "x")]), false).unwrap_err();
        assert!(e.contains("\"A-B\""), "{e}");
        assert!(step_script(&step("true", &[("_A1", "x")]), false).is_ok());
    }

    #[test]
    fn marker_like_output_does_not_confuse() {
        let lines: Vec<String> = [
            "noise",
            "melange2-test: step 1/2: a",
            "melange2-test: step 5/2: fake",
            "melange2-test: step 1/2 failed with exit code x",
            "melange2-test: step 2/2: b",
            "out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = parse_log(&lines, 2);
        assert_eq!(log.preamble, vec!["noise"]);
        assert_eq!(log.steps.len(), 2);
        assert_eq!(log.steps[0].len(), 2);
        assert_eq!(log.failed, None);
        assert!(!log.passed);
    }

    #[test]
    fn only_the_last_lines_are_kept() {
        let mut log = RunLog::new(1);
        log.push("melange2-test: step 1/1: chatty");
        for i in 0..1000 {
            log.push(&format!("line {i}"));
        }
        assert_eq!(log.steps[0].len(), KEEP_LINES);
        assert_eq!(log.steps[0].last().unwrap(), "line 999");
        assert_eq!(log.steps[0][0], format!("line {}", 1000 - KEEP_LINES));
    }
}
