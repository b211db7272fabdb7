//! The fields of a Falco record that say whose event it is: `key=value` tokens of the text
//! output, the namespaces they name, dockershim container names, and the workload (pod,
//! container, image).

use serde_json::Value;

use memchr::memmem;

/// The parts of a dockershim-style container name: `(container, pod, namespace)`. Kubernetes
/// names cannot hold `_`, so the shape is exact: six parts, the first `k8s`, the last a number.
pub fn dockershim_name(name: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = name.split('_').collect();
    match parts.as_slice() {
        ["k8s", container, pod, ns, uid, attempt]
            if !container.is_empty()
                && !pod.is_empty()
                && is_dns_label(ns)
                && !uid.is_empty()
                && !attempt.is_empty()
                && attempt.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some((container, pod, ns))
        }
        _ => None,
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A value Falco prints for a field it could not resolve.
pub(crate) fn unresolved(v: &str) -> bool {
    v.is_empty() || v == "<NA>"
}

/// Bytes that end a `key=value` token in Falco's text output.
fn is_token_end(b: u8) -> bool {
    b.is_ascii_whitespace() || b == b')' || b == b',' || b == b'"' || b == b'|'
}

fn is_token_start(b: u8) -> bool {
    b.is_ascii_whitespace() || b == b'(' || b == b',' || b == b'|'
}

/// Every `key=` token in `text`: (position, value), in order.
pub(crate) fn tokens<'a>(text: &'a [u8], key: &[u8]) -> Vec<(usize, &'a [u8])> {
    memmem::find_iter(text, key)
        .filter(|&at| at == 0 || is_token_start(text[at - 1]))
        .map(|at| {
            let start = at + key.len();
            let len = text[start..]
                .iter()
                .position(|&b| is_token_end(b))
                .unwrap_or(text.len() - start);
            (at, &text[start..start + len])
        })
        .collect()
}

/// The namespaces a text message names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextNamespaces {
    /// The workload's namespace: the value of the syscall key (`k8s_ns_name=`, `k8s_ns=`,
    /// `k8s.ns=`) that comes last — Falco appends these after anything a watched process put
    /// into its command line. `None` for `<NA>` (host events).
    pub primary: Option<String>,
    /// k8s audit outputs (no syscall key): every `ns=` value. Audit rules print request fields
    /// that a user controls after `ns=`, so any of them naming the namespace counts.
    pub audit: Vec<String>,
    /// k8saudit rules about Namespace objects: the namespace created or deleted (`ns=`), which
    /// is no workload's namespace.
    pub object: Option<String>,
}

fn ns_value(v: &[u8]) -> Option<String> {
    (!v.is_empty() && v != b"<NA>").then(|| String::from_utf8_lossy(v).into_owned())
}

/// Namespaces named by the tokens of a text message.
pub fn text_namespaces(message: &[u8], namespace_object_rule: bool) -> TextNamespaces {
    let syscall = [&b"k8s_ns_name="[..], b"k8s_ns=", b"k8s.ns="]
        .iter()
        .filter_map(|k| tokens(message, k).last().copied())
        .max_by_key(|(at, _)| *at);
    if let Some((_, v)) = syscall {
        return TextNamespaces {
            primary: ns_value(v),
            ..TextNamespaces::default()
        };
    }
    if namespace_object_rule {
        // `ns=` / `namespace=` hold the Namespace object being created or deleted.
        let mut named = tokens(message, b"ns=");
        named.extend(tokens(message, b"namespace="));
        return TextNamespaces {
            object: named
                .into_iter()
                .max_by_key(|(at, _)| *at)
                .and_then(|(_, v)| ns_value(v)),
            ..TextNamespaces::default()
        };
    }
    // `ns=` in Falco's k8s audit rules; `target.namespace=` in the audit plugins' examples.
    let mut audit: Vec<(usize, &[u8])> = tokens(message, b"ns=");
    audit.extend(tokens(message, b"target.namespace="));
    audit.sort_by_key(|(at, _)| *at);
    let audit: Vec<String> = audit.into_iter().filter_map(|(_, v)| ns_value(v)).collect();
    TextNamespaces {
        primary: audit.last().cloned(),
        audit,
        object: None,
    }
}

/// The workload namespace of a text message (see [`text_namespaces`]).
pub fn text_namespace(message: &[u8], namespace_object_rule: bool) -> Option<String> {
    text_namespaces(message, namespace_object_rule).primary
}

