#!/usr/bin/env bash
# The RSS of a long `--watch` (issue 20): the example fake API server serves PODS Falco pods whose
# logs grow by 10 lines a second each (1 % for the namespace), `kubectl falco-verify --watch`
# follows them for MINUTES, and its RSS is sampled every minute. Prints one row a minute
# (elapsed, RSS, peak RSS) and the alerts counted at the end (exact: PODS x 6 a minute).
#
#   scripts/bench/watch_rss.sh BIN SERVER [PODS=300] [MINUTES=10]
set -euo pipefail
BIN=$1 SERVER=$2 PODS=${3:-300} MINUTES=${4:-10}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
lines=$(( (MINUTES * 60 + 30) * 10 ))
exec 3< <(sleep $(( MINUTES * 60 + 120 )))
"$SERVER" --kubeconfig "$dir/kubeconfig" --pods "$PODS" --lines "$lines" --step-ms 100 \
  --start "$start" --until-stdin-closes <&3 >"$dir/server.out" 2>/dev/null &
until grep -q READY "$dir/server.out" 2>/dev/null; do sleep 0.2; done
KUBECONFIG="$dir/kubeconfig" timeout -s INT $(( MINUTES * 60 )) "$BIN" shadow-abc123 \
  --since-time "$start" --watch --max-concurrency "$PODS" -o json >"$dir/result.json" 2>"$dir/err" &
sleep 1
pid=$(pgrep -n -f "$BIN shadow-abc123" || true)
echo "| minute | RSS MiB | peak RSS MiB |"
echo "|---:|---:|---:|"
for m in $(seq 1 "$MINUTES"); do
  sleep 60
  [ -r "/proc/$pid/status" ] || break
  awk -v m="$m" '/VmRSS/{r=$2} /VmHWM/{h=$2} END{printf "| %d | %.1f | %.1f |\n", m, r/1024, h/1024}' "/proc/$pid/status"
done
wait %2 || true
python3 -c "
import json,sys
j=json.load(open('$dir/result.json'))
print('alerts counted:', j['alert_count'], 'pods read:', len(j['pods']), 'verdict:', j['verdict'])"
