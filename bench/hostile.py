#!/usr/bin/env python3
"""Hostile-client load test for tern (issue 8, "Proof"): floods one after another against a
fresh `tern serve` on loopback, while a probe samples the server's memory and open files
and a legitimate client checks that it is still served.  See bench/README.md.

    python3 bench/hostile.py [--tern target/release/tern] [--seconds 20] [--json-out F]

Builds nothing.  Stdlib only (Python 3.11).  The floods live in hostile_floods.py.
"""
import argparse
import imaplib
import json
import os
import re
import resource
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import hostile_floods as hf

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ATTACKED, ATTACKED_PW = "alice", "alice-secret"  # holds the 16 MB message; its password is guessed
LEGIT, LEGIT_PW = "bob", "bob-secret"  # the legitimate client; its INBOX gets the probe deliveries
RSS_AIM_MB, LATENCY_AIM_S, PROBE_TIMEOUT_S = 512, 1.0, 5.0
# Top-level keys only (an inline [listen] table), so --extra-config may hold top-level
# keys as well as tables.
CONFIG_TEMPLATE = """data_dir = "{data_dir}"
listen = {{ imap = "127.0.0.1:{imap}", lmtp = "127.0.0.1:{lmtp}", sync = "127.0.0.1:{sync}" }}
"""
FLOODS = ("imap-literal", "imap-literal-plus", "sync-literal-256M", "sync-literal-4x64M",
          "passwords", "idle", "slowloris", "data-churn", "append-churn", "huge-fetch")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# the server
class Server:
    """One data dir and config for the whole run; a fresh `tern serve` process per flood."""

    def __init__(self, a, base):
        self.a, self.base = a, base
        self.ports = {"imap": free_port(), "lmtp": free_port(), "sync": free_port()}
        self.conf = os.path.join(base, "tern.toml")
        template = open(a.config_template).read() if a.config_template else CONFIG_TEMPLATE
        text = template.format(data_dir=os.path.join(base, "data"), **self.ports)
        if a.extra_config:
            text += "\n" + open(a.extra_config).read()
        with open(self.conf, "w") as f:
            f.write(text)
        self.proc = None
        self.starts = 0

    def admin(self, *args, stdin=None):
        p = subprocess.run([self.a.tern, "--config", self.conf, "admin", *args], input=stdin,
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"tern admin {' '.join(args)}: {p.stderr.strip()[-500:]}")

    def _limits(self):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if self.a.server_nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(self.a.server_nofile, hard), hard))
        if self.a.server_as_mb:
            lim = self.a.server_as_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    def start(self):
        self.starts += 1
        self.logf = os.path.join(self.base, f"serve-{self.starts}.log")
        with open(self.logf, "wb") as out:
            self.proc = subprocess.Popen([self.a.tern, "--config", self.conf, "serve"], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, preexec_fn=self._limits,
                                         start_new_session=True, env={**os.environ, "NO_COLOR": "1"})
        t0 = time.monotonic()
        while b"tern ready" not in open(self.logf, "rb").read():
            if self.proc.poll() is not None or time.monotonic() - t0 > 60:
                raise RuntimeError(f"tern serve did not become ready; log:\n{self.log_tail()}")
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                log("tern did not stop within 10 s of SIGTERM; killing it")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, n=1500):
        try:
            return open(self.logf, "rb").read()[-n:].decode(errors="replace")
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------
# the legitimate client
def legit_imap(port, user=LEGIT, password=LEGIT_PW, limit=PROBE_TIMEOUT_S):
    """LOGIN + SELECT INBOX + FETCH 1 BODY.PEEK[HEADER] within `limit` s in all.
    -> (ok, seconds, error text or None)"""
    t0 = time.monotonic()
    left = lambda: max(0.05, limit - (time.monotonic() - t0))
    m = None
    try:
        m = imaplib.IMAP4("127.0.0.1", port, timeout=limit)
        m.sock.settimeout(left())
        m.login(user, password)
        m.sock.settimeout(left())
        if m.select("INBOX")[0] != "OK":
            raise imaplib.IMAP4.error("SELECT refused")
        m.sock.settimeout(left())
        if m.fetch("1", "(BODY.PEEK[HEADER])")[0] != "OK":
            raise imaplib.IMAP4.error("FETCH refused")
        dt = time.monotonic() - t0
        return dt <= limit, dt, None if dt <= limit else "over the time limit"
    except (OSError, EOFError, imaplib.IMAP4.error) as e:
        return False, time.monotonic() - t0, f"{type(e).__name__}: {e}"[:120]
    finally:
        if m is not None:
            try:
                m.shutdown()
            except OSError:
                pass


