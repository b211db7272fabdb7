//! Exec credential plugins (`users[].user.exec`), run as client-go runs them: its stderr goes to
//! ours (it says what to run, e.g. a login command; passed on as it comes, neutralized), stdin
//! is handed over only when the plugin may be interactive, and `KUBERNETES_EXEC_INFO` tells it
//! whether it is. A plugin that outlives its time is killed. The credential is
//! fetched once and kept until it really expires (see [`super::Cluster`]); its output is never
//! logged or copied into a message: it holds the token.

use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use kube::config::{ExecAuthCluster, ExecConfig, ExecInteractiveMode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::ClusterError;

/// What the plugin handed back.
#[derive(Clone)]
pub enum Credential {
    Token {
        token: SecretString,
        expires: Option<DateTime<Utc>>,
    },
    /// A client certificate and key, PEM.
    Certificate {
        cert_pem: String,
        key_pem: SecretString,
        expires: Option<DateTime<Utc>>,
    },
}

impl Credential {
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        match self {
            Credential::Token { expires, .. } | Credential::Certificate { expires, .. } => *expires,
        }
    }
}

/// A plugin to run, and what it needs to know.
#[derive(Clone)]
pub struct ExecPlugin {
    pub config: ExecConfig,
    /// The cluster, for `provideClusterInfo: true`.
    pub cluster: Option<ExecAuthCluster>,
    /// Our stdin is a terminal (decides `interactiveMode: IfAvailable` and `Always`).
    pub stdin_tty: bool,
}

#[derive(Serialize)]
struct ExecInfo<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'static str,
    spec: ExecInfoSpec<'a>,
}

#[derive(Serialize)]
struct ExecInfoSpec<'a> {
    interactive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a ExecAuthCluster>,
}

#[derive(Deserialize)]
struct ExecOutput {
    status: Option<ExecStatus>,
}

#[derive(Deserialize)]
struct ExecStatus {
    #[serde(rename = "expirationTimestamp")]
    expiration_timestamp: Option<String>,
    token: Option<String>,
    #[serde(rename = "clientCertificateData")]
    client_certificate_data: Option<String>,
    #[serde(rename = "clientKeyData")]
    client_key_data: Option<String>,
}

impl ExecPlugin {
    /// Whether the plugin runs interactively: `Never` no, `IfAvailable` (the default) when stdin
    /// is a terminal, `Always` only on a terminal (else an error, as in client-go).
    pub fn interactive(&self) -> Result<bool, ClusterError> {
        match self.config.interactive_mode {
            Some(ExecInteractiveMode::Never) => Ok(false),
            Some(ExecInteractiveMode::Always) if !self.stdin_tty => Err(ClusterError::Credentials {
                detail: "the exec plugin has interactiveMode: Always but standard input is not a terminal".to_string(),
            }),
            _ => Ok(self.stdin_tty),
        }
    }

    /// Runs the plugin once, for at most `limit` (blocking: call it off the async threads).
    pub fn run(&self, limit: std::time::Duration) -> Result<Credential, ClusterError> {
        let command = self
            .config
            .command
            .as_deref()
            .ok_or(ClusterError::Credentials {
                detail: "the kubeconfig user's exec section has no command".to_string(),
            })?;
        let interactive = self.interactive()?;
        let api_version = self
            .config
            .api_version
            .as_deref()
            .unwrap_or("client.authentication.k8s.io/v1beta1");
        let info = ExecInfo {
            api_version,
            kind: "ExecCredential",
            spec: ExecInfoSpec {
                interactive,
                cluster: if self.config.provide_cluster_info {
                    self.cluster.as_ref()
                } else {
                    None
                },
            },
        };
        let info = serde_json::to_string(&info).map_err(|e| ClusterError::Credentials {
            detail: format!("cannot describe the exec request: {e}"),
        })?;
        let mut cmd = Command::new(command);
        cmd.args(self.config.args.iter().flatten());
        for var in self.config.env.iter().flatten() {
            if let (Some(name), Some(value)) = (var.get("name"), var.get("value")) {
                cmd.env(name, value);
            }
        }
        cmd.env("KUBERNETES_EXEC_INFO", info)
            .stdout(Stdio::piped())
            // What the plugin says (a login hint, an error) is for the person running us; through
            // a pipe, so that a plugin left behind does not hold our stderr open.
            .stderr(Stdio::piped())
            .stdin(if interactive {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        let started = std::time::Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            let hint = self
                .config
                .install_hint
                .as_deref()
                .map(|h| format!(" ({})", crate::sanitize::neutralize(h.trim())))
                .unwrap_or_default();
            ClusterError::Credentials {
                detail: format!(
                    "the exec command {} could not start: {e}{hint}",
                    crate::sanitize::neutralize(command)
                ),
            }
        })?;
        if let Some(mut err) = child.stderr.take() {
            std::thread::spawn(move || forward_stderr(&mut err));
        }
        let stdout = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = std::io::Read::read_to_end(&mut out, &mut buf);
                buf
            })
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < limit => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ClusterError::Credentials {
                        detail: format!(
                            "the exec credential plugin {} did not finish within {} s (waiting for a login?)",
                            crate::sanitize::neutralize(command),
                            limit.as_secs()
                        ),
                    });
                }
                Err(e) => {
                    return Err(ClusterError::Credentials {
                        detail: format!("waiting for the exec credential plugin: {e}"),
                    })
                }
            }
        };
        let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
        crate::debug::log(
            4,
            format_args!(
                "exec credential plugin {} ran in {} ms, exit {status} (interactive: {interactive})",
                crate::sanitize::neutralize(command),
                started.elapsed().as_millis(),
            ),
        );
        if !status.success() {
            return Err(ClusterError::Credentials {
                detail: format!(
                    "the exec credential command exited with {status} ({})",
                    crate::sanitize::neutralize(command),
                ),
            });
        }
        parse(&stdout)
    }
}

