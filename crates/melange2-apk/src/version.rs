//! APK version parsing and comparison, exactly as apk-tools 3 does it.
//!
//! Grammar (apk-tools): `number{.number}…{letter}{_suffix{number}}…{~hash}{-rN}`.
//! [`compare`] implements apk-tools' token-by-token comparison (including its
//! string comparison of components with leading zeros) and [`fuzzy_match`] the
//! `~` operator. [`is_valid`] checks the apk-tools grammar and
//! [`is_valid_strict`] the stricter apko/melange grammar used to validate
//! `package.version`.

use std::cmp::Ordering;
use std::fmt;

/// Token types in apk-tools order (the order matters for comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TokenType {
    InitialDigit = 0,
    Digit = 1,
    Letter = 2,
    Suffix = 3,
    SuffixNo = 4,
    CommitHash = 5,
    RevisionNo = 6,
    End = 7,
    Invalid = 8,
}

/// Known suffixes in rank order; "no suffix" sits between `rc` and `cvs`.
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// Number of pre-release suffixes at the start of [`SUFFIXES`].
const PRE_SUFFIXES: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    ty: TokenType,
    text: &'a [u8],
    /// Suffix rank for `Suffix` tokens.
    rank: usize,
}

struct Tokenizer<'a> {
    rest: &'a [u8],
    prev: TokenType,
    started: bool,
}

impl<'a> Tokenizer<'a> {
    fn new(s: &'a str) -> Self {
        Tokenizer {
            rest: s.as_bytes(),
            prev: TokenType::InitialDigit,
            started: false,
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.rest.iter().take_while(|&&b| f(b)).count();
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        a
    }

    fn invalid(&mut self) -> Token<'a> {
        self.prev = TokenType::Invalid;
        Token {
            ty: TokenType::Invalid,
            text: self.rest,
            rank: 0,
        }
    }

    fn make(&mut self, ty: TokenType, text: &'a [u8], rank: usize) -> Token<'a> {
        self.prev = ty;
        Token { ty, text, rank }
    }

    fn next_token(&mut self) -> Token<'a> {
        if self.prev == TokenType::Invalid {
            return self.invalid();
        }
        if !self.started {
            self.started = true;
            let digits = self.take_while(|b| b.is_ascii_digit());
            if digits.is_empty() {
                return self.invalid();
            }
            return self.make(TokenType::InitialDigit, digits, 0);
        }
        let Some(&c) = self.rest.first() else {
            return self.make(TokenType::End, b"", 0);
        };
        match c {
            b'a'..=b'z' => {
                if self.prev > TokenType::Digit {
                    return self.invalid();
                }
                let text = &self.rest[..1];
                self.rest = &self.rest[1..];
                self.make(TokenType::Letter, text, 0)
            }
            b'.' | b'0'..=b'9' => {
                let ty = if c == b'.' {
                    if self.prev > TokenType::Digit {
                        return self.invalid();
                    }
                    self.rest = &self.rest[1..];
                    TokenType::Digit
                } else {
                    match self.prev {
                        TokenType::InitialDigit | TokenType::Digit => TokenType::Digit,
                        TokenType::Suffix => TokenType::SuffixNo,
                        _ => return self.invalid(),
                    }
                };
                if ty == TokenType::Digit && c != b'.' {
                    // digits directly after digits cannot happen (spans are
                    // maximal); a digit after a letter is invalid.
                    return self.invalid();
                }
                let digits = self.take_while(|b| b.is_ascii_digit());
                if digits.is_empty() {
                    return self.invalid();
                }
                self.make(ty, digits, 0)
            }
            b'_' => {
                if self.prev > TokenType::SuffixNo {
                    return self.invalid();
                }
                self.rest = &self.rest[1..];
                let name = self.take_while(|b| b.is_ascii_lowercase());
                match SUFFIXES.iter().position(|s| s.as_bytes() == name) {
                    Some(rank) => self.make(TokenType::Suffix, name, rank),
                    None => self.invalid(),
                }
            }
            b'~' => {
                if self.prev >= TokenType::CommitHash {
                    return self.invalid();
                }
                self.rest = &self.rest[1..];
                let hash = self.take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if hash.is_empty() {
                    return self.invalid();
                }
                self.make(TokenType::CommitHash, hash, 0)
            }
            b'-' => {
                if self.prev >= TokenType::RevisionNo || !self.rest.starts_with(b"-r") {
                    return self.invalid();
                }
                self.rest = &self.rest[2..];
                let digits = self.take_while(|b| b.is_ascii_digit());
                if digits.is_empty() {
                    return self.invalid();
                }
                self.make(TokenType::RevisionNo, digits, 0)
            }
            _ => self.invalid(),
        }
    }
}

