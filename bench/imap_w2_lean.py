#!/usr/bin/env python3
"""W2's IMAP steps with a lean client: tern against Dovecot 2.3 and Cyrus 3.6 in one run.

  python3 bench/imap_w2_lean.py --iterations 3
  python3 bench/imap_w2_lean.py --servers tern,dovecot --iterations 1 --repeat 9

Why: W2 (../shared/bench/workload.py) times each command with Python's imaplib, whose
own parsing of a large answer (thousands of FETCH lines) can cost more than the
server's work. This client sends the same commands over a plain socket and reads the
answer with nothing more than line splitting and literal counting, so the times are
mostly the servers'. The same client is used for every server.

Per server and iteration, on a fresh instance (servers.py): workload.py prepare,w1
creates the corpus folders and delivers the corpus over LMTP; --settle seconds of
nothing (and with --wait-quiet, until the server is quiet; tern's count of messages
not yet in its full-text index is recorded either way); a sync, so that no writeback
of an earlier instance is in flight (--no-sync: none); then on INBOX, the largest
folder:
  LOGIN; SELECT INBOX, FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE),
  FETCH 1:500 BODY.PEEK[] and UID SEARCH BODY quokka, each --repeat times (they change
  nothing; the first SELECT of a session may take \\Recent, so SELECT's figure is the
  median of the repeats); then once each, as in W2, STORE 1:* +FLAGS (\\Seen),
  STORE +FLAGS.SILENT (\\Deleted) on every 20th message, EXPUNGE.
Times are the client's wall clock from sending a command to reading its tagged reply,
in ms; the table shows medians over iterations and other/tern (>1: tern faster).

--client compiled runs the same steps with bench/imap_w2_client.rs instead, compiled
here with `rustc -O`: a client whose own cost is next to nothing, so the times are the
servers' share (Python's line handling alone takes about 1.5 ms of a 3,000-line
answer). The same client is used for every server.
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
import servers as S  # noqa: E402  (bench/servers.py)

STEPS = [("login", "LOGIN"),
         ("select", "SELECT INBOX"),
         ("fetch_meta", "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"),
         ("fetch_body500", "FETCH 1:500 BODY.PEEK[]"),
         ("search_body", "UID SEARCH BODY quokka"),
         ("store_seen_all", "STORE 1:* +FLAGS (\\Seen)"),
         ("store_deleted", "STORE +FLAGS.SILENT (\\Deleted) 5%"),
         ("expunge", "EXPUNGE 5%")]

LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class Lean:
    """A minimal IMAP client: sends a command, reads lines (and literals by their
    announced length) up to the tagged reply."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb", buffering=256 * 1024)
        self.f.readline()
        self.n = 0

    def cmd(self, text):
        """-> (seconds, untagged lines (literals elided), tagged line)."""
        self.n += 1
        tag = b"L%d" % self.n
        t0 = time.perf_counter()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        untagged = []
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError(f"connection closed during {text!r}")
            m = LITERAL.search(line)
            while m:
                self.f.read(int(m.group(1)))
                rest = self.f.readline()
                line = line + rest
                m = LITERAL.search(rest)
            if line.startswith(tag + b" "):
                el = time.perf_counter() - t0
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text!r}: {line!r}")
                return el, untagged, line
            untagged.append(line)

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def fetches(lines):
    return sum(1 for l in lines if re.match(rb"\* \d+ FETCH ", l))


