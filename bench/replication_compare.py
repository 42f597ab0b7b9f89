#!/usr/bin/env python3
"""Replication benchmark R1/R2/no-op/R3: tern against Cyrus 3.6 and Dovecot 2.3 in one run.

  python3 bench/replication_compare.py                      # N=10,000, 1 iteration, all three
  python3 bench/replication_compare.py --n 2000 --servers dovecot,cyrus --quiet-wait 0

Every server gets a fresh master/replica pair per iteration, the same corpus
delivered to the master over LMTP (the shared workload.py, phases prepare,w1),
and then the shared replication.py (../shared/bench, run as a subprocess,
unchanged) for every measurement, so bytes and direction turns come from the
same tcpcount.py proxy sitting between each server's replication client and
its replica:

  1. replication.py --steps r1,r2   R1 full sync of user bench, verify;
                                    R2 change set (1,000 flag changes, 100 LMTP
                                    deliveries, 50 expunges, 1 rename),
                                    incremental sync, verify
  2. replication.py --steps r1 --full-cmd <incremental command>
                                    the no-op sync: the incremental command run
                                    again with nothing changed, verify
  3. (tern) replication.py --steps r1 --skip-verify --full-cmd 'tern sync --verify'
                                    tern's own consistency check, through the proxy
  4. replication.py --steps r3      R3 rolling: LMTP 250 on the master -> the
                                    message visible over IMAP on the replica,
                                    20 samples + 1 warm-up, verify
     (tern: 3. again after R3)

Servers (replication client -> proxy -> replica):
  tern     `tern --config master.toml sync --user bench` (R1, R2, no-op),
           `tern sync --rolling` (R3, stopped by SIGTERM); master [replication]
           replica = the proxy (127.0.0.1:14430 -> replica sync 14423)
  cyrus    cyrus_up.sh pair, `sync_client -o -u bench`, `sync_client -r` (R3);
           the proxy strips `* COMPRESS` (replication.py --no-compress) unless
           --cyrus-compress; proxy 14320 -> sync_server 14313
  dovecot  dovecot_up.sh master + replica, `doveadm sync -u bench -s STATE
           tcp:proxy` (stateful dsync as Dovecot's replicator does it; stateless
           with --dovecot-stateless); R3: the master restarted with the
           notify+replication plugins (Dovecot's replicator pushes every
           delivery), as dovecot_replication.sh does; proxy 15377 -> doveadm 15376

Output: a markdown table (stdout and summary.md) and summary.json in
WORKDIR/results/<stamp>-repl/, plus the raw replication.py JSON of every step.
Medians over --iterations.  Exit status 0 = all good, 1 = a server failed or
nothing ran, 2 = a verification mismatch, a failed sync command or an R3
timeout.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
import servers as S  # noqa: E402  (bench/servers.py)

USER, PASSWORD = S.USER, S.PASSWORD
REPL_USER, REPL_PASSWORD = "repl", "secret"


# ----------------------------------------------------------------------------
# replication.py as a subprocess
def replication_py(a, label, base, run_dir, args, out_json):
    """Run the shared replication.py; -> its JSON.  It raises nothing itself when a sync
    command fails (it records rc), so the caller checks the rc fields."""
    os.makedirs(run_dir, exist_ok=True)
    cmd = [sys.executable, os.path.join(a.shared_bench, "replication.py"), "--corpus", a.corpus,
           "--base", base, "--run-dir", run_dir, "--seed", str(a.seed), "--user", USER,
           "--password", PASSWORD, "--domain", S.DOMAIN, "--latency-samples", str(a.latency_samples),
           "--latency-timeout", str(a.latency_timeout),
           "--json-out", out_json] + args
    steps = args[args.index("--steps") + 1] if "--steps" in args else "r1,r2,r3"
    S.log(f"{label}: replication.py --steps {steps}")
    if os.path.exists(out_json):
        os.unlink(out_json)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, stdin=subprocess.DEVNULL)
    with open(out_json + ".stderr", "w") as f:
        f.write(p.stderr)
    if p.returncode != 0 or not os.path.exists(out_json):
        raise RuntimeError(f"{label}: replication.py failed (rc {p.returncode}): {p.stderr[-2500:]}")
    with open(out_json) as f:
        return json.load(f)


# ----------------------------------------------------------------------------
# master/replica pairs
class Pair(S.Instance):
    """A fresh master + replica.  Attributes used by run_one():
    ports       {'imap','lmtp'} of the master (corpus delivery)
    base        replication.py --base (its proxy/rolling pid files go there)
    common      replication.py arguments for every step (ports, proxy, conf)
    full_cmd, incr_cmd, r3_args"""
    name = "?"
    verify_cmd = None
    # start()/stop() around a `with` block come from servers.Instance.

    def before_r3(self):
        pass

    def info(self):
        return {}


class TernPair(Pair):
    """Two `tern serve` processes.  Master: IMAP + LMTP, [replication] replica = the proxy.
    Replica: IMAP + LMTP + sync.  User bench exists on the master only (replication
    creates it on the replica); the replica has the admin user repl the master
    authenticates as."""
    name = "tern"

    def __init__(self, a, tag):
        self.a, self.binary = a, S.tern_bin(a)
        p = subprocess.run([self.binary, "sync", "--help"], capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            lines = (p.stderr or p.stdout).strip().splitlines() or [f"rc {p.returncode}"]
            why = next((x for x in lines if "error" in x.lower()), lines[-1])
            raise S.Skip(f"{self.binary} has no `sync` subcommand (built before replication landed?): {why}")
        self.base = os.path.join(a.workdir, "tern", tag)
        self.mp = {"imap": a.tern_ports[0], "lmtp": a.tern_ports[1]}
        self.rp = {"imap": a.tern_ports[2], "lmtp": a.tern_ports[3], "sync": a.tern_ports[4]}
        self.proxy = a.tern_ports[5]
        self.ports = self.mp
        self.mconf = os.path.join(self.base, "master.toml")
        self.rconf = os.path.join(self.base, "replica.toml")
        self.procs = {}
        self.logs = {}
        self.script = os.path.join(self.base, "tern-sync.sh")
        # the wrapper keeps tern sync's summary line (stdout) in BASE/sync-<label>.out
        # (replication.py records only stderr); rolling runs tern directly so SIGTERM reaches it
        sync = f"sh {self.script}"
        # the default single session (issue 9's aim); TERN_BENCH_PARALLEL=N for --parallel N
        parallel = os.environ.get("TERN_BENCH_PARALLEL")
        self.full_cmd = f"{sync} r1 --user {{user}}" + (f" --parallel {parallel}" if parallel else "")
        self.incr_cmd = f"{sync} r2 --user {{user}}"
        self.noop_cmd = f"{sync} noop --user {{user}}"
        self.verify_cmd = f"{sync} VERIFYLABEL --verify --user {{user}}"
        self.common = ["--master-imap", str(self.mp["imap"]), "--replica-imap", str(self.rp["imap"]),
                       "--lmtp-port", str(self.mp["lmtp"]), "--proxy-listen", f"127.0.0.1:{self.proxy}",
                       "--proxy-target", f"127.0.0.1:{self.rp['sync']}", "--master-conf", self.mconf]
        self.r3_args = ["--rolling-cmd", f"{self.binary} --config {self.mconf} sync --rolling",
                        "--pre-rolling-cmd", "", "--rolling-stop-file", ""]

    def admin(self, conf, *args, stdin=None):
        p = subprocess.run([self.binary, "--config", conf, "admin", *args], input=stdin,
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"tern admin {' '.join(args)}: {p.stderr.strip() or p.stdout.strip()}")
        return p

    def serve(self, role, conf, expect):
        logpath = os.path.join(self.base, f"{role}.log")
        self.logs[role] = open(logpath, "wb")
        self.procs[role] = subprocess.Popen([self.binary, "--config", conf, "serve"], stdin=subprocess.DEVNULL,
                                            stdout=self.logs[role], stderr=subprocess.STDOUT,
                                            env={**os.environ, "NO_COLOR": "1"})
        t0 = time.time()
        while b"tern ready" not in open(logpath, "rb").read():
            if self.procs[role].poll() is not None or time.time() - t0 > 30:
                raise RuntimeError(f"tern serve ({role}) did not become ready; log:\n"
                                   f"{open(logpath, 'rb').read()[-2000:].decode(errors='replace')}")
            time.sleep(0.05)
        text = open(logpath, "rb").read().decode(errors="replace")
        missing = [f"{k} listening on {v}" for k, v in expect.items() if f"{k} listening on {v}" not in text]
        if missing:
            raise RuntimeError(f"tern serve ({role}): log lacks {missing}; log:\n{text[-2000:]}")

    def start(self):
        S.require_free(list(self.mp.values()) + list(self.rp.values()) + [self.proxy], "tern")
        shutil.rmtree(self.base, ignore_errors=True)
        os.makedirs(self.base)
        with open(self.script, "w") as f:
            f.write("#!/bin/sh\n# $1 = label (output file), the rest: tern sync arguments\n"
                    f'label=$1; shift\n"{self.binary}" --config "{self.mconf}" sync "$@" > "{self.base}/sync-$label.out"\n'
                    f'rc=$?\ncat "{self.base}/sync-$label.out"\nexit $rc\n')
        with open(self.rconf, "w") as f:
            f.write(f'data_dir = "{self.base}/replica/data"\n\n[listen]\n'
                    f'imap = "127.0.0.1:{self.rp["imap"]}"\nlmtp = "127.0.0.1:{self.rp["lmtp"]}"\n'
                    f'sync = "127.0.0.1:{self.rp["sync"]}"\n')
        with open(self.mconf, "w") as f:
            f.write(f'data_dir = "{self.base}/master/data"\n\n[listen]\n'
                    f'imap = "127.0.0.1:{self.mp["imap"]}"\nlmtp = "127.0.0.1:{self.mp["lmtp"]}"\n\n'
                    f'[replication]\nreplica = "127.0.0.1:{self.proxy}"   # tcpcount proxy -> replica sync '
                    f'{self.rp["sync"]}\nuser = "{REPL_USER}"\npassword = "{REPL_PASSWORD}"\n')
        self.admin(self.rconf, "user", "add", REPL_USER, "--admin", "--password-stdin", stdin=REPL_PASSWORD + "\n")
        self.admin(self.mconf, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        self.binary_mtime = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(os.stat(self.binary).st_mtime))
        self.serve("replica", self.rconf, {k: f"127.0.0.1:{v}" for k, v in self.rp.items()})
        self.serve("master", self.mconf, {k: f"127.0.0.1:{v}" for k, v in self.mp.items()})

    def stop(self):
        for role, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    S.log(f"tern {role} did not stop within 30 s after SIGTERM; killing it")
                    p.kill()
                    p.wait()
        for f in self.logs.values():
            f.close()
        self.procs, self.logs = {}, {}
        if not self.a.keep:
            for role in ("master", "replica"):
                shutil.rmtree(os.path.join(self.base, role, "data"), ignore_errors=True)

    def cpu(self):
        return {role: S.cpu_seconds(p.pid) for role, p in self.procs.items()}

    def sync_out(self, label):
        try:
            lines = [x for x in open(os.path.join(self.base, f"sync-{label}.out")).read().splitlines() if x.strip()]
        except OSError:
            return None
        return lines[-1] if lines else ""

    def info(self):
        return {"tern_binary_mtime": getattr(self, "binary_mtime", None), "server_cpu_s": self.cpu()}


class CyrusPair(Pair):
    """cyrus_up.sh (master + replica) through servers.Cyrus; sync_client -o -u / -r.
    replication.py's defaults are the Cyrus ones (--base = the Cyrus BASE)."""
    name = "cyrus"

    def __init__(self, a, tag):
        self.a = a
        self.inst = S.Cyrus(a, tag)          # raises Skip when packages are missing
        self.base = self.inst.base
        self.ports = self.inst.ports
        self.full_cmd = self.incr_cmd = self.noop_cmd = "/usr/lib/cyrus/bin/sync_client -C {conf} -o -u {user}"
        self.common = [] if a.cyrus_compress else ["--no-compress"]
        self.r3_args = []                    # replication.py defaults: sync_client -r, drop sync log, shutdown file

    def start(self):
        S.require_free([14320], "cyrus (replication proxy)")
        self.inst.start()

    def stop(self):
        self.inst.stop()