/// Compare two digit strings numerically (any length).
fn cmp_numeric(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let a = &a[strip(a)..];
    let b = &b[strip(b)..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_tokens(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.ty {
        TokenType::InitialDigit | TokenType::SuffixNo | TokenType::RevisionNo => {
            cmp_numeric(a.text, b.text)
        }
        TokenType::Digit => {
            if a.text.first() == Some(&b'0') || b.text.first() == Some(&b'0') {
                a.text.cmp(b.text)
            } else {
                cmp_numeric(a.text, b.text)
            }
        }
        TokenType::Letter | TokenType::CommitHash => a.text.cmp(b.text),
        TokenType::Suffix => a.rank.cmp(&b.rank),
        TokenType::End | TokenType::Invalid => Ordering::Equal,
    }
}

fn compare_impl(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let mut ta = Tokenizer::new(a);
    let mut tb = Tokenizer::new(b);
    let (mut x, mut y);
    loop {
        x = ta.next_token();
        y = tb.next_token();
        if x.ty != y.ty || x.ty >= TokenType::End {
            break;
        }
        let o = cmp_tokens(&x, &y);
        if o != Ordering::Equal {
            return o;
        }
    }
    if x.ty == y.ty {
        return Ordering::Equal;
    }
    if fuzzy && y.ty == TokenType::End {
        return Ordering::Equal;
    }
    if x.ty == TokenType::Suffix && x.rank < PRE_SUFFIXES {
        return Ordering::Less;
    }
    if y.ty == TokenType::Suffix && y.rank < PRE_SUFFIXES {
        return Ordering::Greater;
    }
    // the side whose token type is larger is the smaller version
    y.ty.cmp(&x.ty)
}

/// Compare two version strings like apk-tools (`apk version -t a b`).
/// Invalid versions still get a total order (an invalid token sorts lowest).
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_impl(a, b, false)
}

/// The `~` (fuzzy) operator: true when `version` starts with the components of
/// `required` (`1.2.3-r0 ~ 1.2` is true, `1.20 ~ 1.2` is false).
pub fn fuzzy_match(version: &str, required: &str) -> bool {
    compare_impl(version, required, true) == Ordering::Equal
}

/// True when `v` follows the apk-tools version grammar.
pub fn is_valid(v: &str) -> bool {
    let mut t = Tokenizer::new(v);
    loop {
        match t.next_token().ty {
            TokenType::End => return true,
            TokenType::Invalid => return false,
            _ => {}
        }
    }
}

/// True when `v` follows the stricter apko/melange grammar:
/// `N(.N)*[a-z]?(_(alpha|beta|pre|rc)N*)?(_(cvs|svn|git|hg|p)N*)?(-rN)?`.
pub fn is_valid_strict(v: &str) -> bool {
    if !is_valid(v) {
        return false;
    }
    let mut t = Tokenizer::new(v);
    // state: 0 = before suffixes, 1 = after pre suffix, 2 = after post suffix
    let mut state = 0;
    loop {
        let tok = t.next_token();
        match tok.ty {
            TokenType::End => return true,
            TokenType::CommitHash | TokenType::Invalid => return false,
            TokenType::Suffix => {
                let pre = tok.rank < PRE_SUFFIXES;
                if pre && state == 0 {
                    state = 1;
                } else if !pre && state < 2 {
                    state = 2;
                } else {
                    return false;
                }
            }
            _ => {}
        }
    }
}

/// A validated apk-tools version string, ordered with [`compare`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Parse (validate) a version string.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] when the string does not follow the grammar.
    pub fn parse(s: &str) -> crate::Result<Self> {
        if is_valid(s) {
            Ok(Version(s.to_string()))
        } else {
            Err(crate::Error::invalid(
                format!("version {s:?}"),
                "not a valid APK version (expected N[.N…][a-z][_suffixN…][~hash][-rN])",
            ))
        }
    }

    /// The version text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The release number (`-rN`), 0 when absent.
    pub fn release(&self) -> u64 {
        match self.0.rfind("-r") {
            Some(i) => self.0[i + 2..].parse().unwrap_or(0),
            None => 0,
        }
    }

    /// The version without its `-rN` release suffix.
    pub fn without_release(&self) -> &str {
        match self.0.rfind("-r") {
            Some(i) => &self.0[..i],
            None => &self.0,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl std::str::FromStr for Version {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Version::parse(s)
    }
}

/// Split `name-version` (e.g. a file stem `foo-bar-1.2-r0`) at the last `-`
/// followed by a digit. Returns `None` when there is no such dash.
pub fn split_name_version(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    // the release suffix "-rN" must stay in the version: search for a dash
    // followed by a digit, scanning from the end but skipping "-r<digit>".
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && i > 0 {
            return Some((&s[..i], &s[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert_eq!(
            split_name_version("foo-bar-1.2-r0"),
            Some(("foo-bar", "1.2-r0"))
        );
        assert_eq!(split_name_version("py3-1-2.0"), Some(("py3-1", "2.0")));
        assert_eq!(split_name_version("foo"), None);
    }
}