def deliver(port, rcpt, message_id, body="hello\r\n", timeout=PROBE_TIMEOUT_S):
    """One LMTP delivery; True only when the server acknowledged it (250)."""
    msg = (f"From: probe@example.org\r\nTo: {rcpt}\r\nSubject: probe {message_id}\r\n"
           f"Message-ID: {message_id}\r\n\r\n{body}")
    c = None
    try:
        c = smtplib.LMTP("127.0.0.1", port, timeout=timeout)
        c.sendmail("probe@example.org", [rcpt], msg.encode())
        return True
    except (OSError, smtplib.SMTPException):
        return False
    finally:
        if c is not None:
            try:
                c.quit()
            except (OSError, smtplib.SMTPException):
                c.close()


def mailbox_message_ids(port, user, password):
    """Every Message-ID in user's INBOX (a set), read over IMAP."""
    m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    try:
        m.login(user, password)
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found = set()
        for item in data if typ == "OK" else []:
            if isinstance(item, tuple):
                found.update(re.findall(rb"<[^>\s]+>", item[1]))
        return {x.decode() for x in found}
    finally:
        m.logout()


# ---------------------------------------------------------------------------------------
# what runs beside every flood
class Monitor:
    """/proc samples every 250 ms; every second a legitimate IMAP session and an LMTP
    delivery, each on its own thread (so a hung probe does not delay the next one; each
    gives up after PROBE_TIMEOUT_S).  Acknowledged Message-IDs go into `acked`."""

    def __init__(self, server, acked, tag):
        self.server, self.acked, self.tag = server, acked, tag
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()
        self.samples, self.imap, self.lmtp, self.probes = [], [], [], []
        self.died_at = None
        self.cpu_s = None  # user + system CPU seconds of tern at the last sample
        self.ticker = threading.Thread(target=self._run, daemon=True)
        self.ticker.start()

    def _run(self):
        k = 0
        while not self.stop_ev.is_set():
            if k % 4 == 0:
                for fn in (self._imap, self._lmtp):
                    t = threading.Thread(target=fn, args=(k // 4,), daemon=True)
                    t.start()
                    self.probes.append(t)
            self._sample()
            k += 1
            self.stop_ev.wait(max(0.0, self.t0 + k * 0.25 - time.monotonic()))

    def _sample(self):
        if self.died_at is not None:
            return
        pid = self.server.proc.pid
        try:
            status = open(f"/proc/{pid}/status").read()
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            self.cpu_s = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            kb = lambda k: int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1))
            self.samples.append((round(time.monotonic() - self.t0, 2), kb("VmRSS") // 1024,
                                 kb("VmHWM") // 1024, fds))
        except (OSError, AttributeError, IndexError, ValueError):
            pass
        if not self.server.alive():
            self.died_at = round(time.monotonic() - self.t0, 1)

    def _imap(self, k):
        t = round(time.monotonic() - self.t0, 2)
        ok, dt, err = legit_imap(self.server.ports["imap"])
        self.imap.append((t, ok, round(dt, 4), err))

    def _lmtp(self, k):
        mid = f"<hostile-{self.tag}-{k}-{time.time_ns()}@bench.example>"
        ok = deliver(self.server.ports["lmtp"], f"{LEGIT}@localhost", mid)
        self.lmtp.append(ok)
        if ok:
            self.acked.add(mid)

    def stop(self):
        self.stop_ev.set()
        self.ticker.join(5)
        for t in self.probes:
            t.join(PROBE_TIMEOUT_S * 3)


# ---------------------------------------------------------------------------------------
# one flood
def run_flood(a, server, name, acked):
    if server.alive():
        server.stop()
    server.start()  # fresh process: VmHWM is this flood's peak
    log(f"flood {name}: {a.seconds:.0f} s (tern pid {server.proc.pid})")
    f = hf.Flood(a, server.ports, a.seconds)
    load = float(open("/proc/loadavg").read().split()[0])
    mon = Monitor(server, acked, name)
    try:
        {"imap-literal": lambda: hf.imap_literal(f, nonsync=False),
         "imap-literal-plus": lambda: hf.imap_literal(f, nonsync=True),
         "sync-literal-256M": lambda: hf.sync_literal(f, chained=False),
         "sync-literal-4x64M": lambda: hf.sync_literal(f, chained=True),
         "passwords": lambda: hf.passwords(f, ATTACKED),
         "idle": lambda: hf.idle(f),
         "slowloris": lambda: hf.slowloris(f, f"{LEGIT}@localhost"),
         "data-churn": lambda: hf.data_churn(f, f"{LEGIT}@localhost"),
         "append-churn": lambda: hf.append_churn(f, ATTACKED, ATTACKED_PW),
         "huge-fetch": lambda: hf.huge_fetch(f, ATTACKED, ATTACKED_PW)}[name]()
    finally:
        mon.stop()
    # survived: still running, and a fresh legitimate session is served once the attack is gone
    answering = False
    for _ in range(3):
        if not server.alive():
            break
        answering = legit_imap(server.ports["imap"])[0]
        if answering:
            break
        time.sleep(2)
    if server.alive():
        state = "yes" if answering else "alive, not answering"
    else:
        rc = server.proc.returncode
        how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        state = f"died at {mon.died_at} s ({how})" if mon.died_at is not None else f"died ({how})"
        log(f"tern died during {name} (rc {server.proc.returncode}); log tail:\n{server.log_tail(600)}")
    return summarize(name, f, mon, state, load)


def pct(vals, q):
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(q * len(vals)))] if vals else None


