#!/usr/bin/env python3
"""W1 LMTP delivery benchmark: tern against Dovecot 2.3 and Cyrus 3.6 in one run.

  python3 bench/lmtp_delivery.py --n 2000 --iterations 1
  python3 bench/lmtp_delivery.py --corpus /tmp/tern-bench/corpus-n10000-s42 --iterations 3 \
      --servers tern,dovecot,cyrus --tern-bin target/release/tern

The same client drives all three servers: the shared workload.py
(../shared/bench, --shared-bench) run as a subprocess with
`--phases prepare,w1 --json-out`.  prepare is untimed IMAP: LOGIN, NAMESPACE /
separator discovery, CREATE of the corpus folders (SETACL anyone +p only when
the server advertises ACL: Cyrus and tern do, Dovecot here does not).  W1
delivers every corpus message over LMTP with 4 connections (--concurrency)
pulling from one queue; INBOX mail goes to bench@localhost, folder mail to
bench+<Folder>@localhost; afterwards IMAP STATUS per folder is checked against
the manifest.  Each server gets a fresh instance per iteration; iterations
interleave the servers (the order rotates) so outside load hits all of them
alike.  The table shows medians over the iterations.

Server setup (fresh data, ports, teardown) is shared with imap_workload.py in
servers.py.  For tern the driver also records the CPU seconds of `tern serve`
up to the end of W1 and cross-checks the per-folder counts with
`tern admin mailbox list`.  A server whose packages/binary are missing is
skipped with a message.
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True
import servers as S  # noqa: E402  (bench/servers.py)


def run_one(a, corpus, rdir, server, k):
    with S.instance(a, server, f"iter{k}") as inst:
        res = S.run_workload(a, f"{server} iter {k}", "prepare,w1", inst.ports,
                             os.path.join(rdir, f"iter{k}-{server}.json"))
        w = res["w1_lmtp"]
        w["count_check"] = "IMAP STATUS (workload.py)"
        w.update(inst.after_w1(corpus))
    rec = {"w1": w, "prepare": res.get("prepare")}
    S.log(f"{server} iter {k}: {w['msgs_per_s']} msg/s, {w['MB_per_s']} MB/s, p50 {w['latency_ms_p50']} ms, "
          f"p99 {w['latency_ms_p99']} ms, delivered {w['delivered']}/{w['messages']}, "
          f"errors {w['error_count']}, count mismatch {w['count_mismatch'] or 'none'}"
          + (f", tern admin count mismatch {w['admin_count_mismatch']}" if w.get("admin_count_mismatch") else ""))
    if w["errors"]:
        S.log(f"{server} iter {k}: first errors: {w['errors'][:3]}")
    return rec


def summarize(runs, servers):
    summ = {}
    for s in servers:
        ok = [r for r in runs if r["server"] == s and "w1" in r]
        if not ok:
            continue
        w = [r["w1"] for r in ok]
        summ[s] = {"iterations": len(ok),
                   "msgs_per_s": S.med([x["msgs_per_s"] for x in w]),
                   "MB_per_s": S.med([x["MB_per_s"] for x in w]),
                   "latency_ms_p50": S.med([x["latency_ms_p50"] for x in w]),
                   "latency_ms_p99": S.med([x["latency_ms_p99"] for x in w]),
                   "seconds": S.med([x["seconds"] for x in w]),
                   "server_cpu_s": S.med([x.get("server_cpu_s") for x in w]),
                   "msgs_per_s_each": [x["msgs_per_s"] for x in w],
                   "delivered_each": [x["delivered"] for x in w],
                   "errors_total": sum(x["error_count"] for x in w),
                   "count_mismatch_runs": sum(1 for x in w if x["count_mismatch"] or x.get("admin_count_mismatch")),
                   "count_check": w[0].get("count_check"),
                   "count_mismatch_first": next((x["count_mismatch"] or x.get("admin_count_mismatch")
                                                 for x in w if x["count_mismatch"] or x.get("admin_count_mismatch")),
                                                None),
                   "errors_first": next((x["errors"][:3] for x in w if x["errors"]), None)}
    t = summ.get("tern", {}).get("msgs_per_s")
    for s, v in summ.items():
        v["tern_ratio"] = round(t / v["msgs_per_s"], 3) if t and v["msgs_per_s"] else None
    return summ


def report(summ, corpus, a, skipped, failed):
    print(f"\nW1 LMTP delivery: {corpus['messages']:,} msgs / {corpus['bytes'] / 1e6:.1f} MB "
          f"({corpus['dir']}), {a.concurrency} connections, median of {a.iterations} iteration(s)\n")
    hdr = ["server", "runs", "msgs/s", "MB/s", "p50 ms", "p99 ms", "seconds", "tern/this", "count check", "errors"]
    rows = []
    for s in a.server_list:
        if s in summ:
            v = summ[s]
            cc = "ok" if not v["count_mismatch_runs"] else f"MISMATCH in {v['count_mismatch_runs']} run(s)"
            rows.append([s, str(v["iterations"]), S.fmt(v["msgs_per_s"]), S.fmt(v["MB_per_s"], 2),
                         S.fmt(v["latency_ms_p50"], 2), S.fmt(v["latency_ms_p99"], 2), S.fmt(v["seconds"], 2),
                         S.fmt(v["tern_ratio"], 2) + "x" if v["tern_ratio"] else "-", cc, str(v["errors_total"])])
        else:
            rows.append([s, "0", "-", "-", "-", "-", "-", "-", "skipped" if s in skipped else "failed", "-"])
    S.print_table(hdr, rows, left=(0, 8))
    print("\ntern/this = tern msgs/s ÷ this server's msgs/s (>1: tern faster).  Latency = per message, "
          "client wall clock.")
    for s, v in summ.items():
        cpu = f"; server CPU {v['server_cpu_s']} s (setup + W1)" if v["server_cpu_s"] is not None else ""
        print(f"{s}: per iteration msgs/s: {v['msgs_per_s_each']}; count check via {v['count_check']}"
              + (" + tern admin mailbox list" if s == "tern" else "") + cpu)
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
    S.add_common_args(ap)
    a, corpus, rdir = S.setup(ap, "w1")
    runs, skipped, failed = S.iterate(a, lambda s, k: run_one(a, corpus, rdir, s, k))
    summ = summarize(runs, a.server_list)
    out = {"corpus": corpus, "concurrency": a.concurrency, "iterations": a.iterations,
           "servers": a.server_list, "tern_binary": a.tern_binary, "summary": summ,
           "skipped": skipped, "failed": failed, "runs": runs, "total_wall_s": round(time.time() - a.t_start, 1)}
    S.check_binary_unchanged(a, out)
    jpath = a.json_out or os.path.join(rdir, "summary.json")
    with open(jpath, "w") as f:
        json.dump(out, f, indent=1)
    report(summ, corpus, a, skipped, failed)
    print(f"\nraw results: {jpath}  (total {out['total_wall_s']} s)")
    if failed or not summ:
        return 1
    return 2 if any(v["count_mismatch_runs"] or v["errors_total"] for v in summ.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