class DovecotPair(Pair):
    """dovecot_up.sh master + replica (own roots under WORKDIR/dovecot), dsync through
    the proxy; for R3 the master is restarted with DOVECOT_REPLICATE_TO=tcp:proxy
    (notify+replication plugins, replicator/aggregator), as dovecot_replication.sh does."""
    name = "dovecot"
    PORTS = [15343, 15310, 15324, 15326, 15393, 15360, 15374, 15376, 15377]

    def __init__(self, a, tag):
        S.Dovecot(a, tag)                    # only its package check (raises Skip)
        self.a = a
        self.base = os.path.join(a.workdir, "dovecot")
        self.roots = {r: os.path.join(self.base, r) for r in ("master", "replica")}
        self.mconf = os.path.join(self.roots["master"], "etc", "dovecot.conf")
        self.ports = S.DOVECOT_PORTS
        self.state = os.path.join(self.base, "dsync-state")
        self.script = os.path.join(self.base, "dsync.sh")
        self.full_cmd = self.incr_cmd = self.noop_cmd = f"sh {self.script} {{user}}"
        self.common = ["--master-imap", "15343", "--replica-imap", "15393", "--lmtp-port", "15324",
                       "--proxy-listen", "127.0.0.1:15377", "--proxy-target", "127.0.0.1:15376",
                       "--master-conf", self.mconf]
        self.r3_args = ["--rolling-cmd", "sleep 3600", "--pre-rolling-cmd", "true", "--rolling-stop-file", ""]

    def sh(self, script, role, env=None, check=True, args=()):
        return S.sh(["sh", os.path.join(self.a.shared_bench, script), role, *args],
                    env={"DOVECOT_BENCH_ROOT": self.roots[role], **(env or {})}, timeout=300, check=check)

    def start(self):
        for r in ("master", "replica"):
            self.sh("dovecot_down.sh", r, check=False, args=["--purge"])
        S.require_free(self.PORTS, "dovecot")
        os.makedirs(self.base, exist_ok=True)
        for f in (self.state, self.state + ".new"):
            if os.path.exists(f):
                os.unlink(f)
        with open(self.script, "w") as f:
            if self.a.dovecot_stateless:
                f.write(f'#!/bin/sh\nexec doveadm -c {self.mconf} sync -u "$1" tcp:127.0.0.1:15377\n')
            else:   # stateful: read the previous state, write the new one (Dovecot's replicator does this)
                f.write(f'#!/bin/sh\ndoveadm -c {self.mconf} sync -u "$1" -s "$(cat {self.state} 2>/dev/null)" '
                        f'tcp:127.0.0.1:15377 > {self.state}.new && mv {self.state}.new {self.state}\n')
        for r in ("replica", "master"):
            S.log(self.sh("dovecot_up.sh", r, env={"DOVECOT_RESET": "1"}).stdout.strip())

    def before_r3(self):
        self.sh("dovecot_down.sh", "master")
        S.require_free([15343, 15310, 15324, 15326], "dovecot master (restart for R3)")
        S.log(self.sh("dovecot_up.sh", "master", env={"DOVECOT_REPLICATE_TO": "tcp:127.0.0.1:15377"}).stdout.strip())

    def stop(self):
        for r in ("master", "replica"):
            self.sh("dovecot_down.sh", r, check=False, args=[] if self.a.keep else ["--purge"])


