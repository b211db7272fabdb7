#!/usr/bin/env bash
# The steps of the GitHub Action (action.yml) and of the GitLab CI job (ci/gitlab-ci.yml), in one
# script so that CI and `scripts/try-ci.sh` run the same commands.
#
#   ci/falco-verify.sh install   download the pinned release archive for this runner, check its
#                                sha256, unpack it under $FALCO_VERIFY_HOME/bin (and add that to
#                                $GITHUB_PATH when set)
#   ci/falco-verify.sh check     run the check with reports (and, under GitHub Actions,
#                                annotations and the job summary); exit with its exit code
#
# Environment (the action maps its inputs to these):
#   FALCO_VERIFY_VERSION      release tag, e.g. v0.1.0 (install)
#   FALCO_VERIFY_ARCHIVE_URL  archive to install (default: the release's for this OS/arch; a
#                             file:// URL works, its .sha256 must sit beside it)
#   FALCO_VERIFY_HOME         where to install (default: $RUNNER_TEMP or /tmp, /falco-verify)
#   FALCO_VERIFY_NAMESPACE    namespace to check (check; required)
#   FALCO_VERIFY_SINCE_TIME   window start, RFC3339 (check; or FALCO_VERIFY_SINCE)
#   FALCO_VERIFY_SINCE        window length, e.g. 10m
#   FALCO_VERIFY_SEVERITY     threshold (default warning)
#   FALCO_VERIFY_REPORT_DIR   where falco-verify.{json,xml,md} go (default: falco-verify-reports)
#   FALCO_VERIFY_FAIL_CLOSED  true (default) or false
#   FALCO_VERIFY_ARGS         more arguments, split on spaces (e.g. "--kubeconfig /path")
set -euo pipefail

REPO=https://github.com/falco-verify/kubectl-falco-verify
home=${FALCO_VERIFY_HOME:-${RUNNER_TEMP:-/tmp}/falco-verify}

die() { echo "falco-verify: $*" >&2; exit 2; }

platform() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;; Darwin) os=darwin ;; MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) die "unsupported OS $(uname -s)" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;;
    *) die "unsupported CPU $(uname -m)" ;;
  esac
  echo "${os}_${arch}"
}

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

install() {
  local version=${FALCO_VERIFY_VERSION:?FALCO_VERIFY_VERSION (the release tag) is required}
  local archive="kubectl-falco-verify_${version}_$(platform).tar.gz"
  local url=${FALCO_VERIFY_ARCHIVE_URL:-$REPO/releases/download/$version/$archive}
  mkdir -p "$home/bin"
  local tmp
  tmp=$(mktemp -d)
  curl -fsSL --retry 3 -o "$tmp/archive.tar.gz" "$url"
  curl -fsSL --retry 3 -o "$tmp/archive.sha256" "$url.sha256"
  local want got
  want=$(cut -d' ' -f1 <"$tmp/archive.sha256")
  got=$(sha256_of "$tmp/archive.tar.gz")
  [ "$want" = "$got" ] || die "sha256 of $url is $got, the release says $want"
  tar -xzf "$tmp/archive.tar.gz" -C "$home/bin"
  rm -rf "$tmp"
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$home/bin" >>"$GITHUB_PATH"; fi
  "$home/bin/kubectl-falco_verify" --version
}

check() {
  local bin=kubectl-falco_verify
  [ -x "$home/bin/$bin" ] && bin="$home/bin/$bin"
  local ns=${FALCO_VERIFY_NAMESPACE:?FALCO_VERIFY_NAMESPACE is required}
  local dir=${FALCO_VERIFY_REPORT_DIR:-falco-verify-reports}
  mkdir -p "$dir"
  local args=("$ns" --severity "${FALCO_VERIFY_SEVERITY:-warning}"
    --report "json=$dir/falco-verify.json"
    --report "junit=$dir/falco-verify.xml"
    --report "markdown=$dir/falco-verify.md")
  if [ -n "${FALCO_VERIFY_SINCE_TIME:-}" ]; then args+=(--since-time "$FALCO_VERIFY_SINCE_TIME")
  elif [ -n "${FALCO_VERIFY_SINCE:-}" ]; then args+=(--since "$FALCO_VERIFY_SINCE"); fi
  if [ "${FALCO_VERIFY_FAIL_CLOSED:-true}" = true ]; then args+=(--fail-closed); fi
  # shellcheck disable=SC2206  # split on spaces on purpose
  [ -n "${FALCO_VERIFY_ARGS:-}" ] && args+=($FALCO_VERIFY_ARGS)
  local code=0
  "$bin" "${args[@]}" || code=$?
  local verdict
  verdict=$(sed -n 's/^  "verdict": "\(.*\)",$/\1/p' "$dir/falco-verify.json" 2>/dev/null | head -1)
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    { echo "verdict=${verdict:-unknown}"; echo "exit-code=$code"; echo "report-dir=$dir"; } >>"$GITHUB_OUTPUT"
  fi
  echo "falco-verify: verdict ${verdict:-unknown}, exit code $code; reports in $dir"
  return "$code"
}

case "${1:-}" in
  install) install ;;
  check) check ;;
  *) die "usage: ci/falco-verify.sh install|check" ;;
esac
