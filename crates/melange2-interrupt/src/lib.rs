//! Interrupted commands: SIGINT and SIGTERM cancel what a command is doing and let it clean up
//! before the process exits.
//!
//! Contract (see `docs/build.md`, "Interrupting a build", and `docs/packaging.md`, "All or
//! nothing"):
//! * [`block_on`] runs a command's future on a fresh multi-thread Tokio runtime, with handlers
//!   for SIGINT and SIGTERM installed before the future is first polled.
//! * When a signal comes first, the future is dropped where it stands: a BuildKit solve's
//!   gRPC call is closed (the daemon cancels the solve), downloads stop. Then the runtime is
//!   shut down: every spawned task is dropped and every blocking task (a packager reading the
//!   build's output) runs to its end, which it reaches quickly because its input is gone. The
//!   owners of temporary files and staging directories remove them in their destructors, so
//!   nothing half-written stays behind. [`block_on`] then returns [`Error::Interrupted`],
//!   whose [`Error::exit_code`] is 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
//! * A second signal during that clean-up ends the process at once with the same code. What
//!   that leaves behind is swept by the next run, under the locks that show its owner is gone.
//! * Without a signal the future's output is returned; the runtime is shut down the same way,
//!   so blocking tasks still running finish first.

use std::future::Future;

use tokio::signal::unix::{Signal as Stream, SignalKind, signal};

/// A signal that interrupts a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// The signal's number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }

    /// The exit status of a process it interrupted: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// Why [`block_on`] did not return the future's output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
    Handlers(std::io::Error),
    /// A signal arrived: the work was cancelled and its temporary files removed.
    #[error("interrupted by {}: cancelled; temporary files removed", .0.name())]
    Interrupted(Signal),
}

impl Error {
    /// The process exit status for an interruption (130, 143); `None` for other errors.
    pub fn exit_code(&self) -> Option<u8> {
        match self {
            Error::Interrupted(s) => Some(s.exit_code()),
            _ => None,
        }
    }
}

/// Handlers of both signals; created inside a runtime.
struct Handlers {
    int: Stream,
    term: Stream,
}

impl Handlers {
    fn install() -> Result<Handlers, Error> {
        Ok(Handlers {
            int: signal(SignalKind::interrupt()).map_err(Error::Handlers)?,
            term: signal(SignalKind::terminate()).map_err(Error::Handlers)?,
        })
    }

    /// The next signal of either kind.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Interrupt,
            _ = self.term.recv() => Signal::Terminate,
        }
    }
}

/// Run `fut` to its end, or until SIGINT or SIGTERM (see the crate documentation).
///
/// # Errors
/// [`Error::Interrupted`] after a signal (once the clean-up is done); [`Error::Runtime`] or
/// [`Error::Handlers`] when the runtime or the handlers cannot be set up.
pub fn block_on<F: Future>(fut: F) -> Result<F::Output, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let outcome = rt.block_on(async {
        let mut handlers = Handlers::install()?;
        tokio::select! {
            out = fut => Ok(Ok(out)),
            s = handlers.next() => Ok(Err(s)),
        }
    });
    match outcome {
        Ok(Ok(out)) => {
            drop(rt);
            Ok(out)
        }
        Ok(Err(s)) => {
            tracing::warn!(
                "{}: cancelling and removing temporary files (send it again to exit at once)",
                s.name()
            );
            shut_down(rt, s);
            Err(Error::Interrupted(s))
        }
        Err(e) => Err(e),
    }
}

/// Shut the runtime down (dropping its tasks, waiting for its blocking tasks) on another
/// thread; a second signal meanwhile exits the process at once.
fn shut_down(rt: tokio::runtime::Runtime, first: Signal) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let dropper = std::thread::spawn(move || {
        drop(rt);
        let _ = done_tx.send(());
    });
    let waiter = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let second = match waiter {
        Ok(w) => w.block_on(async {
            let Ok(mut handlers) = Handlers::install() else {
                let _ = done_rx.await;
                return None;
            };
            tokio::select! {
                _ = done_rx => None,
                s = handlers.next() => Some(s),
            }
        }),
        Err(e) => {
            tracing::debug!(error = %e, "no runtime to watch for a second signal");
            None
        }
    };
    if let Some(s) = second {
        tracing::warn!("{} again: exiting without finishing the clean-up", s.name());
        std::process::exit(i32::from(first.exit_code()));
    }
    let _ = dropper.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signal a test sends goes to the whole test process, so every handler installed at
    /// that moment sees it: the tests that run [`block_on`] take turns.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        for s in [Signal::Interrupt, Signal::Terminate] {
            assert_eq!(i32::from(s.exit_code()), 128 + s.number());
        }
        assert_eq!(Error::Interrupted(Signal::Interrupt).exit_code(), Some(130));
        assert_eq!(Error::Runtime(std::io::Error::other("x")).exit_code(), None);
    }

    #[test]
    fn output_without_a_signal_waits_for_blocking_tasks() {
        let _turn = serial();
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = flag.clone();
        let out = block_on(async move {
            // a blocking task still running when the future ends
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                f.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            7
        })
        .unwrap();
        assert_eq!(out, 7);
        assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// A signal drops the future and the spawned tasks, and waits for the blocking tasks,
    /// whose input ends when the tasks feeding it are dropped.
    #[test]
    fn a_signal_cancels_and_waits_for_the_clean_up() {
        let _turn = serial();
        use std::sync::atomic::{AtomicBool, Ordering};
        let cleaned = std::sync::Arc::new(AtomicBool::new(false));
        let c = cleaned.clone();
        let r = block_on(async move {
            let (tx, rx) = std::sync::mpsc::channel::<u8>();
            // a feeder that never ends by itself
            tokio::spawn(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            });
            // a consumer that cleans up once its input is gone
            tokio::task::spawn_blocking(move || {
                while rx.recv().is_ok() {}
                std::thread::sleep(std::time::Duration::from_millis(50));
                c.store(true, Ordering::SeqCst);
            });
            let me = std::process::id().to_string();
            let kill = tokio::process::Command::new("kill")
                .args(["-TERM", &me])
                .status()
                .await;
            assert!(kill.is_ok_and(|s| s.success()));
            std::future::pending::<()>().await;
        });
        assert!(
            matches!(r, Err(Error::Interrupted(Signal::Terminate))),
            "{r:?}"
        );
        assert!(
            cleaned.load(Ordering::SeqCst),
            "returned before the clean-up"
        );
    }
}
