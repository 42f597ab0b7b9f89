#!/usr/bin/env python3
"""Issue 10's figures: `tern expire` and `tern check` beside Cyrus's `cyr_expire` and
`reconstruct` on the same corpus, and tern's LMTP delivery rate with an expire running.

  python3 bench/expire_compare.py --iterations 1
  python3 bench/expire_compare.py --n 2000 --iterations 1 --quiet-wait 0   # quick look

Per server (tern, cyrus) and iteration, on a fresh instance:
  1. the corpus is delivered (workload.py prepare,w1: LMTP, 4 connections; untimed here);
  2. CHECK, beside the running server: `tern check` and `tern check --deep` against
     `reconstruct -n -u bench` and `reconstruct -n -G -u bench` (-n: report, change
     nothing, as `tern check` without --repair; -G: re-read every message file and check
     its GUID, as --deep). Each runs twice; the second (warm page cache) is the figure;
  3. every message of every mailbox is expunged over IMAP (UID STORE 1:* +FLAGS.SILENT
     (\\Deleted), EXPUNGE; Cyrus runs with expunge_mode: delayed, so both keep the
     records and files until expiry);
  4. `sync`, then the data directory's size (du: apparent bytes and allocated bytes);
  5. PURGE, beside the running server, timed: `tern expire --purge-expunged 0 --force`
     against `cyr_expire -X 0`;
  6. `sync`, du again. Freed = before - after. tern's total line says which blob bytes
     it freed; that must equal the bytes of the blob files that were there (checked).
Then, tern only (skip with --no-lmtp): W1's delivery rate on a fresh instance, and on a
fresh instance holding 10,000 expunged messages of another corpus (seed + 1) with
`tern expire --purge-expunged 0 --force` started with W1 and run again one second after
each run ends, for the whole W1 (the first run purges and collects the 10,000).
Stdlib only; the server setup is servers.py's.
"""
import argparse
import imaplib
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
import servers as S  # noqa: E402  (bench/servers.py)

CYRBIN = "/usr/lib/cyrus/bin"


def du(path):
    """(apparent bytes, allocated bytes) of a directory tree, after a filesystem sync."""
    subprocess.run(["sync"], check=False)
    app = int(S.sh(["du", "-sb", path]).stdout.split()[0])
    alloc = int(S.sh(["du", "-s", "-B1", path]).stdout.split()[0])
    return app, alloc


def file_bytes(root, keep):
    """(files, bytes) under `root` whose path satisfies keep(path)."""
    n = b = 0
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if keep(p):
                try:
                    b += os.path.getsize(p)
                    n += 1
                except OSError:
                    pass
    return n, b


def timed(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env={**os.environ, **(env or {})}, timeout=3600)
    return round(time.perf_counter() - t0, 3), p


def total_line(text):
    line = next((l for l in reversed(text.splitlines()) if l.startswith("total ")), "")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


LIST_RE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:NIL|"[^"]*") (?P<name>.*)$')


def expunge_all(port):
    """Expunges every message of every mailbox of the bench user over IMAP; -> count."""
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(S.USER, S.PASSWORD)
    typ, data = m.list()
    names = []
    for item in data:
        if not isinstance(item, bytes):
            continue
        g = LIST_RE.match(item)
        if not g or b"\\Noselect" in g["flags"]:
            continue
        name = g["name"]
        names.append(name.decode() if name.startswith(b'"') else '"' + name.decode() + '"')
    gone = 0
    for name in names:
        typ, data = m.select(name)
        if typ != "OK":
            raise RuntimeError(f"SELECT {name}: {data}")
        exists = int(data[0])
        if exists:
            m.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
            m.expunge()
            gone += exists
    m.logout()
    return gone


class Target:
    """What differs between the servers: the commands and where the data lives."""

    def __init__(self, a, server, inst):
        self.server = server
        if server == "tern":
            self.data = os.path.join(inst.base, "data")
            tern = S.tern_bin(a)
            base = [tern, "--config", inst.conf]
            self.check = base + ["check"]
            self.deep = base + ["check", "--deep"]
            self.purge = base + ["expire", "--purge-expunged", "0", "--force"]
            self.blobs = lambda: file_bytes(self.data, lambda p: "/blobs/" in p)
        else:
            self.data = os.path.join(inst.base, "master")
            conf = os.path.join(self.data, "imapd.conf")
            self.check = [f"{CYRBIN}/reconstruct", "-C", conf, "-n", "-u", S.USER]
            self.deep = [f"{CYRBIN}/reconstruct", "-C", conf, "-n", "-G", "-u", S.USER]
            self.purge = [f"{CYRBIN}/cyr_expire", "-C", conf, "-X", "0"]
            # Cyrus message files are named "<uid>." in the mailbox's spool directory.
            spool = os.path.join(self.data, "spool")
            self.blobs = lambda: file_bytes(spool, lambda p: re.search(r"/\d+\.$", p) is not None)


