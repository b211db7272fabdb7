//! Accepted noise: alerts a team has decided not to block on. They are still counted and shown.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// One accepted-noise entry: a rule name glob (JSON output) and/or a title glob (text output,
/// which has no rule names), and optionally `output_fields` that must match too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRule {
    /// Glob (`*`, `?`) over the rule name of a JSON alert.
    #[serde(default)]
    pub rule: Option<String>,
    /// Glob over the title of a text alert (its message up to ` | ` or ` (`), e.g. "Log files
    /// were tampered" for the rule "Clear Log Activities".
    #[serde(default)]
    pub title: Option<String>,
    /// `--ignore-rule`: the glob matches a rule name or a title.
    #[serde(skip)]
    pub either: bool,
    /// Field -> glob over its value as text; all must match.
    #[serde(default)]
    pub output_fields: std::collections::BTreeMap<String, String>,
    /// Why this is accepted (shown nowhere, kept for the reader of the file).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IgnoreFileError {
    #[error("cannot read ignore file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("ignore file {path} is not a YAML list of {{rule: GLOB, output_fields: {{FIELD: GLOB}}}}: {detail}")]
    Parse { path: String, detail: String },
}

/// All accepted-noise entries.
#[derive(Debug, Clone, Default)]
pub struct Ignores {
    rules: Vec<IgnoreRule>,
}

impl Ignores {
    pub fn new(rules: Vec<IgnoreRule>) -> Self {
        Ignores { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `--ignore-rule NAME` entries.
    pub fn from_globs<I: IntoIterator<Item = String>>(globs: I) -> Self {
        Ignores::new(
            globs
                .into_iter()
                .map(|rule| IgnoreRule {
                    rule: Some(rule),
                    either: true,
                    ..IgnoreRule::default()
                })
                .collect(),
        )
    }

    pub fn extend(&mut self, other: Ignores) {
        self.rules.extend(other.rules);
    }

    pub fn load(path: &Path) -> Result<Ignores, IgnoreFileError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| IgnoreFileError::Read {
            path: p.clone(),
            source,
        })?;
        Ignores::parse(&text).map_err(|detail| IgnoreFileError::Parse { path: p, detail })
    }

    pub fn parse(text: &str) -> Result<Ignores, String> {
        if text.trim().is_empty() {
            return Ok(Ignores::default());
        }
        // The file is a list, or `{ignore: [...]}`; each entry is checked on its own so that the
        // error names the one to fix.
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let entries = match doc {
            Value::Array(l) => l,
            Value::Object(mut m) if m.len() == 1 && m.contains_key("ignore") => {
                match m.remove("ignore") {
                    Some(Value::Array(l)) => l,
                    _ => return Err("`ignore:` must hold a list of entries".to_string()),
                }
            }
            _ => return Err("it must be a list of entries (or `ignore:` with one)".to_string()),
        };
        let mut rules = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let shown = crate::sanitize::neutralize(&entry.to_string());
            let rule: IgnoreRule = serde_json::from_value(entry)
                .map_err(|e| format!("entry {} ({shown}): {e}", i + 1))?;
            if rule.rule.is_none() && rule.title.is_none() {
                return Err(format!(
                    "entry {} ({shown}): needs `rule:` (JSON output) or `title:` (text output)",
                    i + 1
                ));
            }
            rules.push(rule);
        }
        Ok(Ignores::new(rules))
    }

    /// Whether an alert is accepted noise. `name` is its rule name, or for text output
    /// (`is_title`) the title that stands in for it.
    pub fn matches(
        &self,
        name: Option<&str>,
        is_title: bool,
        fields: Option<&crate::falco::Fields>,
    ) -> bool {
        let name = name.unwrap_or("");
        self.rules.iter().any(|r| {
            let named = if is_title {
                r.title.as_deref().is_some_and(|t| glob(t, name))
                    || (r.either && r.rule.as_deref().is_some_and(|g| glob(g, name)))
            } else {
                r.rule.as_deref().is_some_and(|g| glob(g, name))
            };
            named
                && r.output_fields.iter().all(|(k, pattern)| {
                    let value = fields.and_then(|f| f.get(k));
                    match value {
                        Some(Value::String(s)) => glob(pattern, s),
                        Some(Value::Null) | None => false,
                        Some(v) => glob(pattern, &v.to_string()),
                    }
                })
        })
    }
}

/// Shell-style glob: `*` any run, `?` one character, everything else literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("Terminal shell*", "Terminal shell in container"));
        assert!(glob("*shell*", "Terminal shell in container"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("Terminal", "Terminal shell"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acbx"));
    }

    #[test]
    fn file_forms_and_field_matches() {
        let i = Ignores::parse("- rule: 'Launch Privileged*'\n  output_fields:\n    container.image.repository: ghcr.io/acme/*\n- rule: Read ssh information\n").expect("list");
        let mut f = serde_json::Map::new();
        f.insert(
            "container.image.repository".into(),
            Value::String("ghcr.io/acme/jobs".into()),
        );
        let f = crate::falco::Fields::from_map(f).expect("fields");
        assert!(i.matches(Some("Launch Privileged Container"), false, Some(&f)));
        assert!(!i.matches(Some("Launch Privileged Container"), false, None));
        assert!(i.matches(Some("Read ssh information"), false, None));
        assert!(!i.matches(Some("Other"), false, Some(&f)));
        let d = Ignores::parse("ignore:\n  - rule: X\n").expect("doc");
        assert!(d.matches(Some("X"), false, None));
        // A file's `rule:` is a rule name; `title:` is a text alert's title.
        assert!(!d.matches(Some("X"), true, None));
        let t = Ignores::parse("- title: Log files were tampered\n").expect("title");
        assert!(t.matches(Some("Log files were tampered"), true, None));
        assert!(!t.matches(Some("Log files were tampered"), false, None));
        // --ignore-rule matches either.
        let g = Ignores::from_globs(["Log files*".to_string()]);
        assert!(g.matches(Some("Log files were tampered"), true, None));
        assert!(Ignores::parse("- reason: nothing to match\n").is_err());
        let e = Ignores::parse("- rule: X\n- rule: Y\n  bogus: 1\n").expect_err("unknown key");
        assert!(e.starts_with("entry 2 ("), "{e}");
        assert!(e.contains("bogus"), "{e}");
        assert!(Ignores::parse("").expect("empty").is_empty());
    }
}
