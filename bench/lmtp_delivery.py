#!/usr/bin/env python3
"""W1 LMTP delivery benchmark: tern against Dovecot 2.3 and Cyrus 3.6 in one run.

  python3 bench/lmtp_delivery.py --n 2000 --iterations 1
  python3 bench/lmtp_delivery.py --corpus /tmp/tern-bench/corpus-n10000 --iterations 3 \
      --servers tern,dovecot,cyrus --tern-bin target/release/tern

The same client drives all three servers: the W1 phase of the shared
workload.py (/work/shared/bench, --shared-bench), run as a subprocess with
--json-out.  W1 delivers every corpus message over LMTP with 4 connections
(--concurrency) pulling from one queue; INBOX mail goes to bench@localhost,
folder mail to bench+<Folder>@localhost.  Each server gets a fresh instance per
iteration; iterations interleave the servers (the order rotates) so outside
load hits all of them alike.  The table shows medians over the iterations.

Per server
  tern     fresh data dir; `tern admin user add` + `tern admin mailbox create`
           for the corpus folders; `tern serve` with only an LMTP listener;
           workload.py --phases w1.  tern has no IMAP yet, but W1 asks IMAP for
           the namespace layout before it starts the clock and for STATUS after
           it stops it, so this driver runs a tiny IMAP stub (LOGIN, NAMESPACE
           "" "/", STATUS -> NO) for those two calls.  The delivered counts are
           then checked with `tern admin mailbox list bench` instead.
  dovecot  dovecot_up.sh master (DOVECOT_RESET=1, own scratch folder), then
           workload.py --phases prepare,w1 (prepare = IMAP CREATE, untimed),
           dovecot_down.sh master --purge.
  cyrus    cyrus_up.sh (BASE under --workdir; it also starts the replica pair
           member, which idles), workload.py --phases prepare,w1 (prepare also
           grants 'p' for plus-address delivery), WIPE=1 cyrus_down.sh.
A server whose packages/binary are missing is skipped with a message.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
USER, PASSWORD, DOMAIN = "bench", "secret", "localhost"
SERVERS = ("tern", "dovecot", "cyrus")
# fixed by dovecot_up.sh (master) and cyrus_up.sh (master)
DOVECOT_PORTS = {"imap": 15343, "lmtp": 15324}
CYRUS_PORTS = {"imap": 14301, "lmtp": 14303}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Skip(Exception):
    """The server cannot be benchmarked here (missing packages/binary)."""


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def require_free(ports, who):
    busy = [p for p in ports if not port_free(p)]
    if busy:
        raise RuntimeError(f"{who}: port(s) {busy} on 127.0.0.1 already in use "
                           f"(a leftover instance? stop it first)")


def sh(cmd, env=None, timeout=600, check=True):
    p = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {p.returncode}):\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def load_info():
    out = {"loadavg1": float(open("/proc/loadavg").read().split()[0])}
    try:
        out["psi_cpu_some_avg10"] = float(open("/proc/pressure/cpu").readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return out


def wait_quiet(max_wait, threshold):
    """The machine may be shared: wait (bounded) until the 1-min load is below threshold."""
    t0 = time.time()
    said = False
    while time.time() - t0 < max_wait and load_info()["loadavg1"] >= threshold:
        if not said:
            log(f"load {load_info()['loadavg1']} >= {threshold}: waiting up to {max_wait:.0f} s "
                f"for a quieter moment (--quiet-wait)")
            said = True
        time.sleep(5)
    return round(time.time() - t0, 1)


# ----------------------------------------------------------------------------
# corpus
def ensure_corpus(a):
    mf = os.path.join(a.corpus, "manifest.tsv")
    if not os.path.exists(mf):
        if os.path.exists(a.corpus) and os.listdir(a.corpus):
            sys.exit(f"{a.corpus} exists but has no manifest.tsv; not touching it")
        log(f"generating corpus: {a.n} messages, seed {a.seed} -> {a.corpus}")
        sh([sys.executable, os.path.join(a.shared_bench, "corpus.py"), "--out", a.corpus,
            "--n", str(a.n), "--seed", str(a.seed)], timeout=3600)
    rows = []
    with open(mf) as f:
        next(f)
        for line in f:
            rows.append(line.split("\t", 3)[:3])
    if a.n_given and len(rows) != a.n:
        sys.exit(f"{a.corpus} holds {len(rows)} messages, not --n {a.n}; use another --corpus dir")
    counts = {}
    for mb, _, _ in rows:
        counts[mb] = counts.get(mb, 0) + 1
    return {"dir": a.corpus, "messages": len(rows), "bytes": sum(int(r[2]) for r in rows),
            "per_mailbox": dict(sorted(counts.items()))}


# ----------------------------------------------------------------------------
# workload.py
def run_w1(a, label, phases, imap_port, lmtp_port, out_json):
    cmd = [sys.executable, os.path.join(a.shared_bench, "workload.py"), "--corpus", a.corpus,
           "--host", "127.0.0.1", "--imap-port", str(imap_port), "--lmtp-port", str(lmtp_port),
           "--user", USER, "--password", PASSWORD, "--domain", DOMAIN,
           "--concurrency", str(a.concurrency), "--phases", phases, "--json-out", out_json]
    log(f"{label}: {' '.join(cmd[1:])}")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0 or not os.path.exists(out_json):
        raise RuntimeError(f"workload.py failed (rc {p.returncode}): {p.stderr[-2000:]}")
    with open(out_json) as f:
        res = json.load(f)
    for ph in ("prepare", "w1"):
        if ph + "_error" in res:
            raise RuntimeError(f"workload.py {ph} phase failed: {res[ph + '_error']}")
    if res.get("prepare", {}).get("errors"):
        log(f"{label}: prepare errors: {res['prepare']['errors'][:5]}")
    return res


# ----------------------------------------------------------------------------
# tern
class ImapStub(socketserver.ThreadingTCPServer):
    """Just enough IMAP for workload.py's W1 around its timed part: the namespace
    layout before (LOGIN, NAMESPACE -> "" "/") and STATUS after (answered NO, so
    W1's own count check reports 'server: null'; the driver checks with tern admin)."""
    daemon_threads = True
    allow_reuse_address = True

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            w = self.wfile.write
            w(b"* OK [CAPABILITY IMAP4rev1 NAMESPACE] tern-bench IMAP stub (tern has no IMAP yet)\r\n")
            for line in self.rfile:
                parts = line.rstrip(b"\r\n").split(b" ", 2)
                if len(parts) < 2:
                    w(b"* BAD syntax\r\n")
                    continue
                tag, cmd = parts[0], parts[1].upper()
                if cmd == b"CAPABILITY":
                    w(b"* CAPABILITY IMAP4rev1 NAMESPACE\r\n" + tag + b" OK done\r\n")
                elif cmd == b"LOGIN":
                    w(tag + b" OK logged in (stub)\r\n")
                elif cmd == b"NAMESPACE":
                    w(b'* NAMESPACE (("" "/")) NIL NIL\r\n' + tag + b" OK done\r\n")
                elif cmd == b"STATUS":
                    w(tag + b" NO [UNAVAILABLE] stub: tern has no IMAP yet\r\n")
                elif cmd == b"NOOP":
                    w(tag + b" OK done\r\n")
                elif cmd == b"LOGOUT":
                    w(b"* BYE stub\r\n" + tag + b" OK done\r\n")
                    return
                else:
                    w(tag + b" BAD not in the stub\r\n")


def tern_bin(a):
    for cand in ([a.tern_bin] if os.path.isabs(a.tern_bin)
                 else [os.path.abspath(a.tern_bin), os.path.join(REPO, a.tern_bin)]):
        if os.access(cand, os.X_OK):
            return cand
    raise Skip(f"tern binary {a.tern_bin} not found (build it: cd {REPO} && cargo build --release)")


def tern_admin(binary, conf, *args, stdin=None):
    p = subprocess.run([binary, "admin", "--config", conf, *args], input=stdin, capture_output=True,
                       text=True, timeout=120)
    return p


def tern_mailboxes(binary, conf):
    p = tern_admin(binary, conf, "mailbox", "list", USER)
    if p.returncode != 0:
        raise RuntimeError(f"tern admin mailbox list: {p.stderr.strip()}")
    out = {}
    for line in p.stdout.splitlines()[1:]:   # MAILBOX MESSAGES UIDVALIDITY LASTUID HIGHESTMODSEQ UNIQUEID PARTITION
        f = line.rsplit(None, 6)
        if len(f) == 7:
            out[f[0]] = int(f[1])
    return out


def run_tern(a, k, corpus, rdir):
    binary = tern_bin(a)
    lport, sport = a.tern_lmtp_port, a.tern_imap_stub_port
    require_free([lport, sport], "tern")
    base = os.path.join(a.workdir, "tern", f"iter{k}")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    conf = os.path.join(base, "tern.toml")
    with open(conf, "w") as f:
        f.write(f'data_dir = "{base}/data"\n[listen]\nlmtp = "127.0.0.1:{lport}"\n')
    p = tern_admin(binary, conf, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    if p.returncode != 0:
        raise RuntimeError(f"tern admin user add: {p.stderr.strip()}")
    have = tern_mailboxes(binary, conf)
    for mb in sorted(corpus["per_mailbox"]):   # sorted: parents (Work) before children (Work/Reports)
        if mb.upper() != "INBOX" and mb not in have:
            p = tern_admin(binary, conf, "mailbox", "create", USER, mb)
            if p.returncode != 0:
                raise RuntimeError(f"tern admin mailbox create {mb}: {p.stderr.strip()}")
    logf = open(os.path.join(base, "tern.log"), "wb")
    srv = subprocess.Popen([binary, "serve", "--config", conf], stdin=subprocess.DEVNULL,
                           stdout=logf, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    stub = None
    try:
        t0 = time.time()
        while b"tern ready" not in open(logf.name, "rb").read():
            if srv.poll() is not None or time.time() - t0 > 30:
                raise RuntimeError(f"tern serve did not become ready; log:\n"
                                   f"{open(logf.name, 'rb').read()[-2000:].decode(errors='replace')}")
            time.sleep(0.05)
        stub = ImapStub(("127.0.0.1", sport), ImapStub.Handler)
        threading.Thread(target=stub.serve_forever, daemon=True).start()
        res = run_w1(a, f"tern iter {k}", "w1", sport, lport, os.path.join(rdir, f"iter{k}-tern.json"))
        cpu = cpu_seconds(srv.pid)
        # W1's STATUS check could not run (stub): verify with tern admin while the server still runs
        got = tern_mailboxes(binary, conf)
        w1 = res["w1_lmtp"]
        w1["count_mismatch"] = {mb: {"expected": n, "server": got.get(mb)}
                                for mb, n in corpus["per_mailbox"].items() if got.get(mb) != n}
        w1["count_check"] = "tern admin mailbox list"
        extra = {mb: n for mb, n in got.items() if mb not in corpus["per_mailbox"] and n}
        if extra:
            w1["count_unexpected"] = extra
        w1["server_cpu_s"] = cpu
    finally:
        if stub:
            stub.shutdown()
            stub.server_close()
        if srv.poll() is None:
            t_stop = time.time()
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(30)
            except subprocess.TimeoutExpired:
                log("tern did not stop within 30 s after SIGTERM; killing it")
                srv.kill()
                srv.wait()
            if time.time() - t_stop > 2:
                log(f"tern took {time.time() - t_stop:.1f} s to stop after SIGTERM (rc {srv.returncode})")
        logf.close()
        if not a.keep:
            shutil.rmtree(os.path.join(base, "data"), ignore_errors=True)
    return res


def cpu_seconds(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return round((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return None


# ----------------------------------------------------------------------------
# dovecot / cyrus
def run_dovecot(a, k, corpus, rdir):
    dovecot = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.access(dovecot, os.X_OK) or not os.access("/usr/lib/dovecot/lmtp", os.X_OK):
        raise Skip("Dovecot packages missing: apt-get install dovecot-core dovecot-lmtpd "
                   "(dovecot-imapd too, unless Cyrus is installed: dovecot_up.sh then unpacks it itself)")
    root = os.path.join(a.workdir, "dovecot")
    env = {"DOVECOT_BENCH_ROOT": root, "DOVECOT_RESET": "1"}
    down = ["sh", os.path.join(a.shared_bench, "dovecot_down.sh"), "master", "--purge"]
    sh(down, env=env, check=False)
    require_free([15343, 15310, DOVECOT_PORTS["lmtp"], 15326], "dovecot")
    try:
        p = sh(["sh", os.path.join(a.shared_bench, "dovecot_up.sh"), "master"], env=env, timeout=300)
        log(p.stdout.strip())
        res = run_w1(a, f"dovecot iter {k}", "prepare,w1", DOVECOT_PORTS["imap"], DOVECOT_PORTS["lmtp"],
                     os.path.join(rdir, f"iter{k}-dovecot.json"))
        res["w1_lmtp"]["count_check"] = "IMAP STATUS (workload.py)"
    finally:
        sh(down if not a.keep else down[:-1], env=env, check=False)
    return res


def run_cyrus(a, k, corpus, rdir):
    missing = [x for x in ("/usr/lib/cyrus/bin/master", "/usr/lib/cyrus/bin/lmtpd", "/usr/lib/cyrus/bin/imapd",
                           "/usr/lib/cyrus/bin/sync_server")
               if not os.access(x, os.X_OK)] + ([] if shutil.which("saslpasswd2") else ["saslpasswd2"])
    if missing:
        raise Skip(f"Cyrus packages missing ({', '.join(missing)}): apt-get install cyrus-imapd cyrus-common "
                   "cyrus-replication cyrus-pop3d cyrus-nntpd cyrus-admin cyrus-clients sasl2-bin")
    env = {"BASE": os.path.join(a.workdir, "cyrus"), "PASS": PASSWORD}
    down = ["bash", os.path.join(a.shared_bench, "cyrus_down.sh")]
    sh(down, env={**env, "WIPE": "1"}, check=False)
    require_free([14301, 14302, CYRUS_PORTS["lmtp"], 14304, 14311, 14313], "cyrus")
    try:
        p = sh(["bash", os.path.join(a.shared_bench, "cyrus_up.sh")], env=env, timeout=300)
        log(p.stdout.strip().replace("\n", "; "))
        res = run_w1(a, f"cyrus iter {k}", "prepare,w1", CYRUS_PORTS["imap"], CYRUS_PORTS["lmtp"],
                     os.path.join(rdir, f"iter{k}-cyrus.json"))
        res["w1_lmtp"]["count_check"] = "IMAP STATUS (workload.py)"
    finally:
        sh(down, env={**env, "WIPE": "0" if a.keep else "1"}, check=False)
    return res


RUNNERS = {"tern": run_tern, "dovecot": run_dovecot, "cyrus": run_cyrus}


# ----------------------------------------------------------------------------
# report
def fmt(v, nd=1):
    return "-" if v is None else f"{v:,.{nd}f}"


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(runs, servers, skipped, failed):
    summ = {}
    for s in servers:
        ok = [r for r in runs if r["server"] == s and "w1" in r]
        if not ok:
            continue
        w = [r["w1"] for r in ok]
        summ[s] = {"iterations": len(ok),
                   "msgs_per_s": med([x["msgs_per_s"] for x in w]),
                   "MB_per_s": med([x["MB_per_s"] for x in w]),
                   "latency_ms_p50": med([x["latency_ms_p50"] for x in w]),
                   "latency_ms_p99": med([x["latency_ms_p99"] for x in w]),
                   "seconds": med([x["seconds"] for x in w]),
                   "msgs_per_s_each": [x["msgs_per_s"] for x in w],
                   "delivered_each": [x["delivered"] for x in w],
                   "errors_total": sum(x["error_count"] for x in w),
                   "count_mismatch_runs": sum(1 for x in w if x["count_mismatch"]),
                   "count_check": w[0].get("count_check"),
                   "count_mismatch_first": next((x["count_mismatch"] for x in w if x["count_mismatch"]), None),
                   "errors_first": next((x["errors"][:3] for x in w if x["errors"]), None)}
    t = summ.get("tern", {}).get("msgs_per_s")
    for s, v in summ.items():
        v["tern_ratio"] = round(t / v["msgs_per_s"], 3) if t and v["msgs_per_s"] else None
    return summ


def print_table(summ, corpus, a, skipped, failed):
    print(f"\nW1 LMTP delivery: {corpus['messages']:,} msgs / {corpus['bytes'] / 1e6:.1f} MB "
          f"({corpus['dir']}), {a.concurrency} connections, median of {a.iterations} iteration(s)\n")
    hdr = ["server", "runs", "msgs/s", "MB/s", "p50 ms", "p99 ms", "seconds", "tern/this", "count check", "errors"]
    rows = []
    for s in a.server_list:
        if s in summ:
            v = summ[s]
            cc = "ok" if not v["count_mismatch_runs"] else f"MISMATCH in {v['count_mismatch_runs']} run(s)"
            rows.append([s, str(v["iterations"]), fmt(v["msgs_per_s"]), fmt(v["MB_per_s"], 2),
                         fmt(v["latency_ms_p50"], 2), fmt(v["latency_ms_p99"], 2), fmt(v["seconds"], 2),
                         fmt(v["tern_ratio"], 2) + "x" if v["tern_ratio"] else "-", cc, str(v["errors_total"])])
        else:
            why = skipped.get(s) and "skipped" or "failed"
            rows.append([s, "0", "-", "-", "-", "-", "-", "-", why, "-"])
    w = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) if i in (0, 8) else c.rjust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))
    print("\ntern/this = tern msgs/s ÷ this server's msgs/s (>1: tern faster).  Latency = per message, "
          "client wall clock.")
    for s, v in summ.items():
        extra = f"  per iteration msgs/s: {v['msgs_per_s_each']}"
        print(f"{s}: {extra.strip()}; count check via {v['count_check']}")
        if v["count_mismatch_first"]:
            print(f"{s}: COUNT MISMATCH (expected vs server, per folder): {v['count_mismatch_first']}")
        if v["errors_first"]:
            print(f"{s}: delivery errors, first: {v['errors_first']}")
    for s, why in skipped.items():
        print(f"{s}: SKIPPED: {why}")
    for s, why in failed.items():
        print(f"{s}: FAILED: {why}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="corpus dir (generated with corpus.py when missing); "
                    "default WORKDIR/corpus-n<N>-s<SEED>")
    ap.add_argument("--n", type=int, help="messages when generating the corpus (default 10000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--servers", default="tern,dovecot,cyrus")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--tern-bin", default="target/release/tern",
                    help="relative paths are tried from the cwd, then from the repo root")
    ap.add_argument("--tern-lmtp-port", type=int, default=14401)
    ap.add_argument("--tern-imap-stub-port", type=int, default=14402)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--shared-bench", default="/work/shared/bench",
                    help="folder with workload.py, corpus.py, dovecot_up.sh, cyrus_up.sh (read only)")
    ap.add_argument("--workdir", default="/tmp/tern-bench", help="server state and results")
    ap.add_argument("--quiet-wait", type=float, default=120,
                    help="before each run wait up to this many seconds for load < --quiet-load (0: don't)")
    ap.add_argument("--quiet-load", type=float, default=1.5)
    ap.add_argument("--timeout", type=float, default=3600, help="per workload.py run, seconds")
    ap.add_argument("--keep", action="store_true", help="keep server data after each run")
    ap.add_argument("--json-out", help="summary JSON (default WORKDIR/results/<stamp>/summary.json)")
    a = ap.parse_args()
    a.n_given = a.n is not None
    a.n = a.n or 10000
    a.server_list = [s.strip() for s in a.servers.split(",") if s.strip()]
    bad = [s for s in a.server_list if s not in SERVERS]
    if bad:
        ap.error(f"unknown server(s) {bad}; choose from {','.join(SERVERS)}")
    a.workdir = os.path.abspath(a.workdir)
    a.corpus = os.path.abspath(a.corpus or os.path.join(a.workdir, f"corpus-n{a.n}-s{a.seed}"))
    for f in ("workload.py", "corpus.py", "dovecot_up.sh", "cyrus_up.sh"):
        if not os.path.exists(os.path.join(a.shared_bench, f)):
            sys.exit(f"{f} not found in {a.shared_bench} (--shared-bench)")
    os.makedirs(a.workdir, exist_ok=True)
    t_start = time.time()
    corpus = ensure_corpus(a)
    rdir = os.path.join(a.workdir, "results", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(rdir, exist_ok=True)
    log(f"corpus {corpus['messages']} msgs, {corpus['bytes'] / 1e6:.1f} MB; results in {rdir}")

    runs, skipped, failed = [], {}, {}
    for k in range(1, a.iterations + 1):
        order = a.server_list[(k - 1) % len(a.server_list):] + a.server_list[:(k - 1) % len(a.server_list)]
        for s in order:
            if s in skipped:
                continue
            waited = wait_quiet(a.quiet_wait, a.quiet_load) if a.quiet_wait > 0 else 0
            rec = {"server": s, "iteration": k, "quiet_wait_s": waited, "load_start": load_info()}
            t0 = time.time()
            try:
                res = RUNNERS[s](a, k, corpus, rdir)
                rec["w1"] = res["w1_lmtp"]
                if "prepare" in res:
                    rec["prepare"] = res["prepare"]
                w = rec["w1"]
                log(f"{s} iter {k}: {w['msgs_per_s']} msg/s, {w['MB_per_s']} MB/s, p50 {w['latency_ms_p50']} ms, "
                    f"p99 {w['latency_ms_p99']} ms, delivered {w['delivered']}/{w['messages']}, "
                    f"errors {w['error_count']}, count mismatch {w['count_mismatch'] or 'none'} "
                    f"(load {rec['load_start']['loadavg1']})")
                if w["errors"]:
                    log(f"{s} iter {k}: first errors: {w['errors'][:3]}")
            except Skip as e:
                skipped[s] = str(e)
                log(f"SKIPPING {s}: {e}")
                continue
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                rec["error"] = str(e)
                failed[s] = str(e).splitlines()[0][:300]
                log(f"{s} iter {k} FAILED: {e}")
            rec["wall_s"] = round(time.time() - t0, 1)
            runs.append(rec)

    summ = summarize(runs, a.server_list, skipped, failed)
    out = {"corpus": corpus, "concurrency": a.concurrency, "iterations": a.iterations,
           "servers": a.server_list, "summary": summ, "skipped": skipped, "failed": failed,
           "runs": runs, "total_wall_s": round(time.time() - t_start, 1)}
    jpath = a.json_out or os.path.join(rdir, "summary.json")
    with open(jpath, "w") as f:
        json.dump(out, f, indent=1)
    print_table(summ, corpus, a, skipped, failed)
    print(f"\nraw results: {jpath}  (total {out['total_wall_s']} s)")
    if failed or not summ:
        return 1
    return 2 if any(v["count_mismatch_runs"] or v["errors_total"] for v in summ.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