def run_one(a, corpus, rdir, server, k):
    out = {}
    with S.instance(a, server, f"iter{k}") as inst:
        res = S.run_workload(a, f"{server} iter {k}", "prepare,w1", inst.ports,
                             os.path.join(rdir, f"iter{k}-{server}.json"))
        out["delivered"] = res["w1_lmtp"]["delivered"]
        t = Target(a, server, inst)
        for label, cmd in (("check", t.check), ("deep", t.deep)):
            timed(cmd)  # cold run: warms the page cache the same for both servers
            secs, p = timed(cmd)
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)}: rc {p.returncode}: {p.stdout[-800:]}{p.stderr[-800:]}")
            out[f"{label}_s"] = secs
            if server == "tern":
                out[f"{label}_total"] = total_line(p.stdout)
        S.log(f"{server} iter {k}: check {out['check_s']} s, deep {out['deep_s']} s")
        out["expunged"] = expunge_all(inst.ports["imap"])
        files_before, blob_bytes = t.blobs()
        before = du(t.data)
        secs, p = timed(t.purge)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(t.purge)}: rc {p.returncode}: {p.stdout[-800:]}{p.stderr[-800:]}")
        after = du(t.data)
        files_after, blob_bytes_after = t.blobs()
        out.update({
            "purge_s": secs,
            "files_before": files_before, "files_after": files_after,
            "message_bytes_before": blob_bytes, "message_bytes_after": blob_bytes_after,
            "du_apparent_before": before[0], "du_apparent_after": after[0],
            "du_alloc_before": before[1], "du_alloc_after": after[1],
            "freed_apparent": before[0] - after[0], "freed_alloc": before[1] - after[1],
        })
        if server == "tern":
            tot = total_line(p.stdout)
            out["purge_total"] = tot
            out["bytes_freed_reported"] = tot.get("bytes_freed")
            out["freed_equals_blob_bytes"] = tot.get("bytes_freed") == blob_bytes - blob_bytes_after
        S.log(f"{server} iter {k}: purge {secs} s, files {files_before} -> {files_after}, "
              f"du freed {out['freed_apparent'] / 1e6:.1f} MB apparent, {out['freed_alloc'] / 1e6:.1f} MB allocated")
    return out