PAIRS = {"tern": TernPair, "dovecot": DovecotPair, "cyrus": CyrusPair}


# ----------------------------------------------------------------------------
def _sync_fields(step):
    return {k: step.get(k) for k in ("seconds", "rc", "c2s_bytes", "s2c_bytes", "total_bytes", "turns",
                                      "round_trips_est", "connections", "client_cpu_s", "bytes_over_mailstore",
                                      "MB_per_s", "stderr_tail")}


def _verify(v):
    if v is None:
        return None
    return {k: v.get(k) for k in ("label", "ok", "mismatch_count", "mismatches", "mailboxes", "messages", "error")}


def run_one(a, rdir, server, k):
    tag = f"iter{k}"
    out = {}
    if a.settle > 0:
        # The previous pair's data was just deleted. On a filesystem like this one's
        # (ext4 without a journal) creating files stays several times slower for about
        # a minute after many nearby deletions: let that pass, for every server alike.
        time.sleep(a.settle)
    with PAIRS[server](a, tag) as pair:
        run_dir = os.path.join(rdir, f"{tag}-{server}")
        os.makedirs(run_dir, exist_ok=True)
        res = S.run_workload(a, f"{server} {tag}", "prepare,w1", pair.ports, os.path.join(run_dir, "w1.json"))
        w1 = res["w1_lmtp"]
        out["w1"] = {x: w1.get(x) for x in ("delivered", "messages", "bytes", "seconds", "msgs_per_s",
                                            "error_count", "count_mismatch")}
        if w1.get("error_count"):
            raise RuntimeError(f"corpus delivery errors: {w1['errors'][:3]}")
        S.log(f"{server} {tag}: corpus delivered, {w1['msgs_per_s']} msg/s"
              + (f", COUNT MISMATCH {w1['count_mismatch']}" if w1.get("count_mismatch") else ""))

        def rp(label, args):
            return replication_py(a, f"{server} {tag} {label}", pair.base, os.path.join(run_dir, label),
                                  pair.common + args, os.path.join(run_dir, f"{label}.json"))

        r12 = rp("r12", ["--steps", "r1,r2", "--full-cmd", pair.full_cmd, "--incr-cmd", pair.incr_cmd])
        out["master_store"] = r12["master_store"]
        out["r1"] = {**_sync_fields(r12["r1_full"]), "verify": _verify(r12.get("r1_verify"))}
        out["r2_changes"] = r12["r2_changes"]
        out["r2"] = {**_sync_fields(r12["r2_incremental"]), "verify": _verify(r12.get("r2_verify"))}
        out["r2"]["new_bytes"] = r12["r2_changes"]["new_bytes"]
        out["r2"]["metadata_bytes"] = out["r2"]["total_bytes"] - out["r2"]["new_bytes"]
        S.log(f"{server} {tag}: R1 {out['r1']['seconds']} s {out['r1']['total_bytes']:,} B "
              f"{out['r1']['turns']} turns rc {out['r1']['rc']} verify {out['r1']['verify'] and out['r1']['verify']['ok']}; "
              f"R2 {out['r2']['seconds']} s {out['r2']['total_bytes']:,} B {out['r2']['turns']} turns "
              f"rc {out['r2']['rc']} verify {out['r2']['verify'] and out['r2']['verify']['ok']}")

        # no-op: the incremental command again, nothing changed (replication.py's R1 step
        # is exactly "proxy up, command timed, proxy down, verify")
        noop = rp("noop", ["--steps", "r1", "--full-cmd", pair.noop_cmd])
        out["noop"] = {**_sync_fields(noop["r1_full"]), "verify": _verify(noop.get("r1_verify"))}
        out["noop"].pop("bytes_over_mailstore", None)
        out["noop"].pop("MB_per_s", None)
        S.log(f"{server} {tag}: no-op {out['noop']['seconds']} s {out['noop']['total_bytes']:,} B "
              f"{out['noop']['turns']} turns")

        def own_verify(label):
            v = rp(label, ["--steps", "r1", "--skip-verify",
                           "--full-cmd", pair.verify_cmd.replace("VERIFYLABEL", label)])["r1_full"]
            rec = {**_sync_fields(v), "ok": v["rc"] == 0, "stdout_last": pair.sync_out(label)}
            for x in ("bytes_over_mailstore", "MB_per_s"):
                rec.pop(x, None)
            S.log(f"{server} {tag}: tern sync --verify ({label}): rc {v['rc']}, {rec['stdout_last']!r}")
            return rec

        if pair.verify_cmd:
            out["own_verify_after_noop"] = own_verify("verify-noop")

        pair.before_r3()
        r3 = rp("r3", ["--steps", "r3"] + pair.r3_args)
        rr = r3["r3_rolling"]
        out["r3"] = {**{x: rr.get(x) for x in ("samples", "timeouts", "wrong_message", "latency_ms_median",
                                               "latency_ms_p90", "latency_ms_min", "latency_ms_max",
                                               "latency_ms_all", "stopped_via", "client_cpu_s", "c2s_bytes",
                                               "s2c_bytes", "total_bytes", "turns", "round_trips_est",
                                               "connections")},
                     "verify": _verify(r3.get("r3_verify"))}
        S.log(f"{server} {tag}: R3 median {rr.get('latency_ms_median')} ms p90 {rr.get('latency_ms_p90')} ms, "
              f"timeouts {rr.get('timeouts')}, wrong {rr.get('wrong_message')}, verify "
              f"{out['r3']['verify'] and out['r3']['verify']['ok']}")
        if pair.verify_cmd:
            out["own_verify_after_r3"] = own_verify("verify-r3")
        if isinstance(pair, TernPair):
            out["tern_sync_stdout"] = {lbl: pair.sync_out(lbl) for lbl in ("r1", "r2", "noop")}
        out.update(pair.info())
    return out


