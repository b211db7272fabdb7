#!/usr/bin/env bash
# A `--for` soak with a short-lived token (issue 20): the example fake API server serves PODS Falco
# pods whose logs grow by 10 lines a second each (1 % are alerts for the namespace), and rotates
# its token every ROTATE seconds: the kubeconfig names a `tokenFile` that the server rewrites a
# few seconds before it revokes the old token (as a kubelet refreshes a projected token).
# `kubectl falco-verify --for MINUTES` follows every pod for the whole window, re-listing the pods
# every 10 s. Prints the RSS every REPORT minutes, then the verdict, the pods read, the alerts
# counted against those served (exact: PODS x 6 a minute), the rotations, and every warning.
#
#   scripts/bench/token_soak.sh BIN SERVER [PODS=36] [MINUTES=60] [ROTATE=120] [REPORT=5]
set -euo pipefail
BIN=$1 SERVER=$2 PODS=${3:-36} MINUTES=${4:-60} ROTATE=${5:-120} REPORT=${6:-5}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
lines=$(( (MINUTES * 60 + 60) * 10 ))
exec 3< <(sleep $(( MINUTES * 60 + 180 )))
sleeper=$!
# The logs start on a whole second; the window starts 5 s later, on a line boundary.
sleep "0.$(( 1000000000 - 10#$(date +%N) ))" 2>/dev/null || true
start_epoch=$(date +%s)
start=$(date -u -d "@$start_epoch" +%Y-%m-%dT%H:%M:%SZ)
"$SERVER" --kubeconfig "$dir/kubeconfig" --pods "$PODS" --lines "$lines" --step-ms 100 \
  --start "$start" --rotate-token-every "$ROTATE" --token-file "$dir/token" \
  --until-stdin-closes <&3 >"$dir/server.out" 2>"$dir/server.err" &
until grep -q READY "$dir/server.out" 2>/dev/null; do sleep 0.2; done
KUBECONFIG="$dir/kubeconfig" "$BIN" shadow-abc123 --for "${MINUTES}m" \
  --max-concurrency "$PODS" -o json >"$dir/result.json" 2>"$dir/err" &
sleep 1
pid=$(pgrep -n -f "$BIN shadow-abc123" || true)
echo "| minute | RSS MiB | peak RSS MiB | token rotations so far |"
echo "|---:|---:|---:|---:|"
for m in $(seq "$REPORT" "$REPORT" "$MINUTES"); do
  sleep $(( REPORT * 60 ))
  [ -r "/proc/$pid/status" ] || break
  rotations=$(grep -c "token rotated" "$dir/server.err" || true)
  awk -v m="$m" -v r="$rotations" '/VmRSS/{s=$2} /VmHWM/{h=$2} END{printf "| %d | %.1f | %.1f | %d |\n", m, s/1024, h/1024, r}' "/proc/$pid/status"
done
rc=0
wait %2 || rc=$?
echo "exit code: $rc"
python3 - "$dir/result.json" "$PODS" "$start_epoch" <<'PY'
import json, sys
from datetime import datetime
j = json.load(open(sys.argv[1]))
pods, start = int(sys.argv[2]), int(sys.argv[3])
read = sum(1 for p in j["pods"] if not p.get("gaps"))
# The example server: line i written at start + i*100 ms, every 100th (i % 100 == 99) an alert
# for the namespace whose Falco time is 250 us earlier.
def ns(t):
    d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    return int(d.timestamp()) * 10**9 + d.microsecond * 1000
lo, hi = ns(j["since_timestamp"]), ns(j["window_end"])
per_pod = sum(1 for i in range(99, 10**7, 100)
              if lo <= start * 10**9 + i * 10**8 - 250_000 <= hi)
expected = per_pod * pods
print(f"verdict: {j['verdict']}; pods read whole: {read}/{pods}; alerts counted: {j['alert_count']}, "
      f"served in the window: {expected} ({'exact' if expected == j['alert_count'] else 'DIFFERENT'})")
for p in j["pods"]:
    for g in p.get("gaps", []):
        print(f"gap {p['name']}: {g}")
for w in j.get("warnings", []):
    print("warning:", w)
PY
kill "$sleeper" 2>/dev/null || true
wait %1 2>/dev/null || true
echo "token rotations: $(grep -c 'token rotated' "$dir/server.err" || true); $(grep -o '[0-9]* requests answered.*' "$dir/server.err" || true)"
echo "stderr of the check:"; sed 's/^/  /' "$dir/err" | head -40
