"""Shared setup for the benchmark drivers in bench/ (lmtp_delivery.py, imap_workload.py).

What lives here:
  - fresh instances of tern, Dovecot 2.3 and Cyrus 3.6 (`instance(a, server, tag)`,
    a context manager that starts the server and always stops it again);
  - running the shared ../shared/bench/workload.py as a subprocess (`run_workload`);
  - the corpus, the bounded wait for a quiet machine, the iteration loop (servers
    interleaved, order rotating), medians and a markdown table printer;
  - a memory probe for idle IMAP connections (`conn_mem_probe`).
Stdlib only.  Nothing from ../shared/bench is copied or modified.
"""
import imaplib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
USER, PASSWORD, DOMAIN = "bench", "secret", "localhost"
SERVERS = ("tern", "dovecot", "cyrus")
# fixed by dovecot_up.sh (master) and cyrus_up.sh (master)
DOVECOT_PORTS = {"imap": 15343, "pop3": 15310, "lmtp": 15324}
CYRUS_PORTS = {"imap": 14301, "pop3": 14302, "lmtp": 14303}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Skip(Exception):
    """The server cannot be benchmarked here (missing packages/binary)."""


# ----------------------------------------------------------------------------
# small helpers
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


def cpu_seconds(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return round((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    return "-" if v is None else f"{v:,.{nd}f}"


def print_table(hdr, rows, left=(0,)):
    """Markdown table; columns in `left` are left-aligned, the others right-aligned."""
    w = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) if i in left else c.rjust(w[i])
                                       for i, c in enumerate(r)) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))


# ----------------------------------------------------------------------------
# command line shared by the drivers
def add_common_args(ap):
    ap.add_argument("--corpus", help="corpus dir (generated with corpus.py when missing); "
                    "default WORKDIR/corpus-n<N>-s<SEED>")
    ap.add_argument("--n", type=int, help="messages when generating the corpus (default 10000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--servers", default="tern,dovecot,cyrus")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--tern-bin", default="target/release/tern",
                    help="relative paths are tried from the cwd, then from the repo root")
    ap.add_argument("--tern-lmtp-port", type=int, default=14401)
    ap.add_argument("--tern-imap-port", type=int, default=14402)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--shared-bench", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"),
                    help="folder with workload.py, corpus.py, dovecot_up.sh, cyrus_up.sh (read only)")
    ap.add_argument("--workdir", default="/tmp/tern-bench", help="server state, corpus and results")
    ap.add_argument("--quiet-wait", type=float, default=120,
                    help="before each run wait up to this many seconds for load < --quiet-load (0: don't)")
    ap.add_argument("--quiet-load", type=float, default=1.5)
    ap.add_argument("--timeout", type=float, default=3600, help="per workload.py run, seconds")
    ap.add_argument("--keep", action="store_true", help="keep server data after each run")
    ap.add_argument("--json-out", help="summary JSON (default WORKDIR/results/<stamp>/summary.json)")


def setup(ap, tag):
    """Parse and check the arguments, make sure the corpus exists; -> (args, corpus, results dir)."""
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
    a.t_start = time.time()
    a.tern_binary = tern_binary_info(a) if "tern" in a.server_list else None
    corpus = ensure_corpus(a)
    rdir = os.path.join(a.workdir, "results", time.strftime("%Y%m%d-%H%M%S") + "-" + tag)
    os.makedirs(rdir, exist_ok=True)
    log(f"corpus {corpus['messages']} msgs, {corpus['bytes'] / 1e6:.1f} MB; results in {rdir}")
    return a, corpus, rdir


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
            rows.append(line.rstrip("\n").split("\t"))
    if a.n_given and len(rows) != a.n:
        sys.exit(f"{a.corpus} holds {len(rows)} messages, not --n {a.n}; use another --corpus dir")
    counts, marked = {}, {}
    for r in rows:
        counts[r[0]] = counts.get(r[0], 0) + 1
        if len(r) > 5 and r[5] == "1":
            marked[r[0]] = marked.get(r[0], 0) + 1
    return {"dir": a.corpus, "messages": len(rows), "bytes": sum(int(r[2]) for r in rows),
            "per_mailbox": dict(sorted(counts.items())), "search_word_per_mailbox": dict(sorted(marked.items()))}