# ----------------------------------------------------------------------------
# summary
METRICS = [  # key, label, digits, ratio (other ÷ tern)
    ("r1_s", "R1 full sync: seconds", 3, True),
    ("r1_bytes", "R1 bytes, total (c2s + s2c)", 0, True),
    ("r1_c2s", "R1 bytes master→replica", 0, True),
    ("r1_s2c", "R1 bytes replica→master", 0, True),
    ("r1_over_store", "R1 bytes ÷ mail store", 4, True),
    ("r1_rt", "R1 round trips (turns/2)", 0, True),
    ("r1_cpu", "R1 sync client CPU s", 2, True),
    ("r2_s", "R2 incremental: seconds", 3, True),
    ("r2_c2s", "R2 bytes master→replica", 0, True),
    ("r2_s2c", "R2 bytes replica→master", 0, True),
    ("r2_bytes", "R2 bytes, total", 0, True),
    ("r2_new", "R2 new mail bytes (100 msgs)", 0, False),
    ("r2_meta", "R2 metadata bytes (total − new mail)", 0, True),
    ("r2_rt", "R2 round trips", 0, True),
    ("noop_s", "no-op sync: seconds", 3, True),
    ("noop_bytes", "no-op sync: bytes", 0, True),
    ("noop_rt", "no-op sync: round trips", 0, True),
    ("r3_med", "R3 rolling latency median ms", 1, True),
    ("r3_p90", "R3 rolling latency p90 ms", 1, True),
    ("r3_bytes", "R3 bytes (all rolling traffic)", 0, True),
    ("r3_rt", "R3 round trips", 0, True),
]


