//! The one line `melange2` prints for a failed command.
//!
//! The library error types of this workspace say everything in their own message, their
//! cause included (`"<file>: <why>"`), so that a caller can print one as it is; some also
//! return that cause as their `source`. Printing the whole chain (`{:#}`) would then say
//! the cause twice (`…: not signed: …: not signed`). [`one_line`] prints the chain but
//! leaves out every cause that the text before it already says.

/// `e` and its causes on one line, joined with `": "`, each said once.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || says(&out, &text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// True when `text` appears in `out` as a whole part of it: at the start or after `": "`
/// or `"("`, and at the end or before `": "`, `")"` or `" ("` (not inside a word).
fn says(out: &str, text: &str) -> bool {
    out.match_indices(text).any(|(at, _)| {
        let (before, after) = (&out[..at], &out[at + text.len()..]);
        let starts = before.is_empty() || before.ends_with(": ") || before.ends_with('(');
        let ends = after.is_empty()
            || after.starts_with(": ")
            || after.starts_with(')')
            || after.starts_with(" (");
        starts && ends
    })
}

#[cfg(test)]
mod tests {
    use super::{one_line, says};

    /// An error whose message includes its cause, which it also returns as its source.
    #[derive(Debug)]
    struct Says {
        context: String,
        source: std::io::Error,
    }

    impl std::fmt::Display for Says {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}", self.context, self.source)
        }
    }

    impl std::error::Error for Says {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn causes_already_said_are_left_out() {
        let io = std::io::Error::other("not signed");
        let e = anyhow::Error::new(Says {
            context: "x.apk".into(),
            source: io,
        });
        assert_eq!(format!("{e:#}"), "x.apk: not signed: not signed");
        assert_eq!(one_line(&e), "x.apk: not signed");
        let e = e.context("resolving");
        assert_eq!(one_line(&e), "resolving: x.apk: not signed");
        let plain = anyhow::anyhow!("a").context("b");
        assert_eq!(one_line(&plain), "b: a");
        // A cause that only appears inside a word of the message is still said.
        let e = anyhow::anyhow!("timed out").context("GET http://x/timed outage.apk");
        assert_eq!(one_line(&e), "GET http://x/timed outage.apk: timed out");
    }

    #[test]
    fn whole_parts_only() {
        assert!(says("f: not signed", "not signed"));
        assert!(says("not signed: f", "not signed"));
        assert!(says("f (not signed)", "not signed"));
        assert!(says("f: not signed (gave up)", "not signed"));
        assert!(!says("f: not signedness", "not signed"));
        assert!(!says("f: xnot signed", "not signed"));
    }
}