/// Passes the plugin's stderr on to ours as it comes (a prompt has no newline), neutralized.
fn forward_stderr(err: &mut impl std::io::Read) {
    use std::io::Write as _;
    let mut buf = [0u8; 4096];
    while let Ok(n) = err.read(&mut buf) {
        if n == 0 {
            break;
        }
        let text = crate::sanitize::neutralize(&String::from_utf8_lossy(&buf[..n]));
        let mut e = std::io::stderr().lock();
        if e.write_all(text.as_bytes())
            .and_then(|()| e.flush())
            .is_err()
        {
            break;
        }
    }
}

/// The plugin's stdout: an ExecCredential (JSON; client-go also takes YAML).
fn parse(stdout: &[u8]) -> Result<Credential, ClusterError> {
    let bad = |why: &str| ClusterError::Credentials {
        detail: format!("the exec command's output is not a usable ExecCredential: {why}"),
    };
    let out: ExecOutput = serde_json::from_slice(stdout)
        .or_else(|_| serde_saphyr::from_slice(stdout))
        .map_err(|_| bad("it does not parse"))?;
    let status = out.status.ok_or_else(|| bad("no status"))?;
    let expires = match status.expiration_timestamp.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| bad("expirationTimestamp is not RFC 3339"))?
                .with_timezone(&Utc),
        ),
    };
    match (
        status.client_certificate_data,
        status.client_key_data,
        status.token,
    ) {
        (Some(cert_pem), Some(key), _) => Ok(Credential::Certificate {
            cert_pem,
            key_pem: SecretString::from(key),
            expires,
        }),
        (_, _, Some(token)) if !token.is_empty() => Ok(Credential::Token {
            token: SecretString::from(token),
            expires,
        }),
        _ => Err(bad("neither a token nor a client certificate and key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(mode: Option<ExecInteractiveMode>, tty: bool) -> ExecPlugin {
        ExecPlugin {
            config: ExecConfig {
                command: Some("true".into()),
                interactive_mode: mode,
                ..ExecConfig::default()
            },
            cluster: None,
            stdin_tty: tty,
        }
    }

    #[test]
    fn interactive_modes_follow_client_go() {
        use ExecInteractiveMode::*;
        let cases = [
            (Some(Never), true, Some(false)),
            (Some(Never), false, Some(false)),
            (Some(IfAvailable), true, Some(true)),
            (Some(IfAvailable), false, Some(false)),
            (None, false, Some(false)),
            (Some(Always), true, Some(true)),
            (Some(Always), false, None),
        ];
        for (mode, tty, want) in cases {
            assert_eq!(
                plugin(mode.clone(), tty).interactive().ok(),
                want,
                "{mode:?} tty={tty}"
            );
        }
    }

    #[test]
    fn parses_tokens_certificates_and_expiry() {
        let t = parse(br#"{"kind":"ExecCredential","status":{"token":"abc","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#)
            .ok()
            .and_then(|c| c.expires());
        assert_eq!(t.map(|t| t.timestamp()), Some(1_893_456_000));
        assert!(matches!(
            parse(br#"{"status":{"clientCertificateData":"c","clientKeyData":"k"}}"#),
            Ok(Credential::Certificate { .. })
        ));
        assert!(parse(b"status:\n  token: abc\n").is_ok());
        assert!(parse(br#"{"status":{}}"#).is_err());
        assert!(parse(b"not json").is_err());
    }
}
