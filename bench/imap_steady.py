#!/usr/bin/env python3
"""IMAP under Dovecot's imaptest load with sessions that stay logged in (issue 12).

Two measurements, each on a fresh server:

- compare (default): `imaptest logout=0 clients=N secs=S` against tern and against
  Dovecot 2.3 in the same run; commands per second per kind, the ratio tern/Dovecot,
  imaptest's error count, and the server's peak RSS (tern: the process; Dovecot: the
  sum over its imap processes at the end).
- aging (`--aging-minutes M`): the same load on tern for M minutes, reported per
  minute, with the number of expunged records the index holds at the end. Live
  operations must not slow down as expunged records pile up before `tern expire`.

imaptest is not part of the repository: build it as docs/imaptest.md says and give its
path with --imaptest (default /tmp/imaptest-build/src/imaptest). Its default.mbox is
the messages it appends.

    python3 bench/imap_steady.py --clients 10 --secs 30
    python3 bench/imap_steady.py --servers tern --aging-minutes 10
"""

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402

KINDS = ["Fetc", "Fet2", "Stor", "Dele", "Expu", "Appe", "List", "Stat"]


def run_imaptest(a, port, secs, clients):
    """Runs imaptest; -> (per-second rows as dicts, totals dict, error count, text)."""
    exe = os.path.abspath(a.imaptest)
    cwd = os.path.dirname(exe)
    cmd = [exe, "host=127.0.0.1", f"port={port}", f"user={servers.USER}",
           f"pass={servers.PASSWORD}", "mbox=" + os.path.join(cwd, "tests", "default.mbox"),
           f"clients={clients}", f"secs={secs}", "logout=0"]
    env = {**os.environ, "LD_LIBRARY_PATH": "/usr/lib/dovecot"}
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=secs + 300)
    text = p.stdout + p.stderr
    header, rows, totals = None, [], None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        words = line.split()
        if words and words[0] == "Logi":
            header = words
            continue
        if header is None or not words or not words[0].isdigit():
            continue
        nums = re.findall(r"\d+", line.split("/")[0])
        if "ms/cmd" in line or len(nums) < len(header):
            continue
        row = dict(zip(header, map(int, nums)))
        if i >= 4 and lines[i - 4].strip() == "Totals:":
            totals = row
        else:
            rows.append(row)
    errors = sum(1 for l in lines if l.startswith("Error"))
    return rows, totals, errors, text


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class RssSampler(threading.Thread):
    """The largest total RSS of `pids()` seen, sampled twice a second; and the CPU
    seconds each of them had used when last seen (Dovecot's imap processes end with
    their connections, before the run's end could be measured)."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.done = pids, 0, threading.Event()
        self.cpu = {}

    def run(self):
        while not self.done.wait(0.5):
            pids = self.pids()
            self.peak = max(self.peak, rss_kib(pids))
            for p in pids:
                c = servers.cpu_seconds(p)
                if c is not None:
                    self.cpu[p] = c

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def dovecot_imap_pids():
    out = subprocess.run(["pgrep", "-x", "imap"], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def compare(a):
    results = {}
    for name in a.server_list:
        cls = {"tern": servers.Tern, "dovecot": servers.Dovecot}[name]
        with cls(a, "steady") as inst:
            servers.wait_quiet(a.quiet_wait, a.quiet_load)
            pids = (lambda: [inst.pid()]) if name == "tern" else dovecot_imap_pids
            before = rss_kib(pids())
            cpu_before = {p: servers.cpu_seconds(p) or 0 for p in pids()}
            sampler = RssSampler(pids)
            sampler.start()
            rows, totals, errors, text = run_imaptest(a, inst.ports["imap"], a.secs, a.clients)
            for p in pids():
                c = servers.cpu_seconds(p)
                if c is not None:
                    sampler.cpu[p] = c
            rss = (sampler.stop(), before)
            # CPU spent by the server during the run (Dovecot: its imap processes, as
            # last sampled), per command imaptest counted: a figure that moves less
            # with the share of the CPUs imaptest itself takes than the rates do.
            cpu = sum(c - cpu_before.get(p, 0) for p, c in sampler.cpu.items())
            if totals is None:
                sys.exit(f"{name}: no totals in imaptest's output:\n{text[-3000:]}")
            results[name] = (totals, errors, rss, cpu)
            servers.log(f"{name}: {totals} errors {errors} peak/idle RSS {rss} KiB")
    hdr = ["per second"] + a.server_list + (["tern / dovecot"] if len(a.server_list) == 2 else [])
    table = []
    for k in KINDS:
        vals = [results[s][0].get(k, 0) / a.secs for s in a.server_list]
        row = [k] + [servers.fmt(v, 0) for v in vals]
        if len(vals) == 2 and vals[1]:
            row.append(servers.fmt(vals[0] / vals[1], 2))
        table.append(row)
    pad = [""] * (len(hdr) - 1 - len(a.server_list))
    cmds = {s: sum(v for k, v in results[s][0].items() if k in KINDS) for s in a.server_list}
    per = [results[s][3] * 1e6 / cmds[s] if cmds[s] else 0 for s in a.server_list]
    row = ["server CPU per command, us"] + [servers.fmt(v, 0) for v in per]
    if len(per) == 2 and per[0]:
        row.append(servers.fmt(per[1] / per[0], 2))
    table.append(row)
    table.append(["imaptest errors"] + [str(results[s][1]) for s in a.server_list] + pad)
    table.append(["peak RSS, MB (idle before)"]
                 + [f"{results[s][2][0] / 1024:.0f} ({results[s][2][1] / 1024:.0f})"
                    for s in a.server_list] + pad)
    table.append(["growth per client, MB"]
                 + [servers.fmt((results[s][2][0] - results[s][2][1]) / 1024 / a.clients, 1)
                    for s in a.server_list] + pad)
    servers.print_table(hdr, table)


def aging(a):
    with servers.Tern(a, "aging") as inst:
        sampler = RssSampler(lambda: [inst.pid()])
        sampler.start()
        rows, totals, errors, text = run_imaptest(a, inst.ports["imap"], a.aging_minutes * 60,
                                                  a.clients)
        rss = sampler.stop()
        db = os.path.join(inst.base, "data", "index.sqlite3")
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        expunged, live = c.execute(
            "SELECT sum(expunged_modseq IS NOT NULL), sum(expunged_modseq IS NULL) FROM records"
        ).fetchone()
        changelog = c.execute("SELECT count(*) FROM changelog").fetchone()[0]
        c.close()
    table = []
    for m in range(a.aging_minutes):
        minute = rows[m * 60:(m + 1) * 60]
        if not minute:
            break
        table.append([str(m + 1)] + [str(sum(r.get(k, 0) for r in minute)) for k in KINDS[:6]])
    servers.print_table(["minute"] + KINDS[:6], table)
    print(f"\nimaptest errors {errors}; at the end the index held {expunged} expunged and "
          f"{live} live records and {changelog} change-log rows; peak RSS {rss / 1024:.0f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imaptest", default="/tmp/imaptest-build/src/imaptest")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--secs", type=int, default=30)
    ap.add_argument("--aging-minutes", type=int, default=0)
    ap.add_argument("--servers", default="tern,dovecot")
    ap.add_argument("--tern-bin", default="target/release/tern")
    ap.add_argument("--tern-lmtp-port", type=int, default=14401)
    ap.add_argument("--tern-imap-port", type=int, default=14402)
    ap.add_argument("--shared-bench", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))
    ap.add_argument("--workdir", default="/tmp/tern-bench")
    ap.add_argument("--quiet-wait", type=float, default=60)
    ap.add_argument("--quiet-load", type=float, default=1.5)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    a.server_list = [s.strip() for s in a.servers.split(",") if s.strip()]
    a.workdir = os.path.abspath(a.workdir)
    os.makedirs(a.workdir, exist_ok=True)
    if not os.access(a.imaptest, os.X_OK):
        sys.exit(f"imaptest not found at {a.imaptest} (see docs/imaptest.md; --imaptest)")
    if a.aging_minutes:
        aging(a)
    else:
        compare(a)


if __name__ == "__main__":
    main()