def metrics_of(r):
    g = lambda sec, k: (r.get(sec) or {}).get(k)
    return {"r1_s": g("r1", "seconds"), "r1_bytes": g("r1", "total_bytes"), "r1_c2s": g("r1", "c2s_bytes"),
            "r1_s2c": g("r1", "s2c_bytes"), "r1_over_store": g("r1", "bytes_over_mailstore"),
            "r1_rt": g("r1", "round_trips_est"), "r1_cpu": g("r1", "client_cpu_s"),
            "r2_s": g("r2", "seconds"), "r2_c2s": g("r2", "c2s_bytes"), "r2_s2c": g("r2", "s2c_bytes"),
            "r2_bytes": g("r2", "total_bytes"), "r2_new": g("r2", "new_bytes"), "r2_meta": g("r2", "metadata_bytes"),
            "r2_rt": g("r2", "round_trips_est"), "noop_s": g("noop", "seconds"), "noop_bytes": g("noop", "total_bytes"),
            "noop_rt": g("noop", "round_trips_est"), "r3_med": g("r3", "latency_ms_median"),
            "r3_p90": g("r3", "latency_ms_p90"), "r3_bytes": g("r3", "total_bytes"), "r3_rt": g("r3", "round_trips_est")}


def checks_of(r):
    """verifications (replication.py IMAP compare, tern sync --verify) and command failures of one run."""
    ver = [r[s]["verify"] for s in ("r1", "r2", "noop", "r3") if r.get(s) and r[s].get("verify")]
    own = [r[s] for s in ("own_verify_after_noop", "own_verify_after_r3") if r.get(s)]
    failed_cmds = [s for s in ("r1", "r2", "noop") if r.get(s) and r[s].get("rc") not in (0, None)]
    r3 = r.get("r3") or {}
    return {"verify_ok": sum(1 for v in ver if v.get("ok")), "verify_total": len(ver),
            "mismatches": sum(v.get("mismatch_count") or (0 if v.get("ok") else 1) for v in ver),
            "first_mismatches": next((v.get("mismatches") or v.get("error") for v in ver if not v.get("ok")), None),
            "own_verify_ok": sum(1 for v in own if v["ok"]), "own_verify_total": len(own),
            "failed_cmds": failed_cmds, "r3_timeouts": r3.get("timeouts") or 0,
            "r3_wrong": r3.get("wrong_message") or 0,
            "w1_count_mismatch": bool((r.get("w1") or {}).get("count_mismatch"))}