/// The workload an alert is about: its pod, container and image (the namespace is the event's).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Workload {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub image: Option<String>,
}

impl Workload {
    /// From `output_fields` (`k8s.pod.name`, `container.name`, `container.image.repository` and
    /// `.tag`), else from the text tokens Falco appends (`k8s_pod_name=`, `container_name=`,
    /// `container_image_repository=`, `container_image_tag=`; older `k8s.pod=`, `container_image=`).
    pub fn of(
        namespace: Option<&str>,
        fields: Option<&super::output_fields::Fields>,
        output: Option<&str>,
    ) -> Workload {
        let field = |k: &str| {
            fields
                .and_then(|f| f.get(k))
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty() && *v != "<NA>")
                .map(str::to_string)
        };
        let text = output.unwrap_or("").as_bytes();
        let token = |keys: &[&[u8]]| {
            keys.iter()
                .filter_map(|k| tokens(text, k).last().and_then(|(_, v)| ns_value(v)))
                .next()
        };
        let pod = field("k8s.pod.name").or_else(|| token(&[b"k8s_pod_name=", b"k8s.pod="]));
        let container =
            field("container.name").or_else(|| token(&[b"container_name=", b"container.name="]));
        let repository = field("container.image.repository")
            .or_else(|| token(&[b"container_image_repository=", b"container_image="]));
        let tag = field("container.image.tag").or_else(|| token(&[b"container_image_tag="]));
        // A dockershim-style name holds the pod and the container Falco could not resolve.
        let (pod, container) = match container.as_deref().and_then(dockershim_name) {
            Some((c, p, _)) => (pod.or_else(|| Some(p.to_string())), Some(c.to_string())),
            None => (pod, container),
        };
        let image = match (repository, tag) {
            // `container_image=` may already hold the tag.
            (Some(r), Some(t)) if !r.ends_with(&format!(":{t}")) => Some(format!("{r}:{t}")),
            (r, _) => r,
        };
        Workload {
            namespace: namespace.map(str::to_string),
            pod,
            container,
            image,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_take_the_last() {
        assert_eq!(
            text_namespace(b"x k8s_ns_name=shadow-abc123", false).as_deref(),
            Some("shadow-abc123")
        );
        assert_eq!(
            text_namespace(b"(a=1 k8s_ns=shadow-abc123)", false).as_deref(),
            Some("shadow-abc123")
        );
        assert_eq!(
            text_namespace(b"k8s.ns=shadow-abc1234 k8s.pod=x", false).as_deref(),
            Some("shadow-abc1234")
        );
        assert_eq!(
            text_namespace(
                b"command=echo k8s_ns_name=evil k8s_ns_name=shadow-abc123",
                false
            )
            .as_deref(),
            Some("shadow-abc123")
        );
        assert_eq!(text_namespace(b"command=x k8s_ns_name=<NA>", false), None);
        assert_eq!(
            text_namespace(b"command=x ns=a k8s_ns_name=<NA>", false),
            None
        );
        assert_eq!(
            text_namespace(b"(user=a ns=shadow-abc123 resource=secrets)", false).as_deref(),
            Some("shadow-abc123")
        );
        assert_eq!(
            text_namespace(b"(user=a ns=shadow-abc123 resource=namespaces)", true),
            None
        );
        assert_eq!(text_namespace(b"xk8s_ns=shadow-abc123", false), None);
        assert_eq!(text_namespace(b"namespace=shadow-abc123", false), None);
    }

    #[test]
    fn the_latest_syscall_key_wins_and_any_audit_ns_counts() {
        // Falco 0.40 output; a command line carries a fake 0.41 token with <NA>.
        let m = b"command=sh -c echo k8s_ns_name=<NA> (container_id=1 k8s_ns=shadow-abc123 k8s_pod_name=p)";
        assert_eq!(text_namespace(m, false).as_deref(), Some("shadow-abc123"));
        // Audit output: user-controlled fields after the real ns= cannot hide it.
        let n = text_namespaces(
            b"(user=a ns=shadow-abc123 action=exec command=x userAgent=evil ns=kube-system)",
            false,
        );
        assert_eq!(n.primary.as_deref(), Some("kube-system"));
        assert!(n.audit.iter().any(|a| a == "shadow-abc123"));
        // A syscall key present: ns= tokens are not namespaces.
        assert!(text_namespaces(b"command=x ns=a k8s_ns_name=b", false)
            .audit
            .is_empty());
    }
}
