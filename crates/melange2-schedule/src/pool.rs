//! The daemons builds run on. Daemons are contacted only when something must be built (an
//! up-to-date tree never connects): then every daemon is probed (Info, ListWorkers), the
//! unreachable ones are reported and left out, and every architecture of the run must have a
//! daemon that runs it, natively or, with a warning, through emulation. A build goes to the
//! least loaded eligible daemon with a free slot, ties broken by a stable affinity of the
//! recipe, so a recipe returns to the daemon that holds its cache. A daemon that fails
//! mid-build is marked down and probed again with a growing back-off.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use melange2_build::BuildError;
use melange2_buildkit::{Address, Client, TlsFiles, local};

/// Probes of a down daemon before it is given up for the run.
pub(crate) const MAX_PROBES: u32 = 5;

/// One daemon of the pool.
#[derive(Clone, Debug, Default)]
pub struct DaemonSpec {
    /// Address (None: `BUILDKIT_HOST`, the default socket, or a local daemon started on
    /// demand).
    pub address: Option<String>,
    /// TLS files for `tcp://` addresses.
    pub tls: TlsFiles,
    /// Builds at once on this daemon (0: the run's `--jobs`).
    pub max_jobs: usize,
    /// Free-form labels (shown by `buildkit info`).
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone)]
enum Health {
    /// Not contacted yet.
    Unknown,
    /// Answering; its native and emulated architectures.
    Up {
        client: Box<Client>,
        native: BTreeSet<String>,
        emulated: BTreeSet<String>,
    },
    /// Unreachable or failed mid-build; probed again at `retry`.
    Down {
        reason: String,
        retry: Instant,
        probes: u32,
    },
}

struct Daemon {
    spec: DaemonSpec,
    health: Mutex<Health>,
    running: AtomicUsize,
}

/// What a probe found.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The daemon's name (its address).
    pub name: String,
    /// Version and platforms, or why it cannot be used.
    pub result: Result<ProbeInfo, String>,
}

/// A reachable daemon.
#[derive(Clone, Debug)]
pub struct ProbeInfo {
    /// BuildKit version.
    pub version: String,
    /// Architectures its workers run natively (APK names).
    pub native: BTreeSet<String>,
    /// Architectures it runs through emulation.
    pub emulated: BTreeSet<String>,
}

/// The outcome of asking for a slot.
pub(crate) enum Slot {
    /// A slot on daemon `i`.
    Got(usize),
    /// Eligible daemons are busy (or down for now): try again later.
    Wait,
}

/// The daemons of a run.
pub struct Pool {
    daemons: Vec<Daemon>,
    no_emulation: bool,
    warned: Mutex<BTreeSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Architectures a CPU of the first runs without emulation.
const COMPAT: &[(&str, &[&str])] = &[("x86_64", &["x86"]), ("aarch64", &["armv7", "armhf"])];

/// Native and emulated architectures of a daemon's workers: BuildKit lists each worker's
/// native platform first, then the ones it can also run: the CPU's compatible modes (386 on
/// amd64) natively, the rest through binfmt emulation.
fn architectures(
    workers: &[melange2_buildkit::WorkerInfo],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut native, mut other) = (BTreeSet::new(), BTreeSet::new());
    for w in workers {
        for (i, p) in w.platforms.iter().enumerate() {
            if let Some(a) = p.apk_arch() {
                if i == 0 {
                    native.insert(a.to_string());
                } else {
                    other.insert(a.to_string());
                }
            }
        }
    }
    for (host, compatible) in COMPAT {
        if native.contains(*host) {
            for c in *compatible {
                if other.remove(*c) {
                    native.insert((*c).to_string());
                }
            }
        }
    }
    other.retain(|a| !native.contains(a));
    (native, other)
}

impl Pool {
    /// A pool of the given daemons; `no_emulation` refuses emulated architectures.
    pub fn new(specs: Vec<DaemonSpec>, no_emulation: bool) -> Pool {
        Pool {
            daemons: specs
                .into_iter()
                .map(|spec| Daemon {
                    spec,
                    health: Mutex::new(Health::Unknown),
                    running: AtomicUsize::new(0),
                })
                .collect(),
            no_emulation,
            warned: Mutex::new(BTreeSet::new()),
        }
    }

    /// Give every daemon without its own limit `jobs` slots.
    pub(crate) fn set_default_jobs(&mut self, jobs: usize) {
        for d in &mut self.daemons {
            if d.spec.max_jobs == 0 {
                d.spec.max_jobs = jobs.max(1);
            }
        }
    }

    /// How daemon `i` is named in progress and the summary.
    pub fn name(&self, i: usize) -> String {
        let d = &self.daemons[i];
        if let Health::Up { client, .. } = &*lock(&d.health) {
            return client.daemon().address.clone();
        }
        self.spec_name(i)
    }

