#!/usr/bin/env python3
"""POP3 and NNTP beside Cyrus 3.6 (pop3d, nntpd) and Dovecot 2.3 (pop3) in one run,
and the memory an idle POP3 or NNTP connection costs tern.

    python3 bench/pop3_nntp_compare.py [--iterations 3] [--messages 300] [--articles 10000]
        [--tern-bin target/release/tern] [--shared ../shared] [--skip cyrus,dovecot]

Each server gets the same corpus (`../shared/bench/corpus.py`, seed 42) over LMTP:
`--messages` into the bench user's INBOX (POP3), `--articles` into one newsgroup
(NNTP: tern's `news/bench.test`, created with `tern admin newsgroup`; Cyrus's shared
folder `news/rust`, the group `news.rust`, made by `cyrus_up.sh`). Then, per
iteration and server:

- POP3: login, STAT, UIDL, RETR of 200 messages one command at a time, the same 200
  pipelined (RFC 2449), with poplib; the 200 one at a time over a bare socket
  (`retr200_raw_s`); and both again with `pop3_retr_client.rs`, compiled here with
  `rustc -O` (`retr200_client_s`, `retr200_client_pipelined_s`: the median of 5 rounds,
  the server's share, since Python's own parsing costs about as much as the servers'
  work), beside 200 NOOPs one at a time (`noop200_client_s`: the round trip that no
  server can go below); times in seconds;
- NNTP (tern and Cyrus; Dovecot has no NNTP): GROUP, OVER of every article, ARTICLE by
  Message-ID of 200 articles, authenticated as bench (Cyrus's anonymous LIST crashes,
  see results-cyrus.md).

Medians are printed as one JSON object with the ratios anchor/tern (above 1: tern is
faster). The memory figure: N idle connections each past the greeting (POP3: logged
in), the tern process's RSS before and after, divided by N.
"""
import argparse
import json
import os
import poplib
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

HERE = Path(__file__).resolve().parent
PORTS = {"pop3": 14702, "lmtp": 14703, "nntp": 14704, "imap": 14701}
ANCHORS = {
    "cyrus": {"pop3": 14302, "lmtp": 14303, "nntp": 14304, "group": "news.rust",
              "inbox_rcpt": "bench@localhost", "group_rcpt": "+news/rust@localhost"},
    "dovecot": {"pop3": 15310, "lmtp": 15324, "inbox_rcpt": "bench@localhost"},
}


