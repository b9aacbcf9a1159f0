//! `package.timeout`: Go duration strings (`"2h"`, `"1h30m"`, `"5400s"`) or integers (seconds).

use serde::{Deserialize, Deserializer, de::Error as _};

/// Parse a Go `time.ParseDuration` string into whole seconds (fractions are rounded up).
pub fn parse_go_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t == "0" {
        return Ok(0);
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    let bytes = t.as_bytes();
    let mut i = 0;
    if bytes[0] == b'+' {
        i = 1;
    } else if bytes[0] == b'-' {
        return Err(format!("negative duration {s:?}"));
    }
    let mut total_ns: f64 = 0.0;
    let mut any = false;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(format!("invalid duration {s:?}"));
        }
        let num: f64 = t[start..i]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        let ustart = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit = &t[ustart..i];
        let mul = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {s:?}")),
            other => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {:?} (use ns, us, ms, s, m or h)",
                    other.trim()
                ));
            }
        };
        total_ns += num * mul;
        any = true;
    }
    if !any {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok((total_ns / 1e9).ceil() as u64)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Int(u64),
    Str(String),
}

/// Serde adapter for `Option<u64>` seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Int(n)) => Ok(Some(n)),
        Some(Raw::Str(s)) => parse_go_duration(&s)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("@timeout: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration as p;

    #[test]
    fn durations() {
        assert_eq!(p("2h").unwrap(), 7200);
        assert_eq!(p("1h30m").unwrap(), 5400);
        assert_eq!(p("5400s").unwrap(), 5400);
        assert_eq!(p("90").unwrap(), 90);
        assert_eq!(p("1.5m").unwrap(), 90);
        assert_eq!(p("500ms").unwrap(), 1);
        assert!(p("2 hours").is_err());
        assert!(p("h").is_err());
        assert!(p("-1h").is_err());
    }
}