def summarize(runs, servers):
    summ = {}
    for s in servers:
        ok = [r for r in runs if r["server"] == s and "r1" in r and "error" not in r]
        if not ok:
            continue
        ms = [metrics_of(r) for r in ok]
        cs = [checks_of(r) for r in ok]
        v = {"iterations": len(ok), "medians": {k: S.med([m[k] for m in ms]) for k, *_ in METRICS},
             "each": {k: [m[k] for m in ms] for k, *_ in METRICS},
             "store_bytes": S.med([r["master_store"]["bytes"] for r in ok]),
             "store_messages": S.med([r["master_store"]["messages"] for r in ok]),
             "store_mailboxes": S.med([r["master_store"]["mailboxes"] for r in ok]),
             "verify_ok": sum(c["verify_ok"] for c in cs), "verify_total": sum(c["verify_total"] for c in cs),
             "mismatches": sum(c["mismatches"] for c in cs),
             "first_mismatches": next((c["first_mismatches"] for c in cs if c["first_mismatches"]), None),
             "own_verify_ok": sum(c["own_verify_ok"] for c in cs),
             "own_verify_total": sum(c["own_verify_total"] for c in cs),
             "failed_cmds": sorted({x for c in cs for x in c["failed_cmds"]}),
             "r3_timeouts": sum(c["r3_timeouts"] for c in cs), "r3_wrong": sum(c["r3_wrong"] for c in cs),
             "w1_count_mismatch_runs": sum(1 for c in cs if c["w1_count_mismatch"]),
             "w1_msgs_per_s": S.med([r["w1"]["msgs_per_s"] for r in ok])}
        if s == "tern":
            v["tern_sync_stdout"] = ok[-1].get("tern_sync_stdout")
        summ[s] = v
    t = summ.get("tern")
    for s, v in summ.items():
        v["ratio_vs_tern"] = {}
        for k, _, _, ratio in METRICS:
            tv, ov = (t or {}).get("medians", {}).get(k), v["medians"].get(k)
            v["ratio_vs_tern"][k] = round(ov / tv, 3) if ratio and tv and ov is not None else None
    return summ


