//! Label and field selectors, as far as pods need them.

use std::collections::BTreeMap;

use super::model::FakePod;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Eq(k, v) => labels.get(k) == Some(v),
            Requirement::NotEq(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        }
    }
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses a label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
/// comma = AND). Err is the message of a 400 BadRequest.
pub fn parse_label_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut reqs = Vec::new();
    for term in split_terms(s) {
        let term = term.trim();
        let bad = || format!("unable to parse requirement: found '{term}', expected: identifier");
        if term.is_empty() {
            return Err(bad());
        }
        let req = if let Some(k) = term.strip_prefix('!') {
            let k = k.trim();
            if !valid_key(k) {
                return Err(bad());
            }
            Requirement::NotExists(k.to_string())
        } else if let Some(open) = term.find('(') {
            let head = term[..open].trim();
            let close = term
                .rfind(')')
                .filter(|c| *c > open && term[c + 1..].trim().is_empty())
                .ok_or_else(bad)?;
            let values: Vec<String> = term[open + 1..close]
                .split(',')
                .map(|v| v.trim().to_string())
                .collect();
            if values.iter().any(|v| !valid_value(v)) {
                return Err(bad());
            }
            let mut words = head.split_whitespace();
            let (Some(k), Some(op), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad());
            };
            if !valid_key(k) {
                return Err(bad());
            }
            match op {
                "in" => Requirement::In(k.to_string(), values),
                "notin" => Requirement::NotIn(k.to_string(), values),
                _ => return Err(bad()),
            }
        } else if let Some((k, v)) = term.split_once("!=") {
            Requirement::NotEq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once("==") {
            Requirement::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once('=') {
            Requirement::Eq(k.trim().to_string(), v.trim().to_string())
        } else {
            if !valid_key(term) {
                return Err(bad());
            }
            Requirement::Exists(term.to_string())
        };
        if let Requirement::Eq(k, v) | Requirement::NotEq(k, v) = &req {
            if !valid_key(k) || !valid_value(v) {
                return Err(bad());
            }
        }
        reqs.push(req);
    }
    Ok(reqs)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
];

/// Parses a pod field selector (`f=v`, `f==v`, `f!=v`, comma = AND). Err is the message of a
/// 400 BadRequest.
pub fn parse_field_selector(s: &str) -> Result<Vec<FieldRequirement>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for term in s.split(',') {
        let term = term.trim();
        let (field, value, negate) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once("==") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once('=') {
            (f, v, false)
        } else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            ));
        };
        let field = field.trim();
        if !POD_FIELDS.contains(&field) {
            return Err(format!("field label not supported: {field}"));
        }
        out.push(FieldRequirement {
            field: field.to_string(),
            value: value.trim().to_string(),
            negate,
        });
    }
    Ok(out)
}

impl FieldRequirement {
    pub fn matches(&self, pod: &FakePod) -> bool {
        let actual = match self.field.as_str() {
            "metadata.name" => pod.name.as_str(),
            "metadata.namespace" => pod.namespace.as_str(),
            "spec.nodeName" => pod.node.as_deref().unwrap_or(""),
            "status.phase" => pod.phase.as_str(),
            _ => return false,
        };
        (actual == self.value) != self.negate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_forms() {
        let l = labels(&[("app", "falco"), ("tier", "sec")]);
        let m = |s: &str| {
            parse_label_selector(s)
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .iter()
                .all(|r| r.matches(&l))
        };
        assert!(m("app=falco"));
        assert!(m("app==falco"));
        assert!(m("app=falco,tier"));
        assert!(!m("app!=falco"));
        assert!(m("!missing"));
        assert!(m("app in (falco, other)"));
        assert!(!m("app notin (falco)"));
        assert!(m("app in (falco,x),tier=sec"));
        assert!(!m("app.kubernetes.io/name=falco"));
        assert!(parse_label_selector("app=fal co=").is_err());
        assert!(parse_label_selector("app in (a").is_err());
    }
}
