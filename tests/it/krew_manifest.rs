//! The krew manifest (`plugin.yaml`), its release-bot template (`krew/.krew.yaml`), the renderer
//! (`scripts/dist.sh --render-only`) and the release workflow, checked against krew's rules:
//! `internal/index/validation/validate.go` (`ValidatePlugin`) and `cmd/validate-krew-manifest`
//! (supported platforms, overlapping selectors, line lengths), plus krew-index's policy that
//! the archive carries a LICENSE.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
/// The file stem in krew-index: `plugins/falco-verify.yaml`.
const INDEX_NAME: &str = "falco-verify";
const REPO: &str = "https://github.com/falco-verify/kubectl-falco-verify";

/// `go tool dist list`, first and second halves.
const GOOS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];
const GOARCH: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
    "ppc64le", "riscv64", "s390x", "wasm",
];
const WANTED: &[(&str, &str)] = &[
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
];
/// Windows device names krew refuses as plugin names.
const WINDOWS_FORBIDDEN: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

// krew reads manifests strictly: unknown fields are errors (`indexscanner.ReadPluginFile`).
// YAML is parsed with serde-saphyr, the crate the plugin itself uses for YAML.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Plugin {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    version: String,
    homepage: Option<String>,
    short_description: String,
    description: Option<String>,
    caveats: Option<String>,
    platforms: Vec<Platform>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    selector: Option<Selector>,
    uri: String,
    sha256: String,
    files: Option<Vec<FileOp>>,
    bin: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    values: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOp {
    from: String,
    to: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn parse(text: &str, what: &str) -> Plugin {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{what} is not a krew Plugin: {e}"))
}

/// `^[\w-]+$` (Go's `\w` is ASCII) and not a Windows device name.
fn safe_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !WINDOWS_FORBIDDEN
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
}

