//! `melange2 query FILE TEMPLATE`: a small Go `text/template` subset over the parsed
//! configuration, with Go field names (`{{ .Package.Name }}-{{ .Package.Version }}`).
//!
//! Supported: text, `{{ .A.B }}`, `{{ . }}`, `{{ range .X }}…{{ end }}` (`.` is the item),
//! `{{- … -}}` whitespace trimming. Fields are matched case-insensitively after removing
//! dashes, so `.Package.TargetArchitecture` finds `target-architecture`.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::parse::Config;

#[derive(Debug)]
enum Node {
    Text(String),
    Field(Vec<String>),
    Range(Vec<String>, Vec<Node>),
}

fn parse_path(expr: &str) -> Result<Vec<String>> {
    let e = expr.trim();
    if e == "." {
        return Ok(Vec::new());
    }
    let Some(rest) = e.strip_prefix('.') else {
        return Err(Error::Usage(format!(
            "unsupported template expression {e:?} (use .Field.Path)"
        )));
    };
    Ok(rest.split('.').map(str::to_string).collect())
}

fn parse(tpl: &str) -> Result<Vec<Node>> {
    let mut stack: Vec<(Vec<String>, Vec<Node>)> = vec![(Vec::new(), Vec::new())];
    let mut pos = 0;
    let mut trim_next = false;
    while pos < tpl.len() {
        let (text, action) = match tpl[pos..].find("{{") {
            Some(i) => {
                let start = pos + i;
                let end = tpl[start..]
                    .find("}}")
                    .map(|e| e + start)
                    .ok_or_else(|| Error::Usage("unterminated {{ in template".to_string()))?;
                let r = (&tpl[pos..start], Some(&tpl[start + 2..end]));
                pos = end + 2;
                r
            }
            None => {
                let r = (&tpl[pos..], None);
                pos = tpl.len();
                r
            }
        };
        let mut text = if trim_next { text.trim_start() } else { text };
        let mut act = action.unwrap_or("");
        if let Some(a) = act.strip_prefix('-') {
            text = text.trim_end();
            act = a;
        }
        trim_next = false;
        if let Some(a) = act.strip_suffix('-') {
            trim_next = true;
            act = a;
        }
        if !text.is_empty()
            && let Some(f) = stack.last_mut()
        {
            f.1.push(Node::Text(text.to_string()));
        }
        if action.is_none() {
            break;
        }
        let a = act.trim();
        if let Some(r) = a.strip_prefix("range ") {
            stack.push((parse_path(r)?, Vec::new()));
        } else if a == "end" {
            if stack.len() < 2 {
                return Err(Error::Usage("{{ end }} without {{ range }}".to_string()));
            }
            let (p, body) = stack.pop().unwrap_or_default();
            if let Some(f) = stack.last_mut() {
                f.1.push(Node::Range(p, body));
            }
        } else if let Some(f) = stack.last_mut() {
            f.1.push(Node::Field(parse_path(a)?));
        }
    }
    if stack.len() != 1 {
        return Err(Error::Usage("{{ range }} without {{ end }}".to_string()));
    }
    Ok(stack.pop().map(|f| f.1).unwrap_or_default())
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        let obj = cur.as_object()?;
        let n = norm(seg);
        cur = obj.iter().find(|(k, _)| norm(k) == n).map(|(_, v)| v)?;
    }
    Some(cur)
}

fn render_value(v: Option<&Value>, out: &mut String) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Array(a)) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                render_value(Some(x), out);
            }
            out.push(']');
        }
        Some(other) => out.push_str(&other.to_string()),
    }
}

fn render(nodes: &[Node], dot: &Value, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Field(p) => render_value(lookup(dot, p), out),
            Node::Range(p, body) => match lookup(dot, p) {
                Some(Value::Array(items)) => {
                    for it in items {
                        render(body, it, out);
                    }
                }
                Some(Value::Object(m)) => {
                    for it in m.values() {
                        render(body, it, out);
                    }
                }
                _ => {}
            },
        }
    }
}

/// Render `template` against the parsed configuration of `config`.
pub fn query(config: &Config, template: &str) -> Result<String> {
    let nodes = parse(template)?;
    let v = serde_json::to_value(&config.configuration)
        .map_err(|e| Error::Usage(format!("cannot represent configuration: {e}")))?;
    let mut out = String::new();
    render(&nodes, &v, &mut out);
    Ok(out)
}
