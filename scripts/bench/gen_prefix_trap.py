#!/usr/bin/env python3
"""Writes a Falco JSON-lines log full of near-misses, for the prefix-trap benchmark.

    gen_prefix_trap.py OUT_FILE SIZE_MIB [--namespace shadow-abc123] [--noisy]

Per 100 lines: 1 alert for NAMESPACE, 16 for NAMESPACE + "4" (a sibling shadow namespace: the
normal case in a pipeline that creates many), 83 for other namespaces; ~1 KB each, Falco 0.42
shape (sorted keys, output_fields). `--noisy`: 30 of every 100 lines are the namespace's (a noisy
app: the parser, not the prefilter, decides the time). The block of 10,000 lines is repeated up to SIZE_MIB.
OUT_FILE.meta.json records lines, bytes, expected_alerts (= what
`grep -cF '"k8s.ns.name":"NAMESPACE"'` counts) and expected_blocking.
"""
import json
import sys
from datetime import datetime, timedelta, timezone

VERSION = 1
START = datetime(2024, 1, 15, 10, 30, 1, tzinfo=timezone.utc)
PRIORITIES = ["Critical", "Error", "Warning", "Notice", "Informational"]
OTHER = ["default", "kube-system", "monitoring", "payments", "argocd", "ci", "ingress-nginx"]


def line(i, ns, prio):
    t = START + timedelta(milliseconds=37 * i)
    iso = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond * 1000 + i % 1000:09d}Z"
    hms = iso[11:29]
    pod = f"{ns}-web-{i % 97:02d}-7f9c{i % 13:x}"
    cmd = f"sh -c curl -s http://10.0.{i % 250}.{i % 199}:8080/metrics?id={i}"
    out = (f"{hms}: {prio} Shell spawned in a container (user=root user_loginuid=-1 "
           f"process=sh proc_exepath=/bin/sh parent=node command={cmd} terminal=0 "
           f"exe_flags=EXE_WRITABLE container_id=3f5a{i % 65536:04x}9c2e container_name=web "
           f"container_image_repository=ghcr.io/acme/web container_image_tag=1.{i % 9} "
           f"k8s_pod_name={pod} k8s_ns_name={ns})")
    rec = {
        "hostname": f"ip-10-0-{i % 3}-23",
        "output": out,
        "output_fields": {
            "container.id": f"3f5a{i % 65536:04x}9c2e",
            "container.image.repository": "ghcr.io/acme/web",
            "container.image.tag": f"1.{i % 9}",
            "container.name": "web",
            "evt.time": int(t.timestamp() * 1e9),
            "evt.type": "execve",
            "k8s.ns.name": ns,
            "k8s.pod.name": pod,
            "proc.cmdline": cmd,
            "proc.exepath": "/bin/sh",
            "proc.pname": "node",
            "user.loginuid": -1,
            "user.name": "root",
        },
        "priority": prio,
        "rule": "Terminal shell in container",
        "source": "syscall",
        "tags": ["T1059", "container", "maturity_stable", "mitre_execution", "shell"],
        "time": iso,
    }
    return json.dumps(rec, sort_keys=True, separators=(",", ":"))


def main():
    out_path, size_mib = sys.argv[1], int(sys.argv[2])
    ns = sys.argv[sys.argv.index("--namespace") + 1] if "--namespace" in sys.argv else "shadow-abc123"
    noisy = "--noisy" in sys.argv
    block, alerts, blocking = [], 0, 0
    for i in range(10_000):
        k = i % 100
        if k == 50 or (noisy and k % 10 in (2, 5, 8)):
            prio = PRIORITIES[(i // 100) % len(PRIORITIES)]
            block.append(line(i, ns, prio))
            alerts += 1
            blocking += prio in ("Critical", "Error", "Warning")
        elif k % 6 == 1 and k < 97:
            block.append(line(i, ns + "4", PRIORITIES[i % len(PRIORITIES)]))
        else:
            block.append(line(i, OTHER[i % len(OTHER)], PRIORITIES[i % len(PRIORITIES)]))
    data = ("\n".join(block) + "\n").encode()
    target = size_mib * 1024 * 1024
    lines = total_alerts = total_blocking = written = 0
    with open(out_path, "wb") as f:
        while written + len(data) <= target:
            f.write(data)
            written += len(data)
            lines += len(block)
            total_alerts += alerts
            total_blocking += blocking
    meta = {"version": VERSION, "lines": lines, "bytes": written, "namespace": ns,
            "expected_alerts": total_alerts, "expected_blocking": total_blocking,
            "sibling_share": sum(1 for l in block if f'"k8s.ns.name":"{ns}4"' in l) / len(block)}
    with open(out_path + ".meta.json", "w") as f:
        json.dump(meta, f)
    print(json.dumps(meta))


main()