def summarize(name, f, mon, state, load):
    lat = [dt for _, ok, dt, _ in mon.imap if ok]
    errors = sorted({e for _, ok, _, e in mon.imap if not ok})
    r = {"flood": name, "loadavg1_at_start": load,
         "peak_rss_mb": max([s[1] for s in mon.samples] + [s[2] for s in mon.samples[-1:]], default=None),
         "peak_open_files": max([s[3] for s in mon.samples], default=None),
         "server_cpu_s": None if mon.cpu_s is None else round(mon.cpu_s, 1),
         "imap_probes": len(mon.imap), "imap_failures": len(mon.imap) - len(lat),
         "imap_over_1s": sum(1 for dt in lat if dt > LATENCY_AIM_S),
         "imap_p50_ms": None if not lat else round(statistics.median(lat) * 1000, 1),
         "imap_max_ms": None if not lat else round(max(lat) * 1000, 1),
         "imap_errors": errors[:5],
         "lmtp_probes": len(mon.lmtp), "lmtp_failures": mon.lmtp.count(False),
         "survived": state, "attack": dict(f.stats), "samples": mon.samples}
    for k, v in f.samples.items():
        r["attack"][k + "_p50"] = round(statistics.median(v), 4)
        r["attack"][k + "_p90"] = round(pct(v, 0.9), 4)
    return r


def fmt(v, nd=0):
    return "-" if v is None else f"{v:,.{nd}f}"


def print_table(hdr, rows, right=True):
    """Markdown table; the first column left-aligned, the others right-aligned when `right`."""
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    for r in [hdr, ["-" * x for x in w]] + rows:
        print("| " + " | ".join(str(c).rjust(w[i]) if i and right else str(c).ljust(w[i])
                               for i, c in enumerate(r)) + " |")


def print_flood(r):
    print(f"\n### {r['flood']}  (load {r['loadavg1_at_start']})")
    print_table(["figure", "value"], [
        ["peak RSS MB", fmt(r["peak_rss_mb"])],
        ["peak open files", fmt(r["peak_open_files"])],
        ["tern CPU s (startup included)", fmt(r["server_cpu_s"], 1)],
        ["legit IMAP p50 / max ms", f"{fmt(r['imap_p50_ms'], 1)} / {fmt(r['imap_max_ms'], 1)}"],
        ["legit IMAP failed / over 1 s / probes", f"{r['imap_failures']} / {r['imap_over_1s']} / {r['imap_probes']}"],
        ["legit LMTP failed / probes", f"{r['lmtp_failures']} / {r['lmtp_probes']}"],
        ["survived", r["survived"]],
        ["attack", ", ".join(f"{k}={v}" for k, v in sorted(r["attack"].items()))],
    ] + ([["IMAP errors seen", "; ".join(r["imap_errors"])]] if r["imap_errors"] else []), right=False)
    sys.stdout.flush()


def verdict(results, lost):
    why = []
    for r in results:
        n = r["flood"]
        if r["peak_rss_mb"] is None or r["peak_rss_mb"] >= RSS_AIM_MB:
            why.append(f"{n}: peak RSS {fmt(r['peak_rss_mb'])} MB")
        if r["imap_failures"] or r["imap_over_1s"]:
            why.append(f"{n}: legit IMAP {r['imap_failures']} failed, {r['imap_over_1s']} over 1 s")
        if r["survived"] != "yes":
            why.append(f"{n}: survived = {r['survived']}")
    if lost:
        why.append(f"{len(lost)} acknowledged message(s) missing")
    return why