def lean_w2(port, repeat, word):
    res, counts = {}, {}
    c = Lean(port)
    res["login"], _, _ = c.cmd(f"LOGIN {S.USER} {S.PASSWORD}")
    sel = []
    for _ in range(repeat):
        t, lines, _ = c.cmd("SELECT INBOX")
        sel.append(t)
    exists = next(int(l.split()[1]) for l in lines if l.endswith(b" EXISTS\r\n"))
    res["select"] = statistics.median(sel)
    counts["exists"] = exists
    for key, command in [("fetch_meta", "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"),
                         ("fetch_body500", f"FETCH 1:{min(500, exists)} BODY.PEEK[]"),
                         ("search_body", f"UID SEARCH BODY {word}")]:
        ts = []
        for _ in range(repeat):
            t, lines, _ = c.cmd(command)
            ts.append(t)
        res[key] = statistics.median(ts)
        counts[key] = fetches(lines) if key != "search_body" else \
            sum(len(l.split()) - 2 for l in lines if l.startswith(b"* SEARCH"))
    res["store_seen_all"], lines, _ = c.cmd("STORE 1:* +FLAGS (\\Seen)")
    counts["store_seen_all"] = fetches(lines)
    victims = list(range(20, exists + 1, 20))
    res["store_deleted"], _, _ = c.cmd("STORE " + ",".join(map(str, victims)) + " +FLAGS.SILENT (\\Deleted)")
    res["expunge"], lines, _ = c.cmd("EXPUNGE")
    counts["expunged"] = sum(1 for l in lines if l.endswith(b" EXPUNGE\r\n"))
    counts["expunge_target"] = len(victims)
    c.close()
    return res, counts


def compile_client():
    """Compiles bench/imap_w2_client.rs with `rustc -O`; returns the binary's path."""
    out = os.path.join(tempfile.mkdtemp(prefix="imap-w2-client-"), "imap_w2_client")
    subprocess.run(["rustc", "-O", "--edition", "2021", "-o", out,
                    str(Path(__file__).resolve().parent / "imap_w2_client.rs")],
                   check=True, capture_output=True)
    return out


def compiled_w2(client, port, repeat, word):
    """lean_w2's steps through the compiled client: -> (seconds per step, counts)."""
    run = subprocess.run([client, f"127.0.0.1:{port}", S.USER, S.PASSWORD, str(repeat), word],
                         check=True, capture_output=True, text=True, timeout=600)
    got = json.loads(run.stdout)
    return got["seconds"], got["counts"]


def checks(counts):
    bad = []
    n = counts["exists"]
    if counts["fetch_meta"] != n:
        bad.append(f"FETCH 1:* answered {counts['fetch_meta']} of {n}")
    if counts["fetch_body500"] != min(500, n):
        bad.append(f"FETCH 1:500 answered {counts['fetch_body500']}")
    if counts["store_seen_all"] != n:
        bad.append(f"STORE 1:* answered {counts['store_seen_all']} of {n}")
    if counts["expunged"] != counts["expunge_target"]:
        bad.append(f"EXPUNGE reported {counts['expunged']} of {counts['expunge_target']}")
    return bad


def run_one(a, rdir, server, k):
    with S.instance(a, server, f"lean-iter{k}") as inst:
        label = f"{server} iter {k}"
        S.run_workload(a, label, "prepare,w1", inst.ports, os.path.join(rdir, f"iter{k}-{server}-w1.json"))
        time.sleep(a.settle)
        before = {}
        if server == "tern":
            before["pending_texts"] = inst.pending_texts()
        if a.wait_quiet:
            before["quiet_after_s"] = wait_quiet(inst.pid(), a.wait_quiet)
        if a.sync:
            # The disk to itself: without this, the writeback of what the instance
            # before delivered (200 MB) was still in flight, and every fsync of the
            # measured server waited behind it (tern's STORE doubled after Cyrus's
            # run), while a server that does not fsync its flag changes did not notice.
            t0 = time.monotonic()
            os.sync()
            before["sync_s"] = round(time.monotonic() - t0, 3)
        if a.client == "compiled":
            res, counts = compiled_w2(a.client_binary, inst.ports["imap"], a.repeat, a.search_word)
        else:
            res, counts = lean_w2(inst.ports["imap"], a.repeat, a.search_word)
    bad = checks(counts)
    S.log(f"{label}: " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in res.items())
          + f"; {counts}; {before}" + (f"; CHECKS: {bad}" if bad else ""))
    return {"ms": {k: v * 1000 for k, v in res.items()}, "counts": counts, "checks": bad,
            "before_steps": before}


