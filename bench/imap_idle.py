#!/usr/bin/env python3
"""Many idle IMAP connections against one `tern serve`: memory per connection, and
how fast a new message reaches every one of them.

    python3 bench/imap_idle.py [--connections 10000] [--tern-bin target/release/tern]

Starts its own tern (fresh data directory, loopback ports 14601/14602), opens N
connections that each LOGIN, SELECT INBOX and IDLE, reads the server's resident
memory before and after, delivers one message over LMTP and times until every
connection has seen `* 1 EXISTS`. Prints one JSON object.
"""
import argparse
import asyncio
import json
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time

IMAP_PORT, LMTP_PORT = 14601, 14602


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def idle_connection(ready, seen, start_evt, results, idx):
    for attempt in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", IMAP_PORT, limit=1 << 16)
        try:
            await asyncio.wait_for(reader.readline(), 30)
            break
        except asyncio.TimeoutError:
            # The connection was dropped from a full accept queue; try again.
            writer.close()
    else:
        raise RuntimeError("no greeting after 5 attempts")
    writer.write(b"a LOGIN idle pw\r\nb SELECT INBOX\r\nc IDLE\r\n")
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("closed before IDLE")
        if line.startswith(b"+"):
            break
        if line.startswith((b"a NO", b"a BAD", b"b NO", b"b BAD", b"c BAD")):
            raise RuntimeError(line.decode(errors="replace"))
    ready.append(idx)
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.strip() == b"* 1 EXISTS":
            results[idx] = time.monotonic()
            seen.append(idx)
            break
    await start_evt.wait()
    writer.write(b"DONE\r\nd LOGOUT\r\n")
    await writer.drain()
    writer.close()


async def run(n, pid):
    ready, seen, results = [], [], {}
    stop = asyncio.Event()
    tasks = []
    t0 = time.monotonic()
    for i in range(n):
        tasks.append(asyncio.create_task(idle_connection(ready, seen, stop, results, i)))
        if i % 200 == 199:
            while len(ready) < i - 400:
                await asyncio.sleep(0.01)
    while len(ready) < n:
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
        await asyncio.sleep(0.05)
    setup_s = time.monotonic() - t0
    await asyncio.sleep(1.0)
    rss_idle = rss_kib(pid)
    sent = time.monotonic()
    phases = {}
    lmtp = smtplib.LMTP("127.0.0.1", LMTP_PORT)
    lmtp.ehlo("bench")
    phases["connect_lhlo_ms"] = round((time.monotonic() - sent) * 1000, 1)
    lmtp.mail("bench@example.org")
    lmtp.rcpt("idle@localhost")
    phases["mail_rcpt_ms"] = round((time.monotonic() - sent) * 1000, 1)
    code, _ = lmtp.data(b"Subject: wake up\r\n\r\nhello\r\n")
    acked = time.monotonic()
    phases["data_250_ms"] = round((acked - sent) * 1000, 1)
    lmtp.quit()
    deadline = time.monotonic() + 60
    while len(seen) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    lat = sorted((results[i] - acked) * 1000 for i in results)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "connections": n,
        "setup_s": round(setup_s, 2),
        "rss_idle_kib": rss_idle,
        "notified": len(seen),
        "lmtp_s": round(acked - sent, 4),
        "lmtp_phases": phases,
        "notify_ms_p50": round(statistics.median(lat), 1) if lat else None,
        "notify_ms_max": round(lat[-1], 1) if lat else None,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--tern-bin", default="target/release/tern")
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="tern-idle-")
    conf = os.path.join(base, "tern.toml")
    with open(conf, "w") as f:
        # Every client comes from 127.0.0.1: lift the per-address limit, which would
        # refuse all but the first 500 (this measures memory, not a flood).
        f.write(f'data_dir = "{base}/data"\n[listen]\nimap = "127.0.0.1:{IMAP_PORT}"\nlmtp = "127.0.0.1:{LMTP_PORT}"\n'
                '[imap]\nmax_connections_per_ip = 0\n')
    subprocess.run([a.tern_bin, "--config", conf, "admin", "user", "add", "idle", "--password-stdin"],
                   input=b"pw\n", check=True, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([a.tern_bin, "--config", conf, "serve"], stderr=subprocess.PIPE)
    try:
        for line in server.stderr:
            if b"tern ready" in line:
                break
        else:
            raise SystemExit("tern did not start (ports 14601/14602 in use?)")
        baseline = rss_kib(server.pid)
        result = asyncio.run(run(a.connections, server.pid))
        result["rss_baseline_kib"] = baseline
        result["kib_per_idle_connection"] = round((result["rss_idle_kib"] - baseline) / a.connections, 1)
        print(json.dumps(result, indent=1))
        return 0 if result["notified"] == a.connections else 1
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
