//! Hand-written kubeconfig files pointing at the fake API server.

use std::path::{Path, PathBuf};

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub struct KubeconfigSpec<'a> {
    pub url: &'a str,
    pub ca_pem: &'a str,
    pub other_ca_pem: &'a str,
    /// Body of the `user:` mapping of the main user, unindented YAML.
    pub user_yaml: &'a str,
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    let mut out = String::new();
    for line in text.trim_end().lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(&pad);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// YAML string literal (double-quoted, escaped).
pub fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string to JSON")
}

pub fn render(spec: &KubeconfigSpec<'_>) -> String {
    let ca = base64(spec.ca_pem.as_bytes());
    let other_ca = base64(spec.other_ca_pem.as_bytes());
    let url = yaml_str(spec.url);
    let user = indent(spec.user_yaml, 4);
    format!(
        "apiVersion: v1
kind: Config
preferences: {{}}
current-context: fake
clusters:
- name: fake
  cluster:
    server: {url}
    certificate-authority-data: {ca}
- name: unreachable
  cluster:
    server: \"https://127.0.0.1:1\"
    certificate-authority-data: {ca}
- name: wrong-ca
  cluster:
    server: {url}
    certificate-authority-data: {other_ca}
users:
- name: fake-user
  user:
{user}- name: bad-token
  user:
    token: wrong-token
contexts:
- name: fake
  context:
    cluster: fake
    user: fake-user
- name: unreachable
  context:
    cluster: unreachable
    user: fake-user
- name: wrong-ca
  context:
    cluster: wrong-ca
    user: fake-user
- name: bad-token
  context:
    cluster: fake
    user: bad-token
"
    )
}

/// Writes `dir/kubeconfig` and returns its path.
pub fn write(dir: &Path, spec: &KubeconfigSpec<'_>) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, render(spec))
        .unwrap_or_else(|e| panic!("write kubeconfig {}: {e}", path.display()));
    path
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