def render(summ, a, corpus, skipped, failed):
    cols = [s for s in a.server_list if s in summ]
    if not cols:
        return "\n".join(["no server produced results"] + [f"{s}: SKIPPED: {w}" for s, w in skipped.items()]
                         + [f"{s}: FAILED: {w}" for s, w in failed.items()])
    others = [s for s in cols if s != "tern"] if "tern" in summ else []
    lines = [f"Replication R1/R2/no-op/R3: corpus {corpus['messages']:,} msgs / {corpus['bytes'] / 1e6:.1f} MB "
             f"({corpus['dir']}), seed {a.seed}, median of {a.iterations} iteration(s)", ""]
    hdr = ["figure"] + cols + [f"{s}÷tern" for s in others]
    rows = []
    for k, label, nd, ratio in METRICS:
        row = [label] + [S.fmt(summ[s]["medians"].get(k), nd) for s in cols]
        row += [(S.fmt(summ[s]["ratio_vs_tern"].get(k), 2) + "×") if summ[s]["ratio_vs_tern"].get(k) is not None
                else "-" for s in others]
        rows.append(row)
    store = ["mail store on master (RFC822.SIZE sum), msgs / mailboxes"] + \
        [f"{summ[s]['store_bytes']:,.0f} B, {summ[s]['store_messages']:,.0f} / {summ[s]['store_mailboxes']:.0f}"
         for s in cols] + ["" for _ in others]
    ver = ["verify: ok / total (IMAP compare after R1, R2, no-op, R3)"] + \
        [f"{summ[s]['verify_ok']}/{summ[s]['verify_total']}, {summ[s]['mismatches']} mismatches" for s in cols] + \
        ["" for _ in others]
    rows += [store, ver]
    if "tern" in cols:
        rows.append(["tern sync --verify ok / total (after no-op, after R3)"] +
                    [f"{summ[s]['own_verify_ok']}/{summ[s]['own_verify_total']}" if s == "tern" else "-" for s in cols] +
                    ["" for _ in others])
    rows.append(["sync command failures / R3 timeouts / wrong msg"] +
                [f"{','.join(summ[s]['failed_cmds']) or 'none'} / {summ[s]['r3_timeouts']} / {summ[s]['r3_wrong']}"
                 for s in cols] + ["" for _ in others])
    w = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) + " |"
    lines += [line(hdr), "|" + "|".join("-" * (x + 2) if i == 0 else "-" * (x + 1) + ":" for i, x in enumerate(w)) + "|"]
    lines += [line(r) for r in rows]
    lines += ["", "X÷tern = the other server's median ÷ tern's (>1: tern takes less time / fewer bytes / fewer "
              "round trips). Round trips = direction turns ÷ 2 on the replication connection(s), counted by "
              "tcpcount.py; c2s = replication client (master side) → replica.",
              "R2 metadata bytes = R2 total bytes − the 100 new messages' bytes as generated (before the "
              "delivering server adds its own headers, which therefore count as metadata).",
              f"Cyrus: sync_client, replication stream {'DEFLATE-compressed (--cyrus-compress)' if a.cyrus_compress else 'uncompressed (COMPRESS offer stripped by the proxy)'}. "
              f"Dovecot: {'stateless' if a.dovecot_stateless else 'stateful (-s STATE)'} doveadm sync for R1/R2/no-op; "
              "R3 by Dovecot's replicator (one dsync per delivery)."]
    for s, v in summ.items():
        if v["first_mismatches"]:
            lines.append(f"{s}: VERIFY MISMATCH, first: {v['first_mismatches'][:5]}")
        if v["w1_count_mismatch_runs"]:
            lines.append(f"{s}: corpus delivery count mismatch in {v['w1_count_mismatch_runs']} run(s)")
        if v.get("tern_sync_stdout"):
            lines.append(f"{s}: tern sync stdout (last iteration): {v['tern_sync_stdout']}")
    for s, why in skipped.items():
        lines.append(f"{s}: SKIPPED: {why}")
    for s, why in failed.items():
        lines.append(f"{s}: FAILED: {why}")
    return "\n".join(lines)


