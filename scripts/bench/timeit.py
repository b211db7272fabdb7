#!/usr/bin/env python3
"""Runs a command several times; prints one JSON object with its best wall time and peak RSS.

    timeit.py [--runs N] [--out FILE] [--sh] [--no-rss] -- COMMAND...

--sh      COMMAND is one string run by `sh -c` (a pipeline).
--out     stdout of the last run is left in FILE, its stderr in FILE.stderr. Every run writes
          to a regular file, never /dev/null: GNU grep stops at the first match when its
          output is /dev/null.
--no-rss  do not poll /proc (for millisecond-scale startup timings).

Peak RSS (KiB) of a run = the largest peak of any process of the run (for `a | b`: the larger
of a and b). Two sources, combined:
 * wait4()'s ru_maxrss, exact and covering every reaped descendant -- but Linux folds the RSS
   high-water mark of the mm a process had *before* exec() into it, i.e. this Python process's
   (~13 MiB). So when ru_maxrss is not above our own VmHWM it only says "at most that much".
 * polling VmHWM in /proc/<pid>/status of every process in the run's process group every
   10 ms (VmHWM is per exec'd image, never tainted; it may miss growth in the last 10 ms).
Exit statuses are reported, not judged.

Output: {"best_s", "median_s", "cpu_s" (user+sys of the fastest run, all its processes),
         "runs_s", "rss_kib" (largest over runs), "rss_source", "rc" (last run), "rcs"}
"""
import json
import os
import sys
import tempfile
import threading
import time


def vm_hwm(pid="self"):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def group_members(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
            # pid (comm) state ppid pgrp ... ; comm may contain spaces: split after ')'
            fields = stat[stat.rindex(b")") + 2:].split()
            if int(fields[2]) == pgid:
                pids.append(d)
        except (OSError, ValueError, IndexError):
            pass
    return pids


class Poller(threading.Thread):
    def __init__(self, pgid):
        super().__init__(daemon=True)
        self.pgid = pgid
        self.stop = threading.Event()
        self.peak = 0

    def run(self):
        known = []
        i = 0
        while not self.stop.is_set():
            if i % 5 == 0 or i < 3:
                known = group_members(self.pgid) or known
            for pid in known:
                self.peak = max(self.peak, vm_hwm(pid))
            i += 1
            self.stop.wait(0.01)


def run_once(argv, out_path, poll):
    out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err_path = out_path + ".stderr"
    err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null_in = os.open(os.devnull, os.O_RDONLY)
    poller = None
    try:
        file_actions = [
            (os.POSIX_SPAWN_DUP2, null_in, 0),
            (os.POSIX_SPAWN_DUP2, out_fd, 1),
            (os.POSIX_SPAWN_DUP2, err_fd, 2),
        ]
        own = vm_hwm()
        t0 = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=file_actions, setpgroup=0)
        if poll:
            poller = Poller(pid)
            poller.start()
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter()
    finally:
        if poller:
            poller.stop.set()
            poller.join()
        os.close(out_fd)
        os.close(err_fd)
        os.close(null_in)
    polled = poller.peak if poller else 0
    # ru_maxrss above our own high-water mark cannot come from the pre-exec taint.
    if ru.ru_maxrss > own + 512:
        rss, src = max(ru.ru_maxrss, polled), "wait4"
    elif poll:
        rss, src = polled, "proc-poll"
    else:
        rss, src = 0, "none"
    cpu = ru.ru_utime + ru.ru_stime
    return t1 - t0, rss, src, os.waitstatus_to_exitcode(status), cpu


def main():
    args = sys.argv[1:]
    runs, out, use_sh, poll = 3, os.devnull, False, True
    while args and args[0] != "--":
        a = args.pop(0)
        if a == "--runs":
            runs = int(args.pop(0))
        elif a == "--out":
            out = args.pop(0)
        elif a == "--sh":
            use_sh = True
        elif a == "--no-rss":
            poll = False
        else:
            sys.exit(__doc__)
    if len(args) < 2:
        sys.exit(__doc__)
    cmd = args[1:]
    argv = ["sh", "-c", " ".join(cmd)] if use_sh else cmd
    tmp = None
    if out == os.devnull:
        fd, tmp = tempfile.mkstemp(prefix="bench-timeit-")
        os.close(fd)
        out = tmp
    times, rss, srcs, rcs, cpus = [], [], [], [], []
    for i in range(runs):
        # Each run overwrites the output: the last run's is kept.
        t, r, src, rc, cpu = run_once(argv, out, poll)
        times.append(t)
        cpus.append(cpu)
        rss.append(r)
        srcs.append(src)
        rcs.append(rc)
    if tmp:
        for p in (tmp, tmp + ".stderr"):
            if os.path.exists(p):
                os.unlink(p)
    s = sorted(times)
    fastest = min(range(runs), key=lambda i: times[i])
    top = max(range(runs), key=lambda i: rss[i])
    print(json.dumps({
        "best_s": s[0],
        "median_s": s[len(s) // 2],
        "cpu_s": round(cpus[fastest], 4),
        "runs_s": [round(t, 6) for t in times],
        "rss_kib": rss[top],
        "rss_source": srcs[top],
        "rc": rcs[-1],
        "rcs": rcs,
    }))


if __name__ == "__main__":
    main()