    /// The daemons as configured.
    pub fn specs(&self) -> Vec<DaemonSpec> {
        self.daemons.iter().map(|d| d.spec.clone()).collect()
    }

    /// Number of daemons.
    pub fn len(&self) -> usize {
        self.daemons.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.daemons.is_empty()
    }

    async fn connect(spec: &DaemonSpec) -> Result<Client, String> {
        let timeouts = (Duration::from_secs(5), Duration::from_secs(10));
        match &spec.address {
            Some(a) => {
                let addr = Address::parse(a).map_err(|e| e.to_string())?;
                Client::connect_with_timeout(&addr, &spec.tls, timeouts.0, timeouts.1)
                    .await
                    .map_err(|e| e.to_string())
            }
            None => {
                let env = std::env::var(melange2_buildkit::BUILDKIT_HOST_ENV)
                    .ok()
                    .filter(|a| !a.trim().is_empty());
                local::connect_or_start(env.as_deref(), &spec.tls)
                    .await
                    .map(|(c, _)| c)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Probe daemon `i` and record its health.
    async fn probe_one(&self, i: usize) -> Probe {
        let d = &self.daemons[i];
        let result = async {
            let client = Self::connect(&d.spec).await?;
            let workers = client.workers().await.map_err(|e| e.to_string())?;
            let (native, emulated) = architectures(&workers);
            Ok::<_, String>((client, native, emulated))
        }
        .await;
        let mut h = lock(&d.health);
        let probe = match result {
            Ok((client, native, emulated)) => {
                let info = ProbeInfo {
                    version: client.daemon().version.clone(),
                    native: native.clone(),
                    emulated: emulated.clone(),
                };
                *h = Health::Up {
                    client: Box::new(client),
                    native,
                    emulated,
                };
                Ok(info)
            }
            Err(reason) => {
                let probes = match &*h {
                    Health::Down { probes, .. } => probes + 1,
                    _ => 1,
                };
                *h = Health::Down {
                    reason: reason.clone(),
                    retry: Instant::now() + backoff(probes),
                    probes,
                };
                Err(reason)
            }
        };
        drop(h);
        Probe {
            name: self.name(i),
            result: probe,
        }
    }

    /// Probe every daemon at once.
    pub async fn probe(&self) -> Vec<Probe> {
        futures::future::join_all((0..self.daemons.len()).map(|i| self.probe_one(i))).await
    }

    /// Before the first build: probe every daemon, report the unreachable ones, and check that
    /// every architecture of the run has a daemon (natively, or emulated with a warning).
    pub(crate) async fn prepare(&self, archs: &[String]) -> Result<(), BuildError> {
        let probes = self.probe().await;
        let mut up = 0;
        for p in &probes {
            match &p.result {
                Ok(_) => up += 1,
                Err(e) => tracing::warn!("daemon {} is left out: {e}", p.name),
            }
        }
        if up == 0 {
            let why: Vec<String> = probes
                .iter()
                .filter_map(|p| {
                    p.result
                        .as_ref()
                        .err()
                        .map(|e| format!("  {}: {e}", p.name))
                })
                .collect();
            return Err(BuildError::Input(format!(
                "no BuildKit daemon is reachable (nothing was built):\n{}",
                why.join("\n")
            )));
        }
        for a in archs {
            self.check_arch(a, &probes)?;
        }
        Ok(())
    }

    fn check_arch(&self, arch: &str, probes: &[Probe]) -> Result<(), BuildError> {
        let ok = |f: &dyn Fn(&ProbeInfo) -> bool| {
            probes
                .iter()
                .filter_map(|p| p.result.as_ref().ok().map(|i| (p, i)))
                .filter(|(_, i)| f(i))
                .map(|(p, _)| p.name.clone())
                .collect::<Vec<_>>()
        };
        if !ok(&|i| i.native.contains(arch)).is_empty() {
            return Ok(());
        }
        let emulating = ok(&|i| i.emulated.contains(arch));
        let supported: Vec<String> = probes
            .iter()
            .filter_map(|p| {
                let i = p.result.as_ref().ok()?;
                let mut all: Vec<String> = i.native.iter().cloned().collect();
                all.extend(i.emulated.iter().map(|a| format!("{a} (emulated)")));
                Some(format!("{}: {}", p.name, all.join(", ")))
            })
            .collect();
        if emulating.is_empty() {
            return Err(BuildError::Platform(format!(
                "no daemon runs {arch} (nothing was built); the daemons run {}. Add a daemon \
                 of that architecture or register QEMU binfmt handlers on a daemon's host",
                supported.join("; ")
            )));
        }
        if self.no_emulation {
            return Err(BuildError::Platform(format!(
                "no daemon runs {arch} natively and --no-emulation is set (nothing was built); \
                 {} would emulate it",
                emulating.join(", ")
            )));
        }
        if lock(&self.warned).insert(arch.to_string()) {
            tracing::warn!(
                "no daemon runs {arch} natively: building it through emulation on {} (slow; \
                 --no-emulation refuses this)",
                emulating.join(", ")
            );
        }
        Ok(())
    }

    /// Take a slot for a build of `arch`: among daemons that run it natively (else through
    /// emulation), the least loaded with a free slot; ties go to the daemon `affinity` (the
    /// recipe) hashes highest with, so a recipe keeps returning to the same daemon.
    pub(crate) fn acquire(&self, arch: &str, affinity: &str) -> Slot {
        let eligible = |native: bool| -> Vec<usize> {
            (0..self.daemons.len())
                .filter(|&i| match &*lock(&self.daemons[i].health) {
                    Health::Up {
                        native: n,
                        emulated: e,
                        ..
                    } => {
                        if native {
                            n.contains(arch)
                        } else {
                            e.contains(arch)
                        }
                    }
                    _ => false,
                })
                .collect()
        };
        let mut candidates = eligible(true);
        if candidates.is_empty() && !self.no_emulation {
            candidates = eligible(false);
        }
        let mut best: Option<(usize, u64, u64)> = None; // (daemon, load*1e6, -affinity)
        for i in candidates {
            let d = &self.daemons[i];
            let running = d.running.load(Ordering::SeqCst);
            if running >= d.spec.max_jobs {
                continue;
            }
            let load = (running as u64 * 1_000_000) / d.spec.max_jobs.max(1) as u64;
            let mut h = DefaultHasher::new();
            (affinity, self.name(i)).hash(&mut h);
            let score = u64::MAX - h.finish();
            if best.is_none_or(|(_, l, s)| (load, score) < (l, s)) {
                best = Some((i, load, score));
            }
        }
        match best {
            Some((i, ..)) => {
                self.daemons[i].running.fetch_add(1, Ordering::SeqCst);
                Slot::Got(i)
            }
            None => Slot::Wait,
        }
    }

    /// Give a slot back.
    pub(crate) fn release(&self, i: usize) {
        self.daemons[i].running.fetch_sub(1, Ordering::SeqCst);
    }

    /// The client of daemon `i` (probed before).
    pub(crate) fn client(&self, i: usize) -> Result<Client, BuildError> {
        match &*lock(&self.daemons[i].health) {
            Health::Up { client, .. } => Ok((**client).clone()),
            Health::Down { reason, .. } => Err(BuildError::Input(format!(
                "daemon {} is down: {reason}",
                self.name(i)
            ))),
            Health::Unknown => Err(BuildError::Input(format!(
                "daemon {} was not probed",
                self.name(i)
            ))),
        }
    }

    /// After a build on daemon `i` failed other than in a step: does the daemon still answer?
    /// `Err` says why not.
    pub(crate) async fn still_up(&self, i: usize) -> Result<(), String> {
        let client = self.client(i).map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(10), client.workers()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 10 s".to_string()),
        }
    }

    /// Daemon `i` failed mid-build: leave it out until a probe finds it again.
    pub(crate) fn mark_down(&self, i: usize, reason: &str) {
        let mut h = lock(&self.daemons[i].health);
        if matches!(&*h, Health::Up { .. }) {
            tracing::warn!("daemon {} went away: {reason}", self.spec_name(i));
            *h = Health::Down {
                reason: reason.to_string(),
                retry: Instant::now() + backoff(0),
                probes: 0,
            };
        }
    }

    fn spec_name(&self, i: usize) -> String {
        self.daemons[i]
            .spec
            .address
            .clone()
            .unwrap_or_else(|| "default daemon".to_string())
    }

    /// When the next down daemon is due for a probe (None: none will be probed again).
    pub(crate) fn next_probe(&self) -> Option<Instant> {
        self.daemons
            .iter()
            .filter_map(|d| match &*lock(&d.health) {
                Health::Down { retry, probes, .. } if *probes < MAX_PROBES => Some(*retry),
                _ => None,
            })
            .min()
    }

    /// Probe the down daemons that are due.
    pub(crate) async fn reprobe(&self) {
        let due: Vec<usize> = (0..self.daemons.len())
            .filter(|&i| {
                matches!(&*lock(&self.daemons[i].health),
                    Health::Down { retry, probes, .. } if *probes < MAX_PROBES && *retry <= Instant::now())
            })
            .collect();
        for i in due {
            let p = self.probe_one(i).await;
            match p.result {
                Ok(_) => tracing::warn!("daemon {} is back", p.name),
                Err(e) => tracing::debug!("daemon {} still down: {e}", p.name),
            }
        }
    }

    /// Is any daemon up that could run `arch`?
    pub(crate) fn can_run(&self, arch: &str) -> bool {
        self.daemons.iter().any(|d| match &*lock(&d.health) {
            Health::Up {
                native, emulated, ..
            } => native.contains(arch) || (!self.no_emulation && emulated.contains(arch)),
            _ => false,
        })
    }
}

/// 1 s, 2 s, 4 s, … at most 30 s.
fn backoff(probes: u32) -> Duration {
    Duration::from_secs((1u64 << probes.min(5)).min(30))
}

/// One daemon of a `--builders` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BuilderEntry {
    address: String,
    #[serde(default)]
    tls: Option<BuilderTls>,
    #[serde(default)]
    max_jobs: Option<usize>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BuilderTls {
    ca: Option<std::path::PathBuf>,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
    server_name: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum BuildersFile {
    List(Vec<BuilderEntry>),
    Map { builders: Vec<BuilderEntry> },
}

pub(crate) fn load_builders(path: &std::path::Path) -> Result<Vec<DaemonSpec>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--builders {}: {e}", path.display()))?;
    // Decode strictly first so that errors name the line and the unknown key.
    let entries = match serde_norway::from_str::<Vec<BuilderEntry>>(&text) {
        Ok(list) => list,
        Err(list_err) => match serde_norway::from_str::<BuildersFile>(&text) {
            Ok(BuildersFile::Map { builders }) => builders,
            Ok(BuildersFile::List(list)) => list,
            Err(_) => return Err(format!("--builders {}: {list_err}", path.display())),
        },
    };
    if entries.is_empty() {
        return Err(format!("--builders {}: no daemon listed", path.display()));
    }
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let rel =
        |p: Option<std::path::PathBuf>| p.map(|p| if p.is_relative() { base.join(p) } else { p });
    let mut out = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        Address::parse(&e.address)
            .map_err(|err| format!("--builders {}: daemon {}: {err}", path.display(), i + 1))?;
        if e.max_jobs == Some(0) {
            return Err(format!(
                "--builders {}: daemon {} ({}): max-jobs must be at least 1",
                path.display(),
                i + 1,
                e.address
            ));
        }
        let tls = e.tls.map_or_else(TlsFiles::default, |t| TlsFiles {
            ca: rel(t.ca),
            cert: rel(t.cert),
            key: rel(t.key),
            server_name: t.server_name,
        });
        out.push(DaemonSpec {
            address: Some(e.address),
            tls,
            max_jobs: e.max_jobs.unwrap_or(0),
            labels: e.labels,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("builders.yaml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn builders_files_list_daemons() {
        let (d, p) = write(
            "- address: tcp://127.0.0.1:1234\n  tls: {ca: ca.pem, server-name: bk}\n  \
             max-jobs: 3\n  labels: {zone: a}\n- address: unix:///run/b.sock\n",
        );
        let specs = load_builders(&p).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].max_jobs, 3);
        assert_eq!(specs[0].tls.ca, Some(d.path().join("ca.pem")));
        assert_eq!(specs[0].labels["zone"], "a");
        assert_eq!(specs[1].address.as_deref(), Some("unix:///run/b.sock"));
        let (_d, p) = write("builders:\n  - address: unix:///run/c.sock\n");
        assert_eq!(load_builders(&p).unwrap().len(), 1);
    }

    #[test]
    fn bad_builders_files_are_clear_errors() {
        for (text, want) in [
            ("- address: unix:///a\n  maxjobs: 2\n", "maxjobs"),
            ("- address: ftp://x\n", "daemon 1"),
            ("- address: unix:///a\n  max-jobs: 0\n", "at least 1"),
            ("[]\n", "no daemon"),
        ] {
            let (_d, p) = write(text);
            let e = load_builders(&p).unwrap_err();
            assert!(
                e.contains("builders.yaml") && e.contains(want),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn compatible_modes_are_native() {
        let p = |s: &str| melange2_buildkit::llb::Platform::parse(s).unwrap();
        let w = melange2_buildkit::WorkerInfo {
            id: "w".into(),
            platforms: vec![p("linux/amd64"), p("linux/386"), p("linux/arm64")],
            labels: Default::default(),
        };
        let (native, emulated) = architectures(&[w]);
        assert_eq!(
            native,
            BTreeSet::from(["x86".to_string(), "x86_64".to_string()])
        );
        assert_eq!(emulated, BTreeSet::from(["aarch64".to_string()]));
    }
}
