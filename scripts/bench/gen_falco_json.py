#!/usr/bin/env python3
"""Writes a large Falco 0.42 JSON-lines log (json_output: true) for benchmarks.

    gen_falco_json.py OUT_FILE SIZE_MIB [--namespace shadow-abc123] [--slice-mib 100]

A block of BLOCK_LINES distinct lines (~1 KB each) is built once and repeated until the file
reaches SIZE_MIB MiB (the last block is cut at a line boundary), so writing 1 GiB takes a few
seconds. Next to OUT_FILE, OUT_FILE.meta.json records what a correct reader must find:

  lines, bytes            the file
  expected_alerts         rule alerts whose namespace field is exactly NAMESPACE and whose
                          time is >= WINDOW_START (= what `--since-time WINDOW_START` counts)
  expected_blocking       of those, priority Warning or more severe
  expected_outside_window alerts for NAMESPACE before WINDOW_START
  grep_count              lines containing the bytes NAMESPACE (what `grep -cF` says)
  ns_field_count          lines whose output_fields["k8s.ns.name"] == NAMESPACE (jq select)
  slice_lines, slice_bytes, slice_ns_field_count   the first whole blocks covering --slice-mib

Line mix per block of 10,000 (j = line index in the block):
  j % 200 in {0, 100}  alert for NAMESPACE (syscall source), all 8 priorities in turn; the one
                       at j == 100 has a time 1 ns before the window (not counted)
  j % 200 in {50, 150} alert for NAMESPACE + "4" (prefix trap, syscall or k8s_audit)
  j % 200 == 25        alert in `default` whose command line mentions NAMESPACE
  j % 200 == 75        alert in `ci` whose pod is NAMESPACE-runner-...
  j % 1000 == 999      Falco internal: metrics snapshot (source internal)
  j % 50 == 7          host event (k8s.ns.name null)
  j % 10 == 3          k8s_audit alert for another namespace
  otherwise            syscall alert for another namespace, mixed rules and priorities
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone

VERSION = 2  # bump when the output changes (the cache key includes it)
BLOCK_LINES = 10_000
WINDOW_START = datetime(2024, 1, 15, 10, 30, 0, tzinfo=timezone.utc)
PRIORITIES = ["Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"]
BLOCKING = set(PRIORITIES[:5])  # Warning or more severe
OTHER_NS = ["default", "kube-system", "monitoring", "payments", "argocd", "ci", "ingress-nginx"]
HOSTS = ["ip-10-0-1-23", "ip-10-0-2-41", "ip-10-0-3-7"]

SYSCALL_RULES = [
    ("Terminal shell in container", "A shell was spawned in a container with an attached terminal",
     "execve", ["T1059", "container", "maturity_stable", "mitre_execution", "shell"]),
    ("Read sensitive file untrusted", "Sensitive file opened for reading by non-trusted program",
     "openat", ["T1555", "container", "filesystem", "host", "maturity_stable", "mitre_credential_access"]),
    ("Contact K8S API Server From Container", "Unexpected connection to K8s API Server from container",
     "connect", ["T1565", "container", "k8s", "maturity_stable", "mitre_discovery", "network"]),
    ("Drop and execute new binary in container", "Executing binary not part of base image",
     "execve", ["TA0003", "container", "maturity_stable", "mitre_persistence", "process"]),
    ("Launch Package Management Process in Container", "Package management process launched in container",
     "execve", ["T1505", "container", "maturity_incubating", "mitre_persistence", "process", "software_mgmt"]),
    ("Clear Log Activities", "Log files were tampered",
     "openat", ["NIST_800-53_AU-10", "T1070", "container", "filesystem", "host", "maturity_stable", "mitre_defense_evasion"]),
]
PROCESSES = [
    ("bash", "/usr/bin/bash", "bash -il"),
    ("cat", "/bin/cat", "cat /etc/shadow"),
    ("python3", "/usr/bin/python3.11", "python3 /app/sync.py --once"),
    ("curl", "/usr/bin/curl", "curl -s https://10.96.0.1:443/api"),
    ("sh", "/bin/sh", "sh -c id"),
    ("apt-get", "/usr/bin/apt-get", "apt-get install -y netcat-openbsd"),
]
AUDIT_RULES = [
    ("K8s Secret Get Successfully", "secrets", "db-credentials"),
    ("K8s Deployment Created", "deployments", "storefront"),
    ("Attach/Exec Pod", "pods", "storefront-6c9d8b7f4-qx2lp"),
]


def rfc3339_nano(t_ns):
    secs, nanos = divmod(t_ns, 1_000_000_000)
    dt = datetime.fromtimestamp(secs, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % nanos


def hms_nano(t_ns):
    secs, nanos = divmod(t_ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%H:%M:%S") + ".%09d" % nanos


def dumps(obj):
    # Falco prints compact JSON with sorted keys.
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def syscall_alert(j, t_ns, host, ns, priority, cmdline=None, pod=None):
    rule, desc, evt_type, tags = SYSCALL_RULES[j % len(SYSCALL_RULES)]
    pname, exepath, default_cmd = PROCESSES[(j // 3) % len(PROCESSES)]
    cmd = cmdline or default_cmd
    cid = "%012x" % ((j * 0x9E3779B97F4A7C15 >> 16) & 0xFFFFFFFFFFFF)
    pod = pod or "storefront-%x-%05d" % ((j // 7) % 0xFFFFF, j % 100_000)
    out = (
        f"{hms_nano(t_ns)}: {priority} {desc} | evt_type={evt_type} user=root user_uid=0 "
        f"user_loginuid=-1 process={pname} proc_exepath={exepath} parent=runc command={cmd} "
        f"terminal=34816 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id={cid} container_name=web "
        f"container_image_repository=ghcr.io/acme/storefront container_image_tag=2.8.1 "
        f"k8s_pod_name={pod} k8s_ns_name={ns}"
    )
    return dumps({
        "hostname": host,
        "output": out,
        "output_fields": {
            "container.id": cid,
            "container.image.repository": "ghcr.io/acme/storefront",
            "container.image.tag": "2.8.1",
            "container.name": "web",
            "evt.arg.flags": "EXE_WRITABLE|EXE_LOWER_LAYER",
            "evt.time": t_ns,
            "evt.type": evt_type,
            "k8s.ns.name": ns,
            "k8s.pod.name": pod,
            "proc.cmdline": cmd,
            "proc.exepath": exepath,
            "proc.name": pname,
            "proc.pname": "runc",
            "proc.tty": 34816,
            "user.loginuid": -1,
            "user.name": "root",
            "user.uid": 0,
        },
        "priority": priority,
        "rule": rule,
        "source": "syscall",
        "tags": tags,
        "time": rfc3339_nano(t_ns),
    })


def audit_alert(j, t_ns, host, ns, priority):
    rule, resource, name = AUDIT_RULES[j % len(AUDIT_RULES)]
    user = "system:serviceaccount:%s:default" % ns
    reason = 'RBAC: allowed by ClusterRoleBinding "ops-admins" of ClusterRole "cluster-admin" to Group "ops"'
    out = (
        f"{hms_nano(t_ns)}: {priority} {rule} (user={user} target={name} ns={ns} "
        f"resource={resource} resp=200 decision=allow reason={reason})"
    )
    return dumps({
        "hostname": host,
        "output": out,
        "output_fields": {
            "evt.time": t_ns,
            "ka.auth.decision": "allow",
            "ka.auth.reason": reason,
            "ka.response.code": "200",
            "ka.target.name": name,
            "ka.target.namespace": ns,
            "ka.target.resource": resource,
            "ka.user.name": user,
        },
        "priority": priority,
        "rule": rule,
        "source": "k8s_audit",
        "tags": ["k8s"],
        "time": rfc3339_nano(t_ns),
    })


def host_alert(j, t_ns, host):
    out = (
        f"{hms_nano(t_ns)}: Alert File below /var/lib/kubelet opened for writing | "
        f"file=/var/lib/kubelet/config.yaml evt_type=openat user=root process=vi "
        f"command=vi /var/lib/kubelet/config.yaml container_id=host container_name=host "
        f"container_image_repository= container_image_tag= k8s_pod_name=<NA> k8s_ns_name=<NA>"
    )
    return dumps({
        "hostname": host,
        "output": out,
        "output_fields": {
            "container.id": "host", "container.image.repository": "", "container.image.tag": "",
            "container.name": "host", "evt.time": t_ns, "evt.type": "openat",
            "fd.name": "/var/lib/kubelet/config.yaml", "k8s.ns.name": None, "k8s.pod.name": None,
            "proc.cmdline": "vi /var/lib/kubelet/config.yaml", "proc.name": "vi", "user.name": "root",
        },
        "priority": "Alert",
        "rule": "Custom: Write below kubelet config",
        "source": "syscall",
        "tags": ["custom", "filesystem", "host"],
        "time": rfc3339_nano(t_ns),
    })


def metrics_snapshot(j, t_ns, host):
    return dumps({
        "hostname": host,
        "output": "Falco metrics snapshot",
        "output_fields": {
            "evt.hostname": host, "evt.source": "syscall", "evt.time": t_ns,
            "falco.cpu_usage_perc": 2.3, "falco.duration_sec": 1802 + j, "falco.host_num_cpus": 4,
            "falco.kernel_release": "6.1.0-17-cloud-amd64", "falco.memory_rss_mb": 118.4,
            "falco.num_evts": 9214876 + j, "falco.num_evts_prev": 4593012,
            "falco.outputs_queue_num_drops": 0, "falco.rules.matches_total": 14 + j,
            "falco.start_ts": 1705312798102217554, "falco.version": "0.42.1",
            "scap.engine_name": "modern_bpf", "scap.n_drops": 0, "scap.n_evts": 9216087 + j,
        },
        "priority": "Informational",
        "rule": "Falco internal: metrics snapshot",
        "source": "internal",
        "time": rfc3339_nano(t_ns),
    })


def build_block(ns):
    """Returns (lines, per-line classification)."""
    base = int(WINDOW_START.timestamp()) * 1_000_000_000
    lines, kinds = [], []
    n_target = 0
    for j in range(BLOCK_LINES):
        t_ns = base + j * 10_000_000 + (j * 7919) % 1_000_000  # 10 ms apart, jittered
        host = HOSTS[j % len(HOSTS)]
        m = j % 200
        if m in (0, 100):
            priority = PRIORITIES[n_target % len(PRIORITIES)]
            n_target += 1
            if j == 100:
                t_ns = base - 1  # 1 ns before the window
                kind = ("outside", priority)
            else:
                kind = ("alert", priority)
            line = syscall_alert(j, t_ns, host, ns, priority)
        elif m in (50, 150):
            trap = ns + "4"
            pr = PRIORITIES[(j // 50) % len(PRIORITIES)]
            line = audit_alert(j, t_ns, host, trap, pr) if m == 150 else syscall_alert(j, t_ns, host, trap, pr)
            kind = ("trap", pr)
        elif m == 25:
            line = syscall_alert(j, t_ns, host, "default", "Critical",
                                 cmdline="kubectl -n %s get secrets -o yaml" % ns)
            kind = ("mention", "Critical")
        elif m == 75:
            line = syscall_alert(j, t_ns, host, "ci", "Alert", pod="%s-runner-7f9c%02d" % (ns, j % 100))
            kind = ("mention", "Alert")
        elif j % 1000 == 999:
            line = metrics_snapshot(j, t_ns, host)
            kind = ("internal", None)
        elif j % 50 == 7:
            line = host_alert(j, t_ns, host)
            kind = ("host", "Alert")
        else:
            other = OTHER_NS[(j * 13 // 7) % len(OTHER_NS)]
            pr = PRIORITIES[(j * 5 // 3) % len(PRIORITIES)]
            if j % 10 == 3:
                line = audit_alert(j, t_ns, host, other, pr)
            else:
                line = syscall_alert(j, t_ns, host, other, pr)
            kind = ("other", pr)
        lines.append((line + "\n").encode())
        kinds.append(kind)
    return lines, kinds


def main():
    args = sys.argv[1:]
    ns = "shadow-abc123"
    slice_mib = 100
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--namespace":
            ns = args[i + 1]; i += 2
        elif args[i] == "--slice-mib":
            slice_mib = int(args[i + 1]); i += 2
        else:
            pos.append(args[i]); i += 1
    if len(pos) != 2:
        sys.exit(__doc__)
    out_path, size_mib = pos[0], int(pos[1])
    target = size_mib * 1024 * 1024

    lines, kinds = build_block(ns)
    needle = ns.encode()
    per_line = []
    for line, (kind, pr) in zip(lines, kinds):
        per_line.append({
            "alert": kind == "alert",
            "blocking": kind == "alert" and pr in BLOCKING,
            "outside": kind == "outside",
            "grep": needle in line,
            "nsfield": kind in ("alert", "outside"),
        })
    block = b"".join(lines)
    block_bytes = len(block)

    totals = dict(lines=0, bytes=0, expected_alerts=0, expected_blocking=0,
                  expected_outside_window=0, grep_count=0, ns_field_count=0)
    block_totals = dict(
        lines=BLOCK_LINES, bytes=block_bytes,
        expected_alerts=sum(p["alert"] for p in per_line),
        expected_blocking=sum(p["blocking"] for p in per_line),
        expected_outside_window=sum(p["outside"] for p in per_line),
        grep_count=sum(p["grep"] for p in per_line),
        ns_field_count=sum(p["nsfield"] for p in per_line),
    )
    tmp = out_path + ".tmp"
    with open(tmp, "wb", buffering=0) as f:
        while totals["bytes"] + block_bytes <= target:
            f.write(block)
            for k in totals:
                totals[k] += block_totals[k]
        # The rest, whole lines only.
        for line, p in zip(lines, per_line):
            if totals["bytes"] + len(line) > target:
                break
            f.write(line)
            totals["lines"] += 1
            totals["bytes"] += len(line)
            totals["expected_alerts"] += p["alert"]
            totals["expected_blocking"] += p["blocking"]
            totals["expected_outside_window"] += p["outside"]
            totals["grep_count"] += p["grep"]
            totals["ns_field_count"] += p["nsfield"]
    os.replace(tmp, out_path)

    slice_blocks = max(1, -(-slice_mib * 1024 * 1024 // block_bytes))
    slice_blocks = min(slice_blocks, totals["lines"] // BLOCK_LINES) or 1
    meta = dict(
        version=VERSION, namespace=ns, window_start="2024-01-15T10:30:00Z", size_mib=size_mib,
        block_lines=BLOCK_LINES, block_bytes=block_bytes,
        avg_line_bytes=round(block_bytes / BLOCK_LINES, 1),
        slice_lines=slice_blocks * BLOCK_LINES, slice_bytes=slice_blocks * block_bytes,
        slice_ns_field_count=slice_blocks * block_totals["ns_field_count"],
        block_ns_field_count=block_totals["ns_field_count"],
        **totals,
    )
    with open(out_path + ".meta.json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
