//! Map a field path (`pipeline[2].with.uri`) to a line/column in YAML text.
//!
//! Only used when reporting an error: successful parses never pay for it.

use std::cell::RefCell;
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

use crate::error::At;

type Events = Rc<Vec<(Event, Marker)>>;

thread_local! {
    /// The events of the text looked at last: a file with many problems is read once, not
    /// once per problem (20 000 problems in a 1 MiB file took hours).
    static LAST: RefCell<Option<(String, Events)>> = const { RefCell::new(None) };
}

/// The events of `text` (up to a syntax error), from [`LAST`] when it is the same text.
fn events_of(text: &str) -> Events {
    let cached = LAST.with_borrow(|last| match last {
        Some((t, evs)) if t == text => Some(Rc::clone(evs)),
        _ => None,
    });
    if let Some(evs) = cached {
        return evs;
    }
    let mut events = Vec::new();
    let mut parser = Parser::new_from_str(text);
    // Event by event (`Parser::load` recurses once per level); a syntax error still
    // leaves the events up to it.
    while let Ok((ev, mark)) = parser.next_token() {
        if ev == Event::StreamEnd {
            break;
        }
        events.push((ev, mark));
    }
    let evs = Rc::new(events);
    LAST.with_borrow_mut(|last| *last = Some((text.to_string(), Rc::clone(&evs))));
    evs
}

/// Position of `path` in `text`: of its key for [`At::Key`], of its value for [`At::Value`].
/// Falls back to the nearest enclosing element that exists, then to 1:1.
pub(crate) fn position(text: &str, path: &str, at: At) -> (usize, usize) {
    walk(text, path, at).1
}

/// Position of `path` in `text`, only when every element of the path exists.
pub(crate) fn find(text: &str, path: &str, at: At) -> Option<(usize, usize)> {
    match walk(text, path, at) {
        (true, pos) => Some(pos),
        (false, _) => None,
    }
}

/// (whether the whole path was found, position of the deepest element found).
fn walk(text: &str, path: &str, at: At) -> (bool, (usize, usize)) {
    let events = events_of(text);
    let segs = split_path(path);
    let mut best = (1, 1);
    // Walk events from the document root.
    let evs = events.as_slice();
    let mut i = 0;
    while i < evs.len() {
        if matches!(evs[i].0, Event::DocumentStart) {
            i += 1;
            break;
        }
        i += 1;
    }
    if i >= evs.len() {
        return (segs.is_empty(), best);
    }
    let mut node = i;
    for seg in &segs {
        let key_mark: Option<Marker>;
        match (&evs[node].0, seg) {
            (Event::MappingStart(..), Seg::Key(k)) => {
                let mut j = node + 1;
                let mut found = None;
                while j < evs.len() && !matches!(evs[j].0, Event::MappingEnd) {
                    let key_at = j;
                    let key_text = match &evs[j].0 {
                        Event::Scalar(s, ..) => Some(s.clone()),
                        _ => None,
                    };
                    j = skip(evs, j);
                    if j >= evs.len() {
                        break;
                    }
                    if key_text.as_deref() == Some(k.as_str()) {
                        found = Some((key_at, j));
                        break;
                    }
                    j = skip(evs, j);
                }
                match found {
                    Some((k_at, v_at)) => {
                        key_mark = Some(evs[k_at].1);
                        node = v_at;
                    }
                    None => return (false, best),
                }
            }
            (Event::SequenceStart(..), Seg::Index(n)) => {
                let mut j = node + 1;
                let mut idx = 0;
                let mut found = None;
                while j < evs.len() && !matches!(evs[j].0, Event::SequenceEnd) {
                    if idx == *n {
                        found = Some(j);
                        break;
                    }
                    j = skip(evs, j);
                    idx += 1;
                }
                match found {
                    Some(v) => {
                        key_mark = None;
                        node = v;
                    }
                    None => return (false, best),
                }
            }
            _ => return (false, best),
        }
        let m = match (at, key_mark) {
            (At::Key, Some(k)) => k,
            _ => match (&evs[node].0, evs.get(node + 1)) {
                // Block mappings are marked after their first key; point at that key.
                (Event::MappingStart(..), Some((Event::Scalar(..), m))) => *m,
                _ => evs[node].1,
            },
        };
        best = (m.line(), m.col() + 1);
        // When pointing at the value of a block mapping/sequence, yaml-rust2 marks the
        // first inner token; that is still the right place to look.
    }
    (true, best)
}

/// Index of the event following the node that starts at `i`.
fn skip(evs: &[(Event, Marker)], i: usize) -> usize {
    match evs[i].0 {
        Event::MappingStart(..) | Event::SequenceStart(..) => {
            let mut depth = 0usize;
            let mut j = i;
            while j < evs.len() {
                match evs[j].0 {
                    Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            j
        }
        _ => i + 1,
    }
}

#[derive(Debug, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// `a.b[2].c` → [Key a, Key b, Index 2, Key c]. Keys may contain dots when they exist
/// as such in the file; the walker only needs the common cases.
pub(crate) fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        if part.is_empty() {
            continue;
        }
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            if b > 0 {
                out.push(Seg::Key(rest[..b].to_string()));
            }
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else { break };
                if let Ok(n) = stripped[..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &stripped[end + 1..];
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: &str = "package:\n  name: foo\n  version: 1\npipeline:\n  - uses: fetch\n    with:\n      uri: x\n  - runs: |\n      echo\n";

    #[test]
    fn finds_keys_and_values() {
        assert_eq!(position(Y, "package.version", At::Key), (3, 3));
        assert_eq!(position(Y, "package.version", At::Value), (3, 12));
        assert_eq!(position(Y, "pipeline[0].with.uri", At::Key), (7, 7));
        assert_eq!(position(Y, "pipeline[1]", At::Value), (8, 5));
        assert_eq!(position(Y, "pipeline[1].runs", At::Key), (8, 5));
        // Missing leaf: nearest ancestor.
        assert_eq!(position(Y, "pipeline[0].with.nope", At::Key), (6, 5));
        assert_eq!(find(Y, "pipeline[0].with.nope", At::Key), None);
        assert_eq!(find(Y, "package.name", At::Key), Some((2, 3)));
    }
}
