//! Bounds that keep loading and compiling a hostile build file cheap (docs/config.md,
//! "Limits"). Every limit is far above what real recipes use (Wolfi's largest build files
//! are a few hundred KiB, with a few hundred subpackages); going over one is an error that
//! names the file and the field or variable, never a silent truncation.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::path::Path;

/// Largest build, pipeline, `--vars-file` or `--env-file` file read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Largest value one substitution may produce (a `runs` script, a variable, an input).
pub const MAX_VALUE_BYTES: usize = 4 << 20;
/// Most text the substitutions and expansions of one file may produce in total (the
/// parse phase, then each compilation on its own).
pub const MAX_TOTAL_BYTES: usize = 256 << 20;
/// Most that YAML aliases may add to a build or pipeline file once expanded (scalar
/// bytes plus one a node): real files use a few small anchors, a file that multiplies
/// itself through aliases goes over.
pub const MAX_ALIASED_BYTES: usize = 4 << 20;
/// Most subpackages of a file, after `range` expansion.
pub const MAX_SUBPACKAGES: usize = 20_000;
/// Deepest nesting of collections in a build or pipeline file (YAML's flow-collection
/// reader stops at the same depth).
pub const MAX_DEPTH: usize = 128;
/// Longest chain of variables (or inputs) whose values refer to the next one: each link
/// is resolved before the one that uses it, one stack frame each.
pub const MAX_REFERENCE_DEPTH: usize = 500;
/// Most `var-transforms` of a file (real ones have a handful; each is a regular
/// expression compiled for every compilation).
pub const MAX_VAR_TRANSFORMS: usize = 1000;
/// Most steps of one compiled plan, after `uses:` expansion.
pub const MAX_STEPS: usize = 200_000;

/// Read a text file of at most [`MAX_FILE_BYTES`]. FIFOs, devices, sockets and directories
/// are refused before they are opened (reading one could block or never end).
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    let kind = |m: &std::fs::Metadata| -> Option<&'static str> {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_file() {
            None
        } else if t.is_dir() {
            Some("a directory")
        } else if t.is_fifo() {
            Some("a FIFO")
        } else if t.is_char_device() || t.is_block_device() {
            Some("a device")
        } else {
            Some("not a regular file")
        }
    };
    let refuse = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what}, not a regular file (only regular files are read)"),
        )
    };
    if let Some(k) = kind(&std::fs::metadata(path)?) {
        return Err(refuse(k));
    }
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if let Some(k) = kind(&meta) {
        return Err(refuse(k));
    }
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the limit of {} MiB", MAX_FILE_BYTES >> 20),
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    String::from_utf8(buf).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// How much text substitution may still produce: one budget for the parse phase and one
/// per compilation, shared by every substitution of it.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Cell<usize>,
    /// A spend failed.
    exhausted: Cell<bool>,
    /// What was being produced when the budget ran out (the first time).
    failed: RefCell<Option<String>>,
}

impl Budget {
    /// A budget of [`MAX_TOTAL_BYTES`].
    pub fn new() -> Self {
        Budget {
            left: Cell::new(MAX_TOTAL_BYTES),
            exhausted: Cell::new(false),
            failed: RefCell::new(None),
        }
    }

    /// Take `n` bytes; false (and nothing left afterwards) when fewer remain.
    pub fn spend(&self, n: usize) -> bool {
        match self.left.get().checked_sub(n) {
            Some(rest) => {
                self.left.set(rest);
                true
            }
            None => {
                self.left.set(0);
                self.exhausted.set(true);
                false
            }
        }
    }

    /// True once a [`Budget::spend`] has failed: what is compiled afterwards would only
    /// fail the same way, so it is not attempted (and not reported again).
    pub fn exhausted(&self) -> bool {
        self.exhausted.get()
    }

    /// Take `n` bytes for `what`; when they are not there, remember `what` (the first
    /// time) and say false.
    pub fn spend_for(&self, n: usize, what: &str) -> bool {
        let ok = self.spend(n);
        if !ok
            && let Ok(mut f) = self.failed.try_borrow_mut()
            && f.is_none()
        {
            *f = Some(what.to_string());
        }
        ok
    }

    /// What was being produced when [`Budget::spend_for`] failed first.
    pub fn failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }
}

/// The message for a spent [`Budget`].
pub(crate) fn total_exceeded(what: &str) -> String {
    format!(
        "substitution and expansion produce more than {} MiB of text in total ({what}); is a variable built from copies of itself, or a `range` or `uses:` multiplying a large text?",
        MAX_TOTAL_BYTES >> 20
    )
}

/// The message for one value over [`MAX_VALUE_BYTES`].
pub(crate) fn value_too_large() -> String {
    format!(
        "the substituted value is larger than {} MiB (is a variable built from copies of itself?)",
        MAX_VALUE_BYTES >> 20
    )
}

/// The message for more than [`MAX_VAR_TRANSFORMS`] `var-transforms`.
pub(crate) fn too_many_var_transforms() -> String {
    format!("more than {MAX_VAR_TRANSFORMS} var-transforms (each is a regular expression)")
}
