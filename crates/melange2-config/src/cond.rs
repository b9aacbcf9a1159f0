//! The `if:` condition language.
//!
//! ```text
//! expr       := atom ( ("&&" | "||") atom )*     ; strictly left to right, no precedence
//! atom       := "(" expr ")" | value ("==" | "!=") value
//! value      := '…' | "…" | ${{ name }}
//! ```
//! String literals understand the escapes `\\ \' \" \n \t`; any other `\x` is kept as is.
//! Values substituted into a condition are inserted as [`quote`]d literals.
//! A `${{name}}` still present at evaluation time evaluates to the empty string.

struct P<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.src[self.i..].starts_with(tok) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!(
            "{what} at offset {} in condition {:?}",
            self.i, self.src
        ))
    }

    fn expr(&mut self) -> Result<bool, String> {
        let mut acc = self.atom()?;
        loop {
            if self.eat("&&") {
                let rhs = self.atom()?;
                acc = acc && rhs;
            } else if self.eat("||") {
                let rhs = self.atom()?;
                acc = acc || rhs;
            } else {
                return Ok(acc);
            }
        }
    }

    fn atom(&mut self) -> Result<bool, String> {
        if self.eat("(") {
            let v = self.expr()?;
            if !self.eat(")") {
                return self.err("expected ')'");
            }
            return Ok(v);
        }
        let lhs = self.value()?;
        let eq = if self.eat("==") {
            true
        } else if self.eat("!=") {
            false
        } else {
            return self.err("expected '==' or '!='");
        };
        let rhs = self.value()?;
        Ok((lhs == rhs) == eq)
    }

    fn value(&mut self) -> Result<String, String> {
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return self.err("unexpected end, expected a value");
        };
        match c {
            b'\'' | b'"' => {
                self.i += 1;
                let mut out = String::new();
                let rest = &self.src[self.i..];
                let mut chars = rest.char_indices();
                while let Some((off, ch)) = chars.next() {
                    if ch as u32 == c as u32 {
                        self.i += off + 1;
                        return Ok(out);
                    }
                    if ch == '\\' {
                        match chars.next() {
                            Some((_, '\\')) => out.push('\\'),
                            Some((_, '\'')) => out.push('\''),
                            Some((_, '"')) => out.push('"'),
                            Some((_, 'n')) => out.push('\n'),
                            Some((_, 't')) => out.push('\t'),
                            Some((_, other)) => {
                                out.push('\\');
                                out.push(other);
                            }
                            None => break,
                        }
                    } else {
                        out.push(ch);
                    }
                }
                self.i = self.s.len();
                self.err("unterminated string")
            }
            b'$' if self.src[self.i..].starts_with("${{") => match self.src[self.i..].find("}}") {
                Some(end) => {
                    self.i += end + 2;
                    Ok(String::new())
                }
                None => self.err("unterminated variable"),
            },
            _ => self.err("expected a quoted string or ${{variable}}"),
        }
    }
}

/// `s` as a double-quoted string literal that [`evaluate`] reads back as exactly `s`: a
/// backslash, a double quote, a newline and a tab are escaped (`\\ \" \n \t`), every
/// other character is written as it is (the language has no other escapes).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Evaluate a condition. An empty condition is true.
pub fn evaluate(cond: &str) -> Result<bool, String> {
    if cond.trim().is_empty() {
        return Ok(true);
    }
    let mut p = P {
        s: cond.as_bytes(),
        src: cond,
        i: 0,
    };
    let v = p.expr()?;
    p.ws();
    if p.i != p.s.len() {
        return p.err("unexpected trailing text");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::evaluate as e;

    #[test]
    fn basics() {
        assert!(e("\"x86_64\" == 'x86_64'").unwrap());
        assert!(!e("'a' != 'a'").unwrap());
        assert!(e("").unwrap());
        assert!(e("('a' == 'b') || 'c' == 'c'").unwrap());
        assert!(e("${{x}} == ''").unwrap());
        assert!(e("'it\\'s' == \"it's\"").unwrap());
    }

    #[test]
    fn left_to_right() {
        // (true || false) && false == false; with precedence it would be true.
        assert!(!e("'a' == 'a' || 'a' == 'b' && 'a' == 'b'").unwrap());
        assert!(e("'a' == 'b' && 'a' == 'b' || 'a' == 'a'").unwrap());
    }

    #[test]
    fn escapes() {
        assert!(e(r#"'\\' == "\\""#).unwrap());
        assert!(!e(r#"'\\\\' == "\\""#).unwrap());
        assert!(e("'\\n' == \"\n\"").unwrap());
        assert!(e("'\\t' == '\t'").unwrap());
        assert!(!e(r"'\t' == 't'").unwrap());
        assert!(e(r#"'\'' == "'""#).unwrap());
        assert!(e(r#""\"" == '"'"#).unwrap());
        assert!(e(r#"'\q' == "\\q""#).unwrap());
        // `\r` is no escape: a backslash and an `r`, not a carriage return.
        assert!(e("'\\r' != '\r'").unwrap());
        assert!(e("'\\r' == \"\\\\r\"").unwrap());
    }

    #[test]
    fn quote_reads_back_as_the_same_string() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        for v in [
            "",
            "plain",
            r#"a\b"c'd"#,
            "' || 'x' == 'x",
            "\" || \"x\" == \"x",
            "line\nnext\ttab\r\u{7f}é",
            "trailing\\",
            &every_control,
        ] {
            let q = super::quote(v);
            assert!(e(&format!("{q} == {q}")).unwrap(), "{v:?}");
            let lit = v.replace('\\', "\\\\").replace('\'', "\\'");
            assert!(e(&format!("{q} == '{lit}'")).unwrap(), "{v:?} as {q}");
            assert!(!e(&format!("{q} == 'other{lit}'")).unwrap(), "{v:?}");
        }
    }

    #[test]
    fn errors() {
        assert!(e("hello == 'x'").is_err());
        assert!(e("'a' == 'a' extra").is_err());
        assert!(e("'a' < 'b'").is_err());
        assert!(e("!('a' == 'b')").is_err());
        assert!(e("'a' == ").is_err());
        assert!(e("('a' == 'a'").is_err());
    }
}