# ---------------------------------------------------------------------------------------
def setup_mail(server):
    """alice: the 16 MB message first (it is message 1 for the FETCH flood), then 3 small;
    bob: 3 small.  -> Message-IDs acknowledged for bob."""
    line = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2)[:76] + "\r\n"
    big = line * ((16 << 20) // len(line))
    if not deliver(server.ports["lmtp"], f"{ATTACKED}@localhost", "<big-1@bench.example>", big, timeout=120):
        raise RuntimeError("the 16 MB setup delivery was not acknowledged")
    acked = set()
    for k in range(3):
        deliver(server.ports["lmtp"], f"{ATTACKED}@localhost", f"<setup-a{k}@bench.example>")
        mid = f"<setup-b{k}@bench.example>"
        if deliver(server.ports["lmtp"], f"{LEGIT}@localhost", mid):
            acked.add(mid)
    return acked


def _interrupted(*_):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tern", default=os.path.join(REPO, "target", "release", "tern"))
    ap.add_argument("--seconds", type=float, default=20, help="per flood")
    ap.add_argument("--connections", type=int, default=50, help="attacking connections per flood")
    ap.add_argument("--idle-connections", type=int, default=5000, help="per port, idle flood")
    ap.add_argument("--slow-connections", type=int, default=500, help="per port, slowloris")
    ap.add_argument("--slow-interval", type=float, default=3, help="seconds between slowloris bytes")
    ap.add_argument("--data-stall-mb", type=int, default=16, help="body MiB a stalled LMTP DATA sends")
    ap.add_argument("--fetch-clients", type=int, default=4, help="huge-fetch clients (half each kind)")
    ap.add_argument("--attack-ips", type=int, default=16, help="attackers connect from 127.0.1.1..N")
    ap.add_argument("--floods", default=",".join(FLOODS), help="comma list, in this order")
    ap.add_argument("--server-nofile", type=int, default=1024,
                    help="soft open-file limit tern starts with (a common default; 0: inherit)")
    ap.add_argument("--server-as-mb", type=int, default=8192,
                    help="address-space limit for tern, so a flood cannot take the machine's memory "
                         "(the allocator aborts instead; 0: none)")
    ap.add_argument("--config-template", help="config with {data_dir} {imap} {lmtp} {sync} placeholders")
    ap.add_argument("--extra-config", help="appended to the config file")
    ap.add_argument("--json-out")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, config, logs)")
    a = ap.parse_args()
    floods = [x.strip() for x in a.floods.split(",") if x.strip()]
    if any(x not in FLOODS for x in floods):
        ap.error(f"--floods: choose from {','.join(FLOODS)}")
    if not os.access(a.tern, os.X_OK):
        sys.exit(f"{a.tern}: not an executable (build it first: cargo build --release)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = 3 * a.idle_connections + 3 * a.slow_connections + 200
    if need > hard and "idle" in floods:
        a.idle_connections = max(1, (hard - 3 * a.slow_connections - 200) // 3)
        log(f"open-file hard limit {hard}: idle flood capped at {a.idle_connections} per port")
    signal.signal(signal.SIGTERM, _interrupted)

    base = tempfile.mkdtemp(prefix="tern-hostile-")
    server = Server(a, base)
    results, lost, rc = [], [], 1
    try:
        server.admin("user", "add", ATTACKED, "--password-stdin", stdin=ATTACKED_PW + "\n")
        server.admin("user", "add", LEGIT, "--password-stdin", stdin=LEGIT_PW + "\n")
        server.start()
        acked = setup_mail(server)
        log(f"tern {a.tern}, ports {server.ports}, data in {base}")
        for name in floods:
            r = run_flood(a, server, name, acked)
            results.append(r)
            print_flood(r)
        if not server.alive():
            server.start()
        found = mailbox_message_ids(server.ports["imap"], LEGIT, LEGIT_PW)
        lost = sorted(acked - found)
        print("\n### all floods\n")
        print_table(["flood", "peak RSS MB", "peak files", "CPU s", "IMAP p50 ms", "IMAP max ms", "IMAP failed",
                     "IMAP > 1 s", "LMTP failed", "survived"],
                    [[r["flood"], fmt(r["peak_rss_mb"]), fmt(r["peak_open_files"]),
                      fmt(r["server_cpu_s"], 1), fmt(r["imap_p50_ms"], 1),
                      fmt(r["imap_max_ms"], 1), f"{r['imap_failures']}/{r['imap_probes']}", r["imap_over_1s"],
                      f"{r['lmtp_failures']}/{r['lmtp_probes']}", r["survived"]] for r in results])
        print(f"\nacknowledged by LMTP: {len(acked)}; in the mailbox: {len(acked) - len(lost)}; lost: {len(lost)}")
        why = verdict(results, lost)
        ran = f"{len(results)} of {len(FLOODS)} floods"
        print(f"VERDICT ({ran}): " + ("PASS (peak RSS < 512 MB, legit client within 1 s, survived, nothing lost)"
                                      if not why else "FAIL: " + "; ".join(why)))
        rc = 0 if not why else 2
        if a.json_out:
            with open(a.json_out, "w") as fo:
                json.dump({"args": vars(a), "tern_mtime": os.stat(a.tern).st_mtime, "results": results,
                           "acked": len(acked), "lost": lost, "verdict_failures": why}, fo, indent=1)
    except KeyboardInterrupt:
        log("interrupted: stopping tern")
        rc = 130
    finally:
        server.stop()
        if a.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