/// krew's `semver.Parse`: a leading `v`, then k8s `ParseSemantic` (semver 2.0.0).
fn krew_semver(v: &str) -> Result<(), String> {
    let rest = v
        .strip_prefix('v')
        .ok_or_else(|| format!("version {v:?} does not start with 'v'"))?;
    let (core, build) = match rest.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (rest, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return Err(format!("version {v:?} is not MAJOR.MINOR.PATCH"));
    }
    let ident_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(pre) = pre {
        for id in pre.split('.') {
            if !ident_ok(id) || (id.bytes().all(|b| b.is_ascii_digit()) && !numeric(id)) {
                return Err(format!("bad pre-release {pre:?} in {v:?}"));
            }
        }
    }
    if let Some(build) = build {
        if !build.split('.').all(ident_ok) {
            return Err(format!("bad build metadata {build:?} in {v:?}"));
        }
    }
    Ok(())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Go's `filepath.Clean(to) == to` for the relative paths manifests use.
fn is_clean(p: &str) -> bool {
    if p == "." {
        return true;
    }
    !p.is_empty()
        && !p.ends_with('/')
        && !p.starts_with("./")
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// krew's label-selector match against `{os, arch}`.
fn matches(sel: &Selector, os: &str, arch: &str) -> bool {
    let label = |k: &str| match k {
        "os" => Some(os),
        "arch" => Some(arch),
        _ => None,
    };
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| label(k) == Some(v.as_str()));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
        let values = r.values.clone().unwrap_or_default();
        let have = label(&r.key);
        match r.operator.as_str() {
            "In" => have.is_some_and(|h| values.iter().any(|v| v == h)),
            "NotIn" => have.is_none_or(|h| values.iter().all(|v| v != h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Lines longer than `max` that hold more than one word (validate-krew-manifest warns).
fn long_lines(s: &str, max: usize) -> Vec<String> {
    s.lines()
        .filter(|l| l.chars().count() > max && l.trim().contains(' '))
        .map(str::to_string)
        .collect()
}

/// The names a platform's `files` put in the install directory (krew's direct moves; this
/// manifest uses no globs).
fn installed_files(files: &[FileOp]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            assert!(
                !f.from.contains(['*', '?', '[']),
                "use plain file names in `from`: {}",
                f.from
            );
            if f.to == "." {
                f.from.rsplit('/').next().unwrap_or(&f.from).to_string()
            } else {
                f.to.clone()
            }
        })
        .collect()
}

/// Every rule, as krew and krew-index apply them; `Err` lists what is wrong.
fn validate(index_name: &str, p: &Plugin) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let mut err = |s: String| errs.push(s);
    // ValidatePlugin
    if p.api_version != API_VERSION {
        err(format!("apiVersion {:?}", p.api_version));
    }
    if p.kind != "Plugin" {
        err(format!("kind {:?}", p.kind));
    }
    if !safe_plugin_name(index_name) {
        err(format!("plugin name {index_name:?} not allowed"));
    }
    if p.metadata.name != index_name {
        err(format!(
            "named {:?}, index file says {index_name:?}",
            p.metadata.name
        ));
    }
    let short = &p.spec.short_description;
    if short.is_empty() || short.contains(['\r', '\n']) {
        err(format!(
            "shortDescription must be one non-empty line: {short:?}"
        ));
    }
    if p.spec.platforms.is_empty() {
        err("no platforms".into());
    }
    if let Err(e) = krew_semver(&p.spec.version) {
        err(e);
    }
    for (i, pl) in p.spec.platforms.iter().enumerate() {
        let at = format!("platforms[{i}]");
        if pl.uri.is_empty() {
            err(format!("{at}: no uri"));
        }
        if !is_sha256(&pl.sha256) {
            err(format!(
                "{at}: sha256 {:?} does not match ^[a-f0-9]{{64}}$",
                pl.sha256
            ));
        }
        if pl.bin.is_empty() {
            err(format!("{at}: no bin"));
        }
        match &pl.files {
            Some(files) if files.is_empty() => err(format!("{at}: `files` empty")),
            Some(files) => {
                for f in files {
                    if f.from.is_empty() || f.to.is_empty() {
                        err(format!("{at}: file op without from/to: {f:?}"));
                    }
                    if !is_clean(&f.to) {
                        err(format!("{at}: `to` {:?} is not a clean path", f.to));
                    }
                }
            }
            None => {}
        }
        match &pl.selector {
            None => err(format!("{at}: no selector")),
            Some(sel) => {
                if sel.match_labels.is_none() && sel.match_expressions.is_none() {
                    err(format!("{at}: empty selector"));
                }
                if sel.match_labels.as_ref().is_some_and(BTreeMap::is_empty) {
                    err(format!("{at}: matchLabels specified but empty"));
                }
                if sel.match_expressions.as_ref().is_some_and(Vec::is_empty) {
                    err(format!("{at}: matchExpressions specified but empty"));
                }
                let keys = sel
                    .match_labels
                    .iter()
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .chain(
                        sel.match_expressions
                            .iter()
                            .flatten()
                            .map(|r| r.key.as_str()),
                    );
                for k in keys {
                    if k != "os" && k != "arch" {
                        err(format!("{at}: selector key {k:?} not supported"));
                    }
                }
                for (k, v) in sel.match_labels.iter().flatten() {
                    let known = if k == "os" { GOOS } else { GOARCH };
                    if !known.contains(&v.as_str()) {
                        err(format!("{at}: {k}={v} is not a Go GOOS/GOARCH value"));
                    }
                }
                // validate-krew-manifest: every platform is used.
                if !GOOS
                    .iter()
                    .any(|os| GOARCH.iter().any(|arch| matches(sel, os, arch)))
                {
                    err(format!("{at}: selector matches no platform"));
                }
            }
        }
    }
    // validate-krew-manifest: no <os, arch> selected by two platforms.
    for os in GOOS {
        for arch in GOARCH {
            let hits: Vec<usize> = p
                .spec
                .platforms
                .iter()
                .enumerate()
                .filter(|(_, pl)| pl.selector.as_ref().is_some_and(|s| matches(s, os, arch)))
                .map(|(i, _)| i)
                .collect();
            if hits.len() > 1 {
                err(format!("platforms {hits:?} all select {os}/{arch}"));
            }
        }
    }
    // validate-krew-manifest's line-length warnings, enforced.
    for (field, text, max) in [
        ("shortDescription", Some(short.as_str()), 70),
        ("description", p.spec.description.as_deref(), 80),
        ("caveats", p.spec.caveats.as_deref(), 80),
    ] {
        for line in long_lines(text.unwrap_or(""), max) {
            err(format!("{field}: line over {max} characters: {line:?}"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// What this project promises beyond krew's rules.
/// Our conventions; `all`: every release platform is listed (else an ordered subset: the
/// committed manifest lists only platforms with a real archive).
fn check_ours(p: &Plugin, all: bool) {
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(p.spec.version, version, "version follows Cargo.toml");
    assert_eq!(
        p.spec.homepage.as_deref(),
        Some(env!("CARGO_PKG_REPOSITORY"))
    );
    assert_eq!(env!("CARGO_PKG_REPOSITORY"), REPO);
    let caveats = p.spec.caveats.as_deref().unwrap_or("");
    for needed in ["list and get on pods", "get on pods/log", "Falco namespace"] {
        assert!(caveats.contains(needed), "caveats name the RBAC: {needed}");
    }
    let mut seen = Vec::new();
    for pl in &p.spec.platforms {
        let labels = pl
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        assert_eq!(labels.len(), 2, "os and arch: {labels:?}");
        let (os, arch) = (labels["os"].as_str(), labels["arch"].as_str());
        seen.push((os.to_string(), arch.to_string()));
        let exe = if os == "windows" { ".exe" } else { "" };
        assert_eq!(
            pl.uri,
            format!(
                "{REPO}/releases/download/{version}/kubectl-falco-verify_{version}_{os}_{arch}.tar.gz"
            )
        );
        assert_eq!(pl.bin, format!("kubectl-falco_verify{exe}"));
        let files = pl.files.as_deref().unwrap_or_default();
        assert!(!files.is_empty(), "files are listed explicitly");
        let installed = installed_files(files);
        for want in [
            format!("kubectl-falco_verify{exe}"),
            format!("kubectl_complete-falco_verify{exe}"),
            "kubectl-falco_verify.1".to_string(),
            "LICENSE".to_string(),
            "README.md".to_string(),
        ] {
            assert!(installed.contains(&want), "{os}/{arch} installs {want}");
        }
        assert!(
            installed.contains(&pl.bin),
            "bin is among the installed files"
        );
    }
    let want: Vec<(String, String)> = WANTED
        .iter()
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .collect();
    if all {
        assert_eq!(seen, want, "the five release platforms, in order");
    } else {
        assert!(!seen.is_empty(), "at least one platform");
        let mut rest = want.iter();
        assert!(
            seen.iter().all(|s| rest.any(|w| w == s)),
            "release platforms, in order: {seen:?}"
        );
    }
}

/// The template rendered with a made-up sum for every platform: a complete manifest.
fn full_manifest() -> Plugin {
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    let sums: BTreeMap<String, String> = WANTED
        .iter()
        .enumerate()
        .map(|(i, (os, arch))| {
            (
                format!("kubectl-falco-verify_{tag}_{os}_{arch}.tar.gz"),
                format!("{:0>64}", format!("abcdef{}", i + 1)),
            )
        })
        .collect();
    parse(
        &render_template(&read("krew/.krew.yaml"), &tag, &sums),
        "full rendering",
    )
}

#[test]
fn plugin_yaml_passes_krew_validation() {
    let p = parse(&read("plugin.yaml"), "plugin.yaml");
    if let Err(errs) = validate(INDEX_NAME, &p) {
        panic!("plugin.yaml:\n  {}", errs.join("\n  "));
    }
    check_ours(&p, false);
    let full = full_manifest();
    validate(INDEX_NAME, &full).unwrap_or_else(|e| panic!("{e:?}"));
    check_ours(&full, true);
}

#[test]
fn validation_catches_what_krew_rejects() {
    let good = full_manifest();
    assert!(validate(INDEX_NAME, &good).is_ok());
    let bad = |edit: &dyn Fn(&mut Plugin)| {
        let mut p = good.clone();
        edit(&mut p);
        validate(INDEX_NAME, &p).is_err()
    };
    assert!(
        validate("falco_verify", &good).is_err(),
        "name = index file stem"
    );
    assert!(bad(
        &|p| p.api_version = "krew.googlecontainertools.github.com/v1alpha1".into()
    ));
    assert!(bad(&|p| p.kind = "plugin".into()));
    assert!(bad(&|p| p.spec.version = "0.1.0".into()));
    assert!(bad(&|p| p.spec.version = "v0.1".into()));
    assert!(bad(&|p| p.spec.version = "v01.0.0".into()));
    assert!(!bad(&|p| p.spec.version = "v0.1.0-rc.1+g123".into()));
    assert!(bad(&|p| p.spec.short_description = "two\nlines".into()));
    assert!(bad(&|p| p.spec.short_description = String::new()));
    assert!(bad(
        &|p| p.spec.platforms[0].sha256 = p.spec.platforms[0].sha256.to_uppercase()
    ));
    assert!(bad(&|p| p.spec.platforms[0].sha256.truncate(63)));
    assert!(bad(&|p| p.spec.platforms[0].bin = String::new()));
    assert!(bad(&|p| p.spec.platforms[0].files = Some(vec![])));
    assert!(bad(&|p| p.spec.platforms[0].files = Some(vec![FileOp {
        from: "x".into(),
        to: "./bin/".into()
    }])));
    assert!(bad(&|p| {
        if let Some(sel) = &mut p.spec.platforms[0].selector {
            sel.match_labels
                .get_or_insert_with(BTreeMap::new)
                .insert("os".into(), "macos".into());
        }
    }));
    assert!(bad(&|p| {
        if let Some(sel) = &mut p.spec.platforms[0].selector {
            sel.match_labels
                .get_or_insert_with(BTreeMap::new)
                .insert("distro".into(), "debian".into());
        }
    }));
    assert!(bad(
        &|p| p.spec.platforms[1].selector = p.spec.platforms[0].selector.clone()
    ));
    assert!(bad(&|p| p.spec.platforms[0].selector = None));
    // An `arch`-less selector overlaps every linux platform.
    assert!(bad(&|p| {
        if let Some(labels) = p.spec.platforms[0]
            .selector
            .as_mut()
            .and_then(|s| s.match_labels.as_mut())
        {
            labels.remove("arch");
        }
    }));
    // Strict parsing, as krew does.
    let unknown = read("plugin.yaml").replace("  homepage:", "  homePage:");
    assert!(serde_saphyr::from_str::<Plugin>(&unknown).is_err());
}

/// krew-release-bot's rendering of the template, with the sha256 values taken from `sums`.
/// The release bot's rendering; a platform without a sum is left out (as `dist.sh
/// --render-partial` does for the committed manifest).
fn render_template(template: &str, tag: &str, sums: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    // The platform item being rendered, and whether it has its sum.
    let mut item: Option<(String, bool)> = None;
    let mut in_list = false;
    let flush = |item: &mut Option<(String, bool)>, out: &mut String| {
        if let Some((text, true)) = item.take() {
            out.push_str(&text);
        }
    };
    for line in template.lines() {
        let line = line.replace("{{ .TagName }}", tag);
        if in_list && line.starts_with("  - ") {
            flush(&mut item, &mut out);
            item = Some((String::new(), true));
        } else if in_list && !line.starts_with("    ") && !line.trim().is_empty() {
            flush(&mut item, &mut out);
            in_list = false;
        }
        if line.trim_end() == "  platforms:" {
            in_list = true;
        }
        let t = line.trim_start();
        let text = if let Some(rest) = t.strip_prefix("{{addURIAndSha \"") {
            let indent = &line[..line.len() - t.len()];
            let (url, tail) = rest.split_once('"').unwrap_or_else(|| panic!("{line}"));
            assert_eq!(tail.trim(), ".TagName }}", "{line}");
            let file = url.rsplit('/').next().unwrap_or(url);
            match sums.get(file) {
                Some(sha) => format!("{indent}uri: {url}\n{indent}sha256: {sha}\n"),
                None => {
                    if let Some(i) = &mut item {
                        i.1 = false;
                    }
                    String::new()
                }
            }
        } else {
            assert!(!line.contains("{{"), "unexpected template action: {line}");
            format!("{line}\n")
        };
        match &mut item {
            Some((buf, _)) => buf.push_str(&text),
            None => out.push_str(&text),
        }
    }
    flush(&mut item, &mut out);
    out
}

fn sums_of(p: &Plugin) -> BTreeMap<String, String> {
    p.spec
        .platforms
        .iter()
        .map(|pl| {
            let file = pl.uri.rsplit('/').next().unwrap_or(&pl.uri).to_string();
            (file, pl.sha256.clone())
        })
        .collect()
}

#[test]
fn release_bot_template_is_the_same_manifest() {
    let template = read("krew/.krew.yaml");
    // The bot's template functions, and the URL pattern the release workflow uploads to.
    assert!(template.contains("version: {{ .TagName }}"));
    for (os, arch) in WANTED {
        let line = format!(
            "{{{{addURIAndSha \"{REPO}/releases/download/{{{{ .TagName }}}}/kubectl-falco-verify_{{{{ .TagName }}}}_{os}_{arch}.tar.gz\" .TagName }}}}"
        );
        assert!(template.contains(&line), "template has {line}");
    }
    assert!(!template.contains("sha256:"), "the bot adds sha256 itself");

    let committed = parse(&read("plugin.yaml"), "plugin.yaml");
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    let rendered = render_template(&template, &tag, &sums_of(&committed));
    let from_template = parse(&rendered, "rendered krew/.krew.yaml");
    assert_eq!(
        from_template, committed,
        "plugin.yaml is krew/.krew.yaml rendered (run scripts/dist.sh and copy dist/plugin.yaml)"
    );
    // And with another tag, still valid: the bot renders it for every release.
    let next_sums = sums_of(&committed)
        .into_iter()
        .map(|(file, sha)| (file.replace(&tag, "v9.8.7"), sha))
        .collect();
    let next = render_template(&template, "v9.8.7", &next_sums);
    let next = parse(&next, "krew/.krew.yaml for v9.8.7");
    validate(INDEX_NAME, &next).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(next.spec.platforms[0]
        .uri
        .contains("/v9.8.7/kubectl-falco-verify_v9.8.7_"));
}

fn have(cmd: &str) -> bool {
    Command::new("bash")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn dist(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(root().join("scripts/dist.sh"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run scripts/dist.sh: {e}"))
}

fn write_sums(dir: &Path, sums: &BTreeMap<String, String>) {
    for (file, sha) in sums {
        std::fs::write(
            dir.join(format!("{file}.sha256")),
            format!("{sha}  {file}\n"),
        )
        .unwrap_or_else(|e| panic!("write sum: {e}"));
    }
}

#[test]
fn dist_sh_renders_the_manifest() {
    if !have("bash") || !have("awk") {
        eprintln!("NOTICE: bash or awk missing; dist.sh's renderer not tested");
        return;
    }
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(root().join("scripts/dist.sh"))
        .status()
        .map(|s| s.success());
    assert_eq!(syntax.ok(), Some(true), "bash -n scripts/dist.sh");

    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    let sums: BTreeMap<String, String> = WANTED
        .iter()
        .enumerate()
        .map(|(i, (os, arch))| {
            (
                format!("kubectl-falco-verify_{tag}_{os}_{arch}.tar.gz"),
                format!("{:x}", i + 1).repeat(64),
            )
        })
        .collect();

    // One archive missing: --render-only (the release) refuses.
    let partial: BTreeMap<String, String> = sums.clone().into_iter().skip(1).collect();
    write_sums(tmp.path(), &partial);
    let out = dist(&["--render-only", &tmp.path().to_string_lossy()]);
    assert!(
        !out.status.success(),
        "a missing platform fails the release render"
    );
    let missing = sums.keys().next().map(String::as_str).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(missing),
        "names the missing {missing}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    write_sums(tmp.path(), &sums);
    let out = dist(&["--render-only", &tmp.path().to_string_lossy()]);
    assert!(
        out.status.success(),
        "dist.sh --render-only: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(tmp.path().join("plugin.yaml"))
        .unwrap_or_else(|e| panic!("rendered plugin.yaml: {e}"));
    assert!(!text.contains("placeholder"));
    let rendered = parse(&text, "dist.sh's plugin.yaml");
    validate(INDEX_NAME, &rendered).unwrap_or_else(|e| panic!("{e:?}"));
    check_ours(&rendered, true);
    assert_eq!(
        sums_of(&rendered),
        sums,
        "each platform gets its own archive's sum"
    );
    // The same as the bot's rendering of the template.
    let bot = parse(
        &render_template(&read("krew/.krew.yaml"), &tag, &sums),
        "bot rendering",
    );
    assert_eq!(rendered, bot);
}

#[test]
fn committed_manifest_lists_only_platforms_with_a_real_sum() {
    // krew rejects a placeholder hash: a platform without an archive is not listed at all.
    for line in read("plugin.yaml").lines() {
        if let Some(v) = line.trim().strip_prefix("sha256: ") {
            let sha = v.split_whitespace().next().unwrap_or("");
            assert!(!sha.bytes().all(|b| b == b'0'), "{line}");
            assert!(!line.contains('#'), "{line}");
        }
    }
    let readme = read("krew/README.md");
    assert!(
        readme.contains("--render-partial"),
        "krew/README.md says how the committed manifest is made"
    );
}

#[test]
fn release_workflow_is_valid_and_complete() {
    let text = read(".github/workflows/release.yml");
    let wf: serde_json::Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("release.yml is not YAML: {e}"));
    let tags = &wf["on"]["push"]["tags"];
    assert!(
        tags.as_array()
            .is_some_and(|t| t.iter().any(|v| v.as_str() == Some("v*"))),
        "runs on v* tags: {tags:?}"
    );
    let jobs = wf["jobs"].as_object().unwrap_or_else(|| panic!("no jobs"));
    let mut targets = Vec::new();
    for (_, job) in jobs {
        for entry in job["strategy"]["matrix"]["include"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(t) = entry["target"].as_str() {
                targets.push(t.to_string());
            }
        }
    }
    targets.sort();
    assert_eq!(
        targets,
        [
            "aarch64-apple-darwin",
            "aarch64-unknown-linux-gnu",
            "x86_64-apple-darwin",
            "x86_64-pc-windows-msvc",
            "x86_64-unknown-linux-gnu",
        ]
    );
    assert!(text.contains("scripts/dist.sh --target"));
    assert!(text.contains("scripts/dist.sh --render-only"));
    assert!(text.contains("rajatjindal/krew-release-bot@"));
    assert!(text.contains("krew_template_file: krew/.krew.yaml"));
}