def expire_loop(a, inst, stop, stats):
    """`tern expire --purge-expunged 0 --force` again and again, one second apart (far
    more often than any schedule would), until `stop`."""
    tern = S.tern_bin(a)
    while not stop.is_set():
        t0 = time.perf_counter()
        p = subprocess.run([tern, "--config", inst.conf, "expire", "--purge-expunged", "0", "--force"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        tot = total_line(p.stdout)
        stats["runs"] += 1
        stats["failed_runs"] += p.returncode != 0
        stats["records_purged"] += tot.get("records_purged", 0)
        stats["blobs_freed"] += tot.get("blobs_freed", 0)
        stats["seconds"] = round(stats["seconds"] + time.perf_counter() - t0, 3)
        stop.wait(1.0)


def lmtp_under_expire(a, rdir, preload_corpus):
    """W1 msgs/s on a fresh instance, then with 10,000 expunged messages to purge and
    the expire running back to back during W1."""
    rec = {}
    with S.instance(a, "tern", "lmtp-plain") as inst:
        res = S.run_workload(a, "tern plain W1", "prepare,w1", inst.ports, os.path.join(rdir, "lmtp-plain.json"))
        rec["plain_msgs_per_s"] = res["w1_lmtp"]["msgs_per_s"]
    with S.instance(a, "tern", "lmtp-expire") as inst:
        timed_corpus = a.corpus
        a.corpus = preload_corpus
        try:
            S.run_workload(a, "tern preload", "prepare,w1", inst.ports, os.path.join(rdir, "lmtp-preload.json"))
        finally:
            a.corpus = timed_corpus
        rec["preloaded_expunged"] = expunge_all(inst.ports["imap"])
        stop, stats = threading.Event(), {"runs": 0, "failed_runs": 0, "records_purged": 0, "blobs_freed": 0,
                                     "seconds": 0.0}
        loop = threading.Thread(target=expire_loop, args=(a, inst, stop, stats))
        loop.start()
        try:
            res = S.run_workload(a, "tern W1 + expire", "prepare,w1", inst.ports,
                                 os.path.join(rdir, "lmtp-expire.json"))
        finally:
            stop.set()
            loop.join()
        rec["expire_msgs_per_s"] = res["w1_lmtp"]["msgs_per_s"]
        rec["expire_loop"] = stats
        rec["delivered"] = res["w1_lmtp"]["delivered"]
        rec["count_mismatch"] = res["w1_lmtp"].get("count_mismatch")
    rec["ratio"] = round(rec["expire_msgs_per_s"] / rec["plain_msgs_per_s"], 3)
    S.log(f"LMTP W1: {rec['plain_msgs_per_s']} msg/s alone, {rec['expire_msgs_per_s']} msg/s with expire "
          f"({rec['ratio']}); expire runs {stats}")
    return rec


def render(runs, lmtp, corpus):
    by = {}
    for r in runs:
        if "error" not in r:
            by.setdefault(r["server"], []).append(r)
    med = lambda s, key: S.med([r[key] for r in by.get(s, [])])
    print(f"\nCorpus: {corpus['messages']} messages, {corpus['bytes'] / 1e6:.1f} MB.\n")
    rows = []
    for key, label in (("purge_s", "purge 10,000 expunged + free files (s)"),
                       ("check_s", "check (s)"), ("deep_s", "deep check (s)")):
        t, c = med("tern", key), med("cyrus", key)
        rows.append([label, S.fmt(t, 3), S.fmt(c, 3), S.fmt(c / t, 2) if t and c else "-"])
    for key, label in (("freed_apparent", "disk freed, apparent (MB)"), ("freed_alloc", "disk freed, allocated (MB)"),
                       ("message_bytes_before", "message files before (MB)")):
        t, c = med("tern", key), med("cyrus", key)
        rows.append([label, S.fmt(t and t / 1e6, 1), S.fmt(c and c / 1e6, 1), "-"])
    S.print_table(["figure", "tern", "Cyrus 3.6", "Cyrus ÷ tern (time)"], rows)
    for r in by.get("tern", []):
        print(f"\ntern iteration {r['iteration']}: bytes_freed reported {r['bytes_freed_reported']:,}, "
              f"blob files before {r['message_bytes_before']:,} B / after {r['message_bytes_after']:,} B: "
              f"{'equal' if r['freed_equals_blob_bytes'] else 'NOT EQUAL'}; purge total {r['purge_total']}")
    if lmtp:
        print(f"\nLMTP W1 alone {lmtp['plain_msgs_per_s']} msg/s; with the expire running "
              f"{lmtp['expire_msgs_per_s']} msg/s: {lmtp['ratio']:.3f} of the rate alone; "
              f"expire loop {lmtp['expire_loop']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    S.add_common_args(ap)
    ap.set_defaults(servers="tern,cyrus", iterations=1)
    ap.add_argument("--no-lmtp", action="store_true", help="skip the LMTP-with-expire figure")
    a, corpus, rdir = S.setup(ap, "expire")
    runs, skipped, failed = S.iterate(a, lambda s, k: run_one(a, corpus, rdir, s, k))
    lmtp = None
    if not a.no_lmtp and "tern" in a.server_list and "tern" not in skipped:
        preload = os.path.join(a.workdir, f"corpus-n{corpus['messages']}-s{a.seed + 1}")
        if not os.path.exists(os.path.join(preload, "manifest.tsv")):
            S.sh([sys.executable, os.path.join(a.shared_bench, "corpus.py"), "--out", preload,
                  "--n", str(corpus["messages"]), "--seed", str(a.seed + 1)], timeout=3600)
        S.wait_quiet(a.quiet_wait, a.quiet_load) if a.quiet_wait > 0 else None
        lmtp = lmtp_under_expire(a, rdir, preload)
    S.check_binary_unchanged(a, {})
    summary = {"runs": runs, "skipped": skipped, "failed": failed, "lmtp_under_expire": lmtp,
               "corpus": corpus, "tern_binary": a.tern_binary}
    path = a.json_out or os.path.join(rdir, "summary.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    render(runs, lmtp, corpus)
    for s, why in {**skipped, **failed}.items():
        print(f"\n{s}: {why}")
    print(f"\nsummary: {path}")


if __name__ == "__main__":
    main()
