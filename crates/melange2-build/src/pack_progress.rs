//! The packaging of a build as a visible step (docs/build.md, "Progress"): the client reads
//! BuildKit's tar export and writes the packages itself, which takes a while for a large
//! package. [`CountingReader`] counts the bytes the packager reads; [`PackagingStep`] reports
//! them as a `melange2_buildkit::progress::ClientStep` on the build's status stream while the
//! work runs ([`PackagingStep::during`]), then each package's size and the duration.

use std::future::Future;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use melange2_buildkit::progress::{ClientStep, human_bytes};

/// How often the bytes read so far are reported.
const TICK: Duration = Duration::from_millis(500);

/// Bytes read and when the first one came, shared by the reader and the step.
#[derive(Clone, Default)]
struct Counter {
    bytes: Arc<AtomicU64>,
    first: Arc<OnceLock<SystemTime>>,
}

/// A reader that counts what passes through it.
pub(crate) struct CountingReader<R> {
    inner: R,
    counter: Counter,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.counter.first.get_or_init(SystemTime::now);
            self.counter.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The packaging step of one build: it starts with the first byte of the export.
pub(crate) struct PackagingStep {
    id: String,
    name: String,
    counter: Counter,
    step: Option<ClientStep>,
    reported: u64,
}

type Status<'a> = &'a (dyn Fn(StatusResponse) + Send + Sync);

impl PackagingStep {
    /// The step of package `package` for `arch`, and `reader` wrapped to count for it.
    pub fn new<R: Read>(package: &str, arch: &str, reader: R) -> (Self, CountingReader<R>) {
        let counter = Counter::default();
        let step = PackagingStep {
            id: format!("package:{package}:{arch}"),
            name: format!("package {package}"),
            counter: counter.clone(),
            step: None,
            reported: 0,
        };
        (
            step,
            CountingReader {
                inner: reader,
                counter,
            },
        )
    }

    /// Report the bytes read since the last report (and the start, at the first byte).
    fn tick(&mut self, status: Status<'_>) {
        let Some(first) = self.counter.first.get() else {
            return;
        };
        let step = self.step.get_or_insert_with(|| {
            let s = ClientStep::new(&self.id, &self.name, *first);
            status(s.started());
            s
        });
        let bytes = self.counter.bytes.load(Ordering::Relaxed);
        if bytes != self.reported {
            status(step.progress("read", bytes, 0, false));
            self.reported = bytes;
        }
    }

    /// Run `work`, reporting the bytes read as they go.
    pub async fn during<F: Future>(&mut self, work: F, status: Status<'_>) -> F::Output {
        let mut every = tokio::time::interval(TICK);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => {
                    self.tick(status);
                    return out;
                }
                _ = every.tick() => self.tick(status),
            }
        }
    }

    /// The end: the bytes read, each package written with its size, and the duration (the
    /// step's end), or the error. Nothing when no byte was read (the build failed before).
    pub fn finish(
        mut self,
        result: Result<&melange2_package::PackagedOutput, &str>,
        status: Status<'_>,
    ) {
        self.tick(status);
        let Some(step) = self.step.take() else {
            return;
        };
        let bytes = self.counter.bytes.load(Ordering::Relaxed);
        status(step.progress("read", bytes, 0, true));
        if let Ok(out) = result {
            for p in &out.packages {
                let file = p.path.file_name().map_or_else(
                    || p.path.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                );
                let size = i64::try_from(p.file_size).unwrap_or(i64::MAX);
                status(step.log(&format!(
                    "{file} {} ({} bytes)",
                    human_bytes(size),
                    p.file_size
                )));
            }
        }
        status(step.completed(result.err()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use melange2_buildkit::progress::{Change, Tracker};
    use std::sync::Mutex;

    /// Every status message a step sends, folded by a tracker as the renderers do.
    #[derive(Default)]
    struct Seen {
        sent: Mutex<Vec<StatusResponse>>,
    }

    impl Seen {
        fn changes(&self) -> (Tracker, Vec<Change>) {
            let mut t = Tracker::default();
            let mut all = Vec::new();
            for r in self.sent.lock().unwrap().iter() {
                all.extend(t.update(r));
            }
            (t, all)
        }
    }

    #[test]
    fn nothing_is_shown_when_no_byte_was_read() {
        let seen = Seen::default();
        let status = |r: StatusResponse| seen.sent.lock().unwrap().push(r);
        let (step, mut reader) = PackagingStep::new("a", "x86_64", std::io::empty());
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf).unwrap();
        step.finish(Err("the build failed"), &status);
        assert!(seen.sent.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_go_out_while_the_work_runs_then_the_end_with_its_error() {
        let seen = Seen::default();
        let status = |r: StatusResponse| seen.sent.lock().unwrap().push(r);
        let data = vec![7u8; 4 << 20];
        let (mut step, mut reader) = PackagingStep::new("big", "x86_64", &data[..]);
        // the packager reads slowly: 1 MiB, then a pause of three ticks, then the rest
        let work = async {
            let mut chunk = vec![0u8; 1 << 20];
            reader.read_exact(&mut chunk).unwrap();
            tokio::time::sleep(TICK * 3).await;
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            rest.len()
        };
        let rest = step.during(work, &status).await;
        assert_eq!(rest, 3 << 20);
        step.finish(Err("no space left on device"), &status);
        let (t, changes) = seen.changes();
        let digest = "melange2-client:package:big:x86_64";
        let counts: Vec<(i64, bool)> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Status {
                    vertex,
                    current,
                    done,
                    ..
                } if vertex == digest => Some((*current, *done)),
                _ => None,
            })
            .collect();
        // the first MiB was reported during the pause, before the end
        assert!(counts.contains(&(1 << 20, false)), "{counts:?}");
        assert_eq!(counts.last(), Some(&(4 << 20, true)), "{counts:?}");
        assert_eq!(changes.first(), Some(&Change::Started(digest.into())));
        assert_eq!(changes.last(), Some(&Change::Completed(digest.into())));
        let v = t.get(digest).unwrap();
        assert_eq!(v.name, "package big");
        assert_eq!(v.error, "no space left on device");
        assert!(v.duration().is_some());
        // no package line for a failed packaging
        assert!(v.log_tail().is_empty(), "{:?}", v.log_tail());
    }
}