def iterate(a, run_one):
    """Run `run_one(server, iteration) -> record dict` for every iteration and server:
    servers interleaved, order rotating per iteration, a bounded wait for a quiet
    machine before each run.  A Skip drops the server; other errors are recorded.
    -> (runs, skipped, failed)"""
    runs, skipped, failed = [], {}, {}
    for k in range(1, a.iterations + 1):
        n = len(a.server_list)
        order = a.server_list[(k - 1) % n:] + a.server_list[:(k - 1) % n]
        for s in order:
            if s in skipped:
                continue
            waited = wait_quiet(a.quiet_wait, a.quiet_load) if a.quiet_wait > 0 else 0
            rec = {"server": s, "iteration": k, "quiet_wait_s": waited, "load_start": load_info()}
            t0 = time.time()
            try:
                rec.update(run_one(s, k))
            except Skip as e:
                skipped[s] = str(e)
                log(f"SKIPPING {s}: {e}")
                continue
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError,
                    imaplib.IMAP4.error) as e:
                rec["error"] = str(e)
                failed.setdefault(s, str(e).splitlines()[0][:300])
                log(f"{s} iter {k} FAILED: {e}")
            rec["wall_s"] = round(time.time() - t0, 1)
            runs.append(rec)
    return runs, skipped, failed


# ----------------------------------------------------------------------------
# workload.py
def run_workload(a, label, phases, ports, out_json):
    """workload.py --phases PHASES against ports {'imap','lmtp'}; -> its JSON.  A failed
    phase raises, so a broken server never yields figures."""
    cmd = [sys.executable, os.path.join(a.shared_bench, "workload.py"), "--corpus", a.corpus,
           "--host", "127.0.0.1", "--imap-port", str(ports["imap"]), "--lmtp-port", str(ports["lmtp"]),
           "--user", USER, "--password", PASSWORD, "--domain", DOMAIN,
           "--concurrency", str(a.concurrency), "--phases", phases, "--json-out", out_json]
    if label.startswith("tern"):
        # tern advertises ACL only after login (its greeting lists the pre-login
        # capabilities), and workload.py's "auto" reads the greeting: ask for the grant
        # of `anyone p` that user+folder@ delivery needs, as Cyrus's folders get it.
        cmd += ["--grant-post", "yes"]
    log(f"{label}: workload.py --phases {phases} (imap {ports['imap']}, lmtp {ports['lmtp']})")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0 or not os.path.exists(out_json):
        raise RuntimeError(f"workload.py failed (rc {p.returncode}): {p.stderr[-2000:]}")
    with open(out_json) as f:
        res = json.load(f)
    for ph in phases.split(","):
        if ph + "_error" in res:
            raise RuntimeError(f"workload.py {ph} phase failed: {res[ph + '_error']}")
    if res.get("prepare", {}).get("errors"):
        log(f"{label}: prepare errors: {res['prepare']['errors'][:5]}")
    return res


# ----------------------------------------------------------------------------
# server instances
def tern_bin(a):
    for cand in ([a.tern_bin] if os.path.isabs(a.tern_bin)
                 else [os.path.abspath(a.tern_bin), os.path.join(REPO, a.tern_bin)]):
        if os.access(cand, os.X_OK):
            return cand
    raise Skip(f"tern binary {a.tern_bin} not found (build it: cd {REPO} && cargo build --release)")


def tern_binary_info(a):
    try:
        b = tern_bin(a)
    except Skip:
        return None
    st = os.stat(b)
    v = subprocess.run([b, "--version"], capture_output=True, text=True).stdout.strip()
    return {"path": b, "version": v, "mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(st.st_mtime)),
            "size": st.st_size}