def versions():
    out = {}
    p = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", "cyrus-imapd", "dovecot-core"],
                       capture_output=True, text=True)
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="corpus dir, generated with corpus.py when it has no manifest.tsv; "
                    "default WORKDIR/corpus (N=10,000) or WORKDIR/corpus-n<N>")
    ap.add_argument("--n", type=int, help="corpus messages when generating (default 10000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--servers", default="tern,dovecot,cyrus")
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--latency-samples", type=int, default=20, help="R3 samples (plus 1 warm-up)")
    ap.add_argument("--latency-timeout", type=float, default=30,
                    help="R3: seconds to wait for one delivery to show up on the replica")
    ap.add_argument("--tern-bin", default="target/release/tern",
                    help="relative paths are tried from the cwd, then from the repo root")
    ap.add_argument("--tern-ports", default="14411,14412,14421,14422,14423,14430",
                    help="master imap,lmtp; replica imap,lmtp,sync; proxy (all 127.0.0.1)")
    ap.add_argument("--cyrus-compress", action="store_true",
                    help="keep Cyrus's DEFLATE replication stream (default: stripped, raw bytes)")
    ap.add_argument("--dovecot-stateless", action="store_true", help="doveadm sync without -s STATE")
    ap.add_argument("--concurrency", type=int, default=4, help="LMTP connections for the corpus delivery")
    ap.add_argument("--shared-bench", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))
    ap.add_argument("--workdir", default="/tmp/repl-bench")
    ap.add_argument("--quiet-wait", type=float, default=120,
                    help="before each run wait up to this many seconds for load < --quiet-load (0: don't)")
    ap.add_argument("--quiet-load", type=float, default=1.5)
    ap.add_argument("--settle", type=float, default=0,
                    help="seconds to wait before each server's run, after the previous one's data "
                         "was deleted (e.g. 70; see README)")
    ap.add_argument("--timeout", type=float, default=3600, help="per workload.py / replication.py run, seconds")
    ap.add_argument("--keep", action="store_true", help="keep server data after each run")
    ap.add_argument("--json-out", help="default WORKDIR/results/<stamp>-repl/summary.json")
    ap.add_argument("--md-out", help="default next to the JSON: summary.md")
    a = ap.parse_args()
    a.n_given = a.n is not None
    a.n = a.n or 10000
    a.server_list = [s.strip() for s in a.servers.split(",") if s.strip()]
    bad = [s for s in a.server_list if s not in PAIRS]
    if bad:
        ap.error(f"unknown server(s) {bad}; choose from {','.join(PAIRS)}")
    a.tern_ports = [int(x) for x in a.tern_ports.split(",")]
    if len(a.tern_ports) != 6:
        ap.error("--tern-ports needs 6 ports")
    a.workdir = os.path.abspath(a.workdir)
    a.corpus = os.path.abspath(a.corpus or os.path.join(a.workdir, "corpus" if a.n == 10000 else f"corpus-n{a.n}"))
    for f in ("workload.py", "corpus.py", "replication.py", "tcpcount.py", "dovecot_up.sh", "cyrus_up.sh"):
        if not os.path.exists(os.path.join(a.shared_bench, f)):
            sys.exit(f"{f} not found in {a.shared_bench} (--shared-bench)")
    os.makedirs(a.workdir, exist_ok=True)
    a.t_start = time.time()
    a.tern_binary = S.tern_binary_info(a) if "tern" in a.server_list else None
    corpus = S.ensure_corpus(a)
    rdir = os.path.join(a.workdir, "results", time.strftime("%Y%m%d-%H%M%S") + "-repl")
    os.makedirs(rdir, exist_ok=True)
    S.log(f"corpus {corpus['messages']} msgs, {corpus['bytes'] / 1e6:.1f} MB; results in {rdir}")

    runs, skipped, failed = S.iterate(a, lambda s, k: run_one(a, rdir, s, k))
    summ = summarize(runs, a.server_list)
    out = {"corpus": corpus, "iterations": a.iterations, "servers": a.server_list, "seed": a.seed,
           "params": {"cyrus_compress": a.cyrus_compress, "dovecot_stateless": a.dovecot_stateless,
                      "latency_samples": a.latency_samples, "tern_ports": a.tern_ports},
           "versions": versions(), "tern_binary": a.tern_binary, "summary": summ, "skipped": skipped,
           "failed": failed, "runs": runs, "total_wall_s": round(time.time() - a.t_start, 1)}
    S.check_binary_unchanged(a, out)
    jpath = a.json_out or os.path.join(rdir, "summary.json")
    mpath = a.md_out or os.path.join(os.path.dirname(os.path.abspath(jpath)), "summary.md")
    with open(jpath, "w") as f:
        json.dump(out, f, indent=1)
    md = render(summ, a, corpus, skipped, failed)
    with open(mpath, "w") as f:
        f.write(md + "\n")
    print("\n" + md)
    print(f"\nraw results: {jpath}, table: {mpath}  (total {out['total_wall_s']} s)")
    if failed or not summ:
        return 1
    bad = any(v["mismatches"] or v["failed_cmds"] or v["r3_timeouts"] or v["r3_wrong"]
              or v["own_verify_ok"] < v["own_verify_total"] or v["w1_count_mismatch_runs"] for v in summ.values())
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