def manifest(corpus):
    rows = []
    with open(os.path.join(corpus, "manifest.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    return rows


def deliver(port, rcpt, files, corpus):
    lm = smtplib.LMTP("127.0.0.1", port, timeout=300)
    for name in files:
        with open(os.path.join(corpus, name), "rb") as f:
            refused = lm.sendmail("corpus@bench.test", [rcpt], f.read())
        if refused:
            raise RuntimeError(f"LMTP refused {rcpt}: {refused}")
    lm.quit()


def pop3_round(port):
    res = {}
    t = time.perf_counter()
    p = poplib.POP3("127.0.0.1", port, timeout=120)
    p.user("bench")
    p.pass_("secret")
    res["login_s"] = time.perf_counter() - t
    t = time.perf_counter()
    count, _ = p.stat()
    res["stat_s"] = time.perf_counter() - t
    t = time.perf_counter()
    p.uidl()
    res["uidl_s"] = time.perf_counter() - t
    n = min(200, count)
    t = time.perf_counter()
    for i in range(1, n + 1):
        p.retr(i)
    res["retr200_s"] = time.perf_counter() - t
    t = time.perf_counter()
    p.sock.sendall(b"".join(b"RETR %d\r\n" % i for i in range(1, n + 1)))
    got = 0
    for _ in range(n):
        _, _, octets = p._getlongresp()
        got += octets
    res["retr200_pipelined_s"] = time.perf_counter() - t
    res["retr200_bytes"] = got
    p.quit()
    res["retr200_raw_s"] = raw_retr(port, n)
    if CLIENT:
        rounds = json.loads(subprocess.run(
            [CLIENT, f"127.0.0.1:{port}", "bench", "secret", str(n), "5"],
            check=True, capture_output=True, text=True, preexec_fn=pin_client).stdout)
        res["noop200_client_s"] = statistics.median(r["noop"] for r in rounds)
        res["retr200_client_s"] = statistics.median(r["seq"] for r in rounds)
        res["retr200_client_pipelined_s"] = statistics.median(r["pipe"] for r in rounds)
    return res


# The compiled RETR client (`pop3_retr_client.rs`), when rustc is at hand.
CLIENT = None

# CPUs for the servers (and every process they start) and for the compiled client,
# from --pin; None: wherever the scheduler puts them.
PIN = {"server": None, "client": None}


def pin_server():
    if PIN["server"] is not None:
        os.sched_setaffinity(0, PIN["server"])


def pin_client():
    if PIN["client"] is not None:
        os.sched_setaffinity(0, PIN["client"])


def build_client():
    """Compiles bench/pop3_retr_client.rs with `rustc -O`; None without rustc."""
    out = os.path.join(tempfile.mkdtemp(prefix="pop3-client-"), "pop3_retr_client")
    try:
        subprocess.run(["rustc", "-O", "--edition", "2021", "-o", out,
                        str(HERE / "pop3_retr_client.rs")], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out


def raw_retr(port, n):
    """RETR 1..n one at a time over a bare socket, each answer found by its final
    `.` line without parsing it: the server's share of a sequential download, without
    poplib's line-by-line parsing (which costs about as much as the server's work)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    buf = b""

    def answer(end):
        nonlocal buf
        while True:
            i = buf.find(end)
            if i >= 0:
                buf = buf[i + len(end):]
                return
            chunk = s.recv(1 << 16)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk

    answer(b"\r\n")
    s.sendall(b"USER bench\r\n")
    answer(b"\r\n")
    s.sendall(b"PASS secret\r\n")
    answer(b"\r\n")
    t = time.perf_counter()
    for i in range(1, n + 1):
        s.sendall(b"RETR %d\r\n" % i)
        answer(b"\r\n.\r\n")
    el = time.perf_counter() - t
    s.sendall(b"QUIT\r\n")
    s.close()
    return el


def nntp_round(port, group, ids):
    res = {}
    n = nntplib.NNTP("127.0.0.1", port, readermode=True, timeout=300)
    n.login("bench", "secret", usenetrc=False)
    t = time.perf_counter()
    _, count, first, last, _ = n.group(group)
    res["group_s"] = time.perf_counter() - t
    res["articles"] = count
    t = time.perf_counter()
    _, over = n.over((first, last))
    res["over_all_s"] = time.perf_counter() - t
    res["over_lines"] = len(over)
    found = 0
    t = time.perf_counter()
    for mid in ids:
        try:
            n.article(mid)
            found += 1
        except nntplib.NNTPTemporaryError:
            pass
    res["article_by_id_s"] = time.perf_counter() - t
    res["article_by_id_found"] = found
    n.quit()
    return res


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_idle(pid, limit=300):
    """Waits until the process uses under 5% of a CPU for a second: tern indexes the
    text of what was just delivered in the background, and measuring while it does
    would compare it busy with anchors that did that work at delivery. Returns the
    seconds waited."""
    hz = os.sysconf("SC_CLK_TCK")
    t = time.perf_counter()
    while time.perf_counter() - t < limit:
        before = cpu_ticks(pid)
        time.sleep(1)
        if cpu_ticks(pid) - before < 0.05 * hz:
            break
    return round(time.perf_counter() - t, 1)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_memory(pid, port, n, login_pop3):
    """RSS growth of `pid` per idle connection: n connections past the greeting (and,
    for POP3, logged in, holding the maildrop's snapshot)."""
    time.sleep(1)
    before = rss_kib(pid)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.recv(512)
        if login_pop3:
            # Each its own user would need n users; USER alone is the state a client
            # waiting for its password is in.
            s.sendall(b"USER bench%d\r\n" % i)
            s.recv(512)
        socks.append(s)
    time.sleep(2)
    after = rss_kib(pid)
    for s in socks:
        s.close()
    return round((after - before) / n, 2)


def start_tern(binary, root):
    data = os.path.join(root, "data")
    cfg = os.path.join(root, "tern.toml")
    with open(cfg, "w") as f:
        f.write(f'data_dir = "{data}"\n[listen]\n'
                + "".join(f'{k} = "127.0.0.1:{v}"\n' for k, v in PORTS.items())
                # Every idle connection comes from 127.0.0.1: no per-address limit.
                + "[pop3]\nmax_connections = 10000\nmax_connections_per_ip = 0\n"
                + "[nntp]\nmax_connections = 10000\nmax_connections_per_ip = 0\n"
                + "[imap]\nmax_connections_per_ip = 0\n")
    subprocess.run([binary, "--config", cfg, "admin", "user", "add", "bench", "--password-stdin"],
                   input=b"secret\n", check=True, capture_output=True)
    subprocess.run([binary, "--config", cfg, "admin", "newsgroup", "create", "bench.test",
                    "--post-by", "authenticated"], check=True, capture_output=True)
    log = os.path.join(root, "tern.log")
    proc = subprocess.Popen([binary, "--config", cfg, "serve"], stderr=open(log, "w"),
                            preexec_fn=pin_server)
    deadline = time.time() + 60
    while "tern ready" not in open(log).read():
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError(f"tern did not start: {open(log).read()[-2000:]}")
        time.sleep(0.1)
    return proc


def median(rounds, key):
    vals = [r[key] for r in rounds if key in r]
    return round(statistics.median(vals), 4) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--articles", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--tern-bin", default=str(HERE.parent / "target" / "release" / "tern"))
    ap.add_argument("--shared", default=str(HERE.parent.parent / "shared"))
    ap.add_argument("--corpus", default=os.path.join(tempfile.gettempdir(), "bench-corpus"))
    ap.add_argument("--skip", default="")
    ap.add_argument("--pin", choices=["none", "same", "split"], default="none",
                    help="same: servers and the compiled client on CPU 0; split: servers on "
                         "CPU 1, client on CPU 0 (on a VM, a wake-up across vCPUs costs tens "
                         "of microseconds, so an unpinned one-at-a-time run is bimodal)")
    a = ap.parse_args()
    if a.pin == "same":
        PIN.update(server={0}, client={0})
    elif a.pin == "split":
        PIN.update(server={1}, client={0})
    global CLIENT
    CLIENT = build_client()
    bench = Path(a.shared) / "bench"
    skip = set(filter(None, a.skip.split(",")))
    if not os.path.exists(os.path.join(a.corpus, "manifest.tsv")):
        subprocess.run([sys.executable, str(bench / "corpus.py"), "--out", a.corpus,
                        "--n", str(max(a.articles, a.messages))], check=True)
    rows = manifest(a.corpus)
    inbox = [r["file"] for r in rows[: a.messages]]
    articles = [r["file"] for r in rows[: a.articles]]
    ids = [r["message_id"] for r in rows[: a.articles : max(1, a.articles // 200)]][:200]
    ids = [i if i.startswith("<") else f"<{i}>" for i in ids]

    out = {"uptime_before": open("/proc/loadavg").read().split()[:3], "pin": a.pin, "servers": {}}
    root = tempfile.mkdtemp(prefix="tern-pop3-nntp-")
    tern = start_tern(a.tern_bin, root)
    try:
        t = time.perf_counter()
        deliver(PORTS["lmtp"], "bench@localhost", inbox, a.corpus)
        deliver(PORTS["lmtp"], "bb+news/bench.test@localhost", articles, a.corpus)
        load_s = time.perf_counter() - t
        out["tern_indexing_wait_s"] = wait_idle(tern.pid)
        pop = [pop3_round(PORTS["pop3"]) for _ in range(a.iterations)]
        news = [nntp_round(PORTS["nntp"], "bench.test", ids) for _ in range(a.iterations)]
        out["servers"]["tern"] = {"load_s": round(load_s, 2), "pop3": pop, "nntp": news}
        out["tern_idle_kib_per_conn"] = {
            "pop3": idle_memory(tern.pid, PORTS["pop3"], a.idle, True),
            "nntp": idle_memory(tern.pid, PORTS["nntp"], a.idle, False),
            "imap": idle_memory(tern.pid, PORTS["imap"], a.idle, False),
        }
    finally:
        tern.terminate()
        tern.wait()

    if "cyrus" not in skip:
        env = dict(os.environ, BASE=os.path.join(tempfile.gettempdir(), "anchor-cyrus"))
        subprocess.run(["bash", str(bench / "cyrus_down.sh")], env=env, capture_output=True)
        try:
            up = subprocess.run(["bash", str(bench / "cyrus_up.sh")], env=env, capture_output=True,
                                text=True, preexec_fn=pin_server)
            if up.returncode != 0:
                raise RuntimeError(f"cyrus_up.sh: {up.stdout[-500:]} {up.stderr[-500:]}")
            c = ANCHORS["cyrus"]
            deliver(c["lmtp"], c["inbox_rcpt"], inbox, a.corpus)
            deliver(c["lmtp"], c["group_rcpt"], articles, a.corpus)
            pop = [pop3_round(c["pop3"]) for _ in range(a.iterations)]
            try:
                news = [nntp_round(c["nntp"], c["group"], ids) for _ in range(a.iterations)]
            except (nntplib.NNTPError, OSError) as e:
                news = [{"error": repr(e)}]
            out["servers"]["cyrus"] = {"pop3": pop, "nntp": news}
        except (RuntimeError, OSError, smtplib.SMTPException, poplib.error_proto) as e:
            out["servers"]["cyrus"] = {"error": repr(e)}
        finally:
            subprocess.run(["bash", str(bench / "cyrus_down.sh")], env=env, capture_output=True)

    if "dovecot" not in skip:
        env = dict(os.environ, DOVECOT_RESET="1")
        try:
            up = subprocess.run(["sh", str(bench / "dovecot_up.sh"), "master"], env=env,
                                preexec_fn=pin_server,
                                capture_output=True, text=True)
            if up.returncode != 0:
                raise RuntimeError(f"dovecot_up.sh: {up.stdout[-500:]} {up.stderr[-500:]}")
            d = ANCHORS["dovecot"]
            deliver(d["lmtp"], d["inbox_rcpt"], inbox, a.corpus)
            pop = [pop3_round(d["pop3"]) for _ in range(a.iterations)]
            out["servers"]["dovecot"] = {"pop3": pop}
        except (RuntimeError, OSError, smtplib.SMTPException, poplib.error_proto) as e:
            out["servers"]["dovecot"] = {"error": repr(e)}
        finally:
            subprocess.run(["sh", str(bench / "dovecot_down.sh"), "master"], capture_output=True)

    summary = {}
    for name, s in out["servers"].items():
        if "pop3" not in s:
            continue
        summary[name] = {k: median(s["pop3"], k) for k in
                         ["login_s", "stat_s", "uidl_s", "retr200_s", "retr200_pipelined_s",
                          "retr200_raw_s", "noop200_client_s", "retr200_client_s",
                          "retr200_client_pipelined_s"]}
        if s.get("nntp") and "error" not in s["nntp"][0]:
            summary[name].update({k: median(s["nntp"], k) for k in
                                  ["group_s", "over_all_s", "over_lines", "article_by_id_s",
                                   "article_by_id_found"]})
    ratios = {}
    for key in ["retr200_s", "retr200_pipelined_s", "retr200_raw_s", "noop200_client_s",
                "retr200_client_s",
                "retr200_client_pipelined_s", "over_all_s", "article_by_id_s", "uidl_s"]:
        tv = summary.get("tern", {}).get(key)
        for anchor in ("cyrus", "dovecot"):
            av = summary.get(anchor, {}).get(key)
            if tv and av:
                ratios[f"{anchor}/tern {key}"] = round(av / tv, 2)
    out["medians"] = summary
    out["ratios"] = ratios
    out["uptime_after"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