def wait_quiet(pid, limit):
    """Waits, at most `limit` seconds, until the process `pid` uses under 5% of a CPU
    for a second, and returns the seconds waited. For tern that is the whole server,
    which moves what W1 delivered into its full-text index in the background: without
    the wait its steps run beside that work, while the anchors did theirs at delivery.
    For Dovecot and Cyrus it is their master process, idle after delivery."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        before = S.cpu_seconds(pid)
        time.sleep(1)
        after = S.cpu_seconds(pid)
        if before is None or after is None or after - before < 0.05:
            break
    return round(time.monotonic() - t0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    S.add_common_args(ap)
    ap.add_argument("--settle", type=float, default=5, help="seconds between W1's end and the lean W2")
    ap.add_argument("--no-sync", dest="sync", action="store_false",
                    help="do not write out the machine's dirty pages (sync) before the steps")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECS",
                    help="after --settle, wait up to SECS for the server to go quiet (under 5%% "
                         "of a CPU for a second), the same rule for every server; 0: do not wait")
    ap.add_argument("--repeat", type=int, default=5, help="times each read-only step runs (median)")
    ap.add_argument("--search-word", default="quokka")
    ap.add_argument("--client", choices=["python", "compiled"], default="python",
                    help="python: the lean client in this file; compiled: bench/imap_w2_client.rs")
    a, corpus, rdir = S.setup(ap, "w2-lean")
    a.client_binary = compile_client() if a.client == "compiled" else None
    runs, skipped, failed = S.iterate(a, lambda s, k: run_one(a, rdir, s, k))
    summ = {}
    for s in a.server_list:
        ok = [r for r in runs if r["server"] == s and "ms" in r]
        if ok:
            summ[s] = {key: S.med([r["ms"][key] for r in ok]) for key, _ in STEPS}
            summ[s]["checks"] = [c for r in ok for c in r["checks"]]
    out = {"corpus": corpus, "client": a.client, "iterations": a.iterations, "repeat": a.repeat,
           "settle_s": a.settle,
           "servers": a.server_list, "tern_binary": a.tern_binary, "summary": summ, "runs": runs,
           "skipped": skipped, "failed": failed}
    S.check_binary_unchanged(a, out)
    jpath = a.json_out or os.path.join(rdir, "summary.json")
    with open(jpath, "w") as f:
        json.dump(out, f, indent=1)
    others = [s for s in a.server_list if s != "tern" and s in summ]
    print(f"\nW2 steps with the {a.client} lean client on INBOX ({corpus['per_mailbox'].get('INBOX', 0):,} msgs); "
          f"median of {a.iterations} iteration(s), read-only steps {a.repeat}x each; ms; other/tern >1: tern faster\n")
    hdr = ["step"] + [s for s in a.server_list if s in summ] + [f"{s}/tern" for s in others]
    if others and "tern" in summ:
        hdr.append("best other/tern")
    rows = []
    for key, label in STEPS:
        row = [label] + [S.fmt(summ[s][key], 2) for s in a.server_list if s in summ]
        if "tern" in summ:
            t = summ["tern"][key]
            row += [f"{summ[s][key] / t:.2f}" if t else "-" for s in others]
            if others:
                best = min(summ[s][key] for s in others)
                row.append(f"{best / t:.2f}" if t else "-")
        rows.append(row)
    S.print_table(hdr, rows)
    for s in summ:
        if summ[s]["checks"]:
            print(f"\n{s} CHECKS: {summ[s]['checks']}")
    if skipped:
        print(f"\nskipped: {skipped}")
    if failed:
        print(f"\nfailed: {failed}")
    print(f"\nraw results: {jpath}")


if __name__ == "__main__":
    main()