def check_binary_unchanged(a, out):
    """The tern binary may be rebuilt by someone else during a run: say so (in `out`
    and on stdout), since the runs before and after then measured different builds."""
    if not a.tern_binary:
        return
    now = tern_binary_info(a)
    if not now or (now["mtime"], now["size"]) != (a.tern_binary["mtime"], a.tern_binary["size"]):
        out["tern_binary_changed_during_run"] = now
        print(f"WARNING: {a.tern_binary['path']} changed during the run (was {a.tern_binary['mtime']}, "
              f"now {now and now['mtime']}): tern runs may have used different builds; each tern run "
              f"records the build it started (tern_binary_mtime in summary.json)")


class Instance:
    """A fresh server instance: `with instance(a, server, tag) as inst:` ...
    inst.ports = {'imap', 'lmtp'}; inst.pid() = the pid whose process tree is the server."""
    name = "?"
    ports = {}

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def after_w1(self, corpus):
        """Server-specific figures taken right after W1 (tern: CPU, a count cross-check)."""
        return {}


class Tern(Instance):
    """Fresh data dir WORKDIR/tern/<tag>, a config with LMTP and IMAP listeners only,
    `tern admin user add bench --password-stdin`, then `tern serve` (ready when it
    logs 'tern ready'); SIGTERM afterwards.  The corpus folders are created by
    workload.py's prepare phase over IMAP, like for the other servers."""
    name = "tern"

    def __init__(self, a, tag):
        self.a, self.binary = a, tern_bin(a)
        self.ports = {"imap": a.tern_imap_port, "lmtp": a.tern_lmtp_port}
        self.base = os.path.join(a.workdir, "tern", tag)
        self.conf = os.path.join(self.base, "tern.toml")
        self.srv = self.logf = None

    def admin(self, *args, stdin=None):
        return subprocess.run([self.binary, "admin", "--config", self.conf, *args], input=stdin,
                              capture_output=True, text=True, timeout=120)

    def start(self):
        require_free(self.ports.values(), "tern")
        shutil.rmtree(self.base, ignore_errors=True)
        os.makedirs(self.base)
        with open(self.conf, "w") as f:
            f.write(f'data_dir = "{self.base}/data"\n[listen]\n'
                    f'lmtp = "127.0.0.1:{self.ports["lmtp"]}"\nimap = "127.0.0.1:{self.ports["imap"]}"\n')
        p = self.admin("user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        if p.returncode != 0:
            raise RuntimeError(f"tern admin user add: {p.stderr.strip()}")
        # developers rebuild target/release/tern while benchmarks run: note which build this is
        self.binary_mtime = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(os.stat(self.binary).st_mtime))
        self.logf = open(os.path.join(self.base, "tern.log"), "wb")
        self.srv = subprocess.Popen([self.binary, "serve", "--config", self.conf], stdin=subprocess.DEVNULL,
                                    stdout=self.logf, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
        t0 = time.time()
        while b"tern ready" not in open(self.logf.name, "rb").read():
            if self.srv.poll() is not None or time.time() - t0 > 30:
                raise RuntimeError(f"tern serve did not become ready; log:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, n=2000):
        try:
            return open(self.logf.name, "rb").read()[-n:].decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def stop(self):
        if self.srv and self.srv.poll() is None:
            t_stop = time.time()
            self.srv.send_signal(signal.SIGTERM)
            try:
                self.srv.wait(30)
            except subprocess.TimeoutExpired:
                log("tern did not stop within 30 s after SIGTERM; killing it")
                self.srv.kill()
                self.srv.wait()
            if time.time() - t_stop > 2:
                log(f"tern took {time.time() - t_stop:.1f} s to stop after SIGTERM (rc {self.srv.returncode})")
        if self.logf:
            self.logf.close()
            self.logf = None
        if not self.a.keep:
            shutil.rmtree(os.path.join(self.base, "data"), ignore_errors=True)

    def pid(self):
        return self.srv.pid

    def cpu_s(self):
        return cpu_seconds(self.srv.pid)

    def mailbox_counts(self):
        p = self.admin("mailbox", "list", USER)
        if p.returncode != 0:
            raise RuntimeError(f"tern admin mailbox list: {p.stderr.strip()}")
        out = {}
        for line in p.stdout.splitlines()[1:]:  # MAILBOX MESSAGES UIDVALIDITY LASTUID HIGHESTMODSEQ UNIQUEID PARTITION
            f = line.rsplit(None, 6)
            if len(f) == 7:
                out[f[0]] = int(f[1])
        return out

    def pending_texts(self):
        """Messages whose text tern has not yet moved into its full-text index (the
        background 'tern-text-index' thread does that; SEARCH BODY reads such messages
        instead).  Read-only look at the store's SQLite file; None if unreadable."""
        path = os.path.join(self.base, "data", "index.sqlite3")
        try:
            c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
            try:
                return c.execute("SELECT count(*) FROM pending_texts").fetchone()[0]
            finally:
                c.close()
        except sqlite3.Error:
            return None

    def after_w1(self, corpus):
        out = {"server_cpu_s": self.cpu_s(), "tern_binary_mtime": self.binary_mtime}
        # cross-check of W1's IMAP STATUS count check against the store itself
        got = self.mailbox_counts()
        bad = {mb: {"expected": n, "tern_admin": got.get(mb)}
               for mb, n in corpus["per_mailbox"].items() if got.get(mb) != n}
        if bad:
            out["admin_count_mismatch"] = bad
        return out


class Dovecot(Instance):
    """dovecot_up.sh master (DOVECOT_BENCH_ROOT=WORKDIR/dovecot, DOVECOT_RESET=1: mdbox,
    mail_fsync=optimized), dovecot_down.sh master --purge afterwards."""
    name = "dovecot"
    ports = DOVECOT_PORTS

    def __init__(self, a, tag):
        dovecot = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not os.access(dovecot, os.X_OK) or not os.access("/usr/lib/dovecot/lmtp", os.X_OK):
            raise Skip("Dovecot packages missing: apt-get install dovecot-core dovecot-lmtpd "
                       "(dovecot-imapd too, unless Cyrus is installed: dovecot_up.sh then unpacks it itself)")
        self.a = a
        self.root = os.path.join(a.workdir, "dovecot")
        self.env = {"DOVECOT_BENCH_ROOT": self.root, "DOVECOT_RESET": "1"}
        self.down = ["sh", os.path.join(a.shared_bench, "dovecot_down.sh"), "master", "--purge"]

    def start(self):
        sh(self.down, env=self.env, check=False)
        require_free([15343, 15310, 15324, 15326], "dovecot")
        p = sh(["sh", os.path.join(self.a.shared_bench, "dovecot_up.sh"), "master"], env=self.env, timeout=300)
        log(p.stdout.strip())

    def stop(self):
        sh(self.down if not self.a.keep else self.down[:-1], env=self.env, check=False)

    def pid(self):
        return int(open(os.path.join(self.root, "run", "master.pid")).read().split()[0])


class Cyrus(Instance):
    """WIPE=1 cyrus_down.sh (leftovers), cyrus_up.sh with BASE=WORKDIR/cyrus (it also
    starts the replica, which idles), WIPE=1 cyrus_down.sh afterwards."""
    name = "cyrus"
    ports = CYRUS_PORTS

    def __init__(self, a, tag):
        missing = [x for x in ("/usr/lib/cyrus/bin/master", "/usr/lib/cyrus/bin/lmtpd", "/usr/lib/cyrus/bin/imapd",
                               "/usr/lib/cyrus/bin/sync_server")
                   if not os.access(x, os.X_OK)] + ([] if shutil.which("saslpasswd2") else ["saslpasswd2"])
        if missing:
            raise Skip(f"Cyrus packages missing ({', '.join(missing)}): apt-get install cyrus-imapd cyrus-common "
                       "cyrus-replication cyrus-pop3d cyrus-nntpd cyrus-admin cyrus-clients sasl2-bin")
        self.a = a
        self.base = os.path.join(a.workdir, "cyrus")
        self.env = {"BASE": self.base, "PASS": PASSWORD}
        self.down = ["bash", os.path.join(a.shared_bench, "cyrus_down.sh")]

    def start(self):
        sh(self.down, env={**self.env, "WIPE": "1"}, check=False)
        require_free([14301, 14302, 14303, 14304, 14311, 14313], "cyrus")
        p = sh(["bash", os.path.join(self.a.shared_bench, "cyrus_up.sh")], env=self.env, timeout=300)
        log(p.stdout.strip().replace("\n", "; "))

    def stop(self):
        sh(self.down, env={**self.env, "WIPE": "0" if self.a.keep else "1"}, check=False)

    def pid(self):
        return int(open(os.path.join(self.base, "master", "master.pid")).read().split()[0])


def instance(a, server, tag):
    return {"tern": Tern, "dovecot": Dovecot, "cyrus": Cyrus}[server](a, tag)


# ----------------------------------------------------------------------------
# memory of idle IMAP connections
def _descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _mem_kib(pid):
    """{'rss','pss','uss'} KiB of one process from smaps_rollup (uss = private pages)."""
    m = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                m[k] = int(v.split()[0])
    except OSError:
        return None
    return {"rss": m.get("Rss", 0), "pss": m.get("Pss", 0),
            "uss": m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)}


def _comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return "?"


def _tree_mem(root):
    tot = {"rss": 0, "pss": 0, "uss": 0, "procs": 0}
    for p in _descendants(root):
        m = _mem_kib(p)
        if m:
            for k in ("rss", "pss", "uss"):
                tot[k] += m[k]
            tot["procs"] += 1
    return tot


def _socket_holders(server_port, client_ports, pids):
    """client port -> pids holding the server side of that TCP connection."""
    inode_of = {}
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(fn).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            lport, rport = int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)
            if lport == server_port and rport in client_ports:
                inode_of[f[9]] = rport
    out = {p: [] for p in client_ports}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:[") and t[8:-1] in inode_of and pid not in out[inode_of[t[8:-1]]]:
                out[inode_of[t[8:-1]]].append(pid)   # Cyrus imapd holds it twice (fd 0 and 1)
    return out


def conn_mem_probe(inst, k, settle=1.0):
    """Open k IMAP connections (LOGIN, SELECT INBOX, then idle) and look at memory:
      - tree_delta: (server process tree after - before) / k, for RSS, PSS and USS;
      - per_process: for servers that fork a process per connection (every connection
        held by a process of its own), that process's RSS/PSS/USS, median over the k.
    For a single-process server (tern) only tree_delta applies; imap_idle.py measures
    the same with thousands of connections, which is the figure to quote."""
    root = inst.pid()
    before = _tree_mem(root)
    conns = []
    try:
        for _ in range(k):
            m = imaplib.IMAP4("127.0.0.1", inst.ports["imap"], timeout=30)
            m.login(USER, PASSWORD)
            typ, data = m.select("INBOX")
            if typ != "OK":
                raise RuntimeError(f"SELECT INBOX: {typ} {data}")
            conns.append(m)
        time.sleep(settle)
        after = _tree_mem(root)
        pids = _descendants(root)
        holders = _socket_holders(inst.ports["imap"], {m.sock.getsockname()[1] for m in conns}, pids)
        owners = [tuple(v) for v in holders.values()]
        forked = bool(owners) and all(len(o) == 1 for o in owners) and len(set(owners)) == len(owners)
        mems = [x for x in (_mem_kib(o[0]) for o in owners) if x] if forked else []
        comms = sorted({_comm(p) for o in owners for p in o})
    finally:
        for m in conns:
            try:
                m.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
    out = {"connections": k, "procs_before": before["procs"], "procs_after": after["procs"],
           "tree_delta_kib_per_conn": {x: round((after[x] - before[x]) / k, 1) for x in ("rss", "pss", "uss")}}
    if forked:
        out["per_process"] = {"comm": comms,
                              **{x + "_kib_median": med([m[x] for m in mems]) for x in ("rss", "pss", "uss")}}
    else:
        out["holders"] = comms
    return out
