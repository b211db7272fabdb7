#!/usr/bin/env bash
# Runs the GitHub Action's steps (action.yml) and the GitLab CI job's script (ci/gitlab-ci.yml)
# locally, against the example fake API server serving examples/demo, with a locally packaged
# archive in place of the release download. Checks what a pipeline would see: exit code 1
# (the demo has blocking alerts), the step outputs, the job summary, and the three reports.
#
#   scripts/try-ci.sh
#
# Environment: TRY_CI_BIN (a built kubectl-falco_verify; default: cargo build) and
# TRY_CI_SERVER (a built examples/fake_apiserver; default: cargo build --example).
# Network steps of the GitLab job (apt-get, downloading ci/falco-verify.sh) are replaced by the
# local copy; every other command is the job's own.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
die() { echo "try-ci.sh: $*" >&2; exit 1; }
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${TRY_CI_BIN:-}
SERVER=${TRY_CI_SERVER:-}
if [ -z "$BIN" ] || [ -z "$SERVER" ]; then
  cargo build --locked --bins --example fake_apiserver >&2
  BIN=${BIN:-$TARGET_DIR/debug/kubectl-falco_verify}
  SERVER=${SERVER:-$TARGET_DIR/debug/examples/fake_apiserver}
fi
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The release archive, as scripts/dist.sh packs it for the release.
DIST_GZIP_LEVEL=1 scripts/dist.sh --package-only "$BIN" "$work/dist" >/dev/null
archive=$(cd "$work/dist" && ls kubectl-falco-verify_v*_*.tar.gz)
version=${archive#kubectl-falco-verify_}; version=${version%%_*}

# The example fake API server with the demo dataset.
mkfifo "$work/hold"
"$SERVER" --kubeconfig "$work/kubeconfig" --corpus examples/demo --until-stdin-closes \
  <"$work/hold" >"$work/server.out" 2>&1 &
server_pid=$!
exec 9>"$work/hold"
for _ in $(seq 100); do grep -q READY "$work/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q READY "$work/server.out" || die "the fake API server did not start: $(cat "$work/server.out")"

common_env() {
  export FALCO_VERIFY_VERSION=$version
  export FALCO_VERIFY_ARCHIVE_URL="file://$work/dist/$archive"
  export FALCO_VERIFY_NAMESPACE=shadow-abc123
  export FALCO_VERIFY_SINCE_TIME=2024-01-15T10:30:00Z
  export FALCO_VERIFY_ARGS="--kubeconfig $work/kubeconfig"
}

expect_blocked() {
  local what=$1 code=$2 dir=$3
  [ "$code" = 1 ] || die "$what: exit $code, expected 1 (blocked)"
  for f in falco-verify.json falco-verify.xml falco-verify.md; do
    [ -s "$dir/$f" ] || die "$what: no $dir/$f"
  done
  grep -q '"verdict": "blocked"' "$dir/falco-verify.json" || die "$what: JSON verdict"
  grep -q '<testsuite ' "$dir/falco-verify.xml" || die "$what: JUnit"
  local xsd="$ROOT/../shared/schemas/junit-10.xsd"
  if command -v xmllint >/dev/null && [ -f "$xsd" ]; then
    xmllint --noout --schema "$xsd" "$dir/falco-verify.xml" 2>/dev/null || die "$what: JUnit does not validate"
  fi
  echo "try-ci.sh: $what: blocked (exit 1), reports in place"
}

# ---------------------------------------------------------------- GitHub Action
gh="$work/github"
mkdir -p "$gh/runner" "$gh/workspace"
(
  common_env
  export GITHUB_ACTIONS=true GITHUB_ACTION_PATH=$ROOT RUNNER_TEMP=$gh/runner
  export GITHUB_PATH=$gh/path GITHUB_OUTPUT=$gh/output GITHUB_STEP_SUMMARY=$gh/summary.md
  export FALCO_VERIFY_REPORT_DIR=$gh/workspace/falco-verify-reports
  cd "$gh/workspace"
  mapfile -t steps < <(sed -n "s/^ *run: '\(.*\)'$/\1/p" "$ROOT/action.yml")
  [ "${#steps[@]}" = 2 ] || die "action.yml: expected 2 run steps, found ${#steps[@]}"
  bash -ec "${steps[0]}" >"$gh/install.out"
  code=0
  bash -ec "${steps[1]}" >"$gh/check.out" 2>"$gh/check.err" || code=$?
  expect_blocked "GitHub Action" "$code" "$FALCO_VERIFY_REPORT_DIR"
  grep -qx "verdict=blocked" "$GITHUB_OUTPUT" || die "GitHub Action: step output verdict"
  grep -qx "exit-code=1" "$GITHUB_OUTPUT" || die "GitHub Action: step output exit-code"
  grep -q "falco-verify/bin" "$GITHUB_PATH" || die "GitHub Action: GITHUB_PATH"
  grep -q "Falco check: BLOCKED" "$GITHUB_STEP_SUMMARY" || die "GitHub Action: job summary"
  grep -q "^::error title=" "$gh/check.out" || die "GitHub Action: annotations"
) || exit 1

# ---------------------------------------------------------------- GitLab CI job
gl="$work/gitlab"
mkdir -p "$gl"
(
  common_env
  export CI=true GITLAB_CI=true CI_PIPELINE_ID=4242 CI_PROJECT_DIR=$gl
  export FALCO_VERIFY_HOME=$gl/.falco-verify
  cd "$gl"
  cp "$ROOT/ci/falco-verify.sh" falco-verify.sh
  # The job's variables (FALCO_VERIFY_NAMESPACE is set above to the demo's namespace).
  export FALCO_VERIFY_REPORT_DIR=falco-verify-reports
  mapfile -t lines < <(sed -n 's/^    - \(bash falco-verify.sh .*\)$/\1/p' "$ROOT/ci/gitlab-ci.yml")
  [ "${#lines[@]}" = 2 ] || die "ci/gitlab-ci.yml: expected the install and check lines"
  bash -ec "${lines[0]}" >/dev/null
  code=0
  bash -ec "${lines[1]}" >"$gl/check.out" 2>&1 || code=$?
  expect_blocked "GitLab job" "$code" "$gl/falco-verify-reports"
  ! grep -q "^::" "$gl/check.out" || die "GitLab job: GitHub annotations outside GitHub"
) || exit 1
echo "try-ci.sh: both recipes ran as a pipeline would run them"
