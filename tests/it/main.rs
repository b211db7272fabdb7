//! The black-box tests: the built binary against the local HTTPS fake API server
//! (`crates/fake-apiserver`), real kubectl, the release archive, and property tests. One test
//! binary, so the fake server and the helpers are compiled and linked once.

mod common;

mod canary;
mod cluster_check;
mod coverage;
mod fake_kubectl;
mod faults;
mod install;
mod interactive;
mod krew_manifest;
mod kubeconfig_variants;
mod offline;
mod properties;
mod readme;
mod reports;
mod untrusted;
mod watch;
mod watching;
