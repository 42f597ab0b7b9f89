#!/usr/bin/env python3
"""W2 IMAP benchmark: tern against Dovecot 2.3 and Cyrus 3.6 in one run.

  python3 bench/imap_workload.py --n 2000 --iterations 1
  python3 bench/imap_workload.py --iterations 3            # N=10,000, medians of 3

Per server, iteration and --settle value, on a fresh instance (servers.py):
  prepare + W1   workload.py (../shared/bench) creates the corpus folders over
                 IMAP and delivers the corpus over LMTP (4 connections);
  W2             workload.py's IMAP phase on the largest folder (INBOX): LOGIN,
                 SELECT, FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE),
                 FETCH 1:500 BODY.PEEK[], UID SEARCH BODY quokka, STORE 1:* +FLAGS
                 (\\Seen), STORE +FLAGS.SILENT (\\Deleted) on every 20th, EXPUNGE.
  --settle 0     W2 right after W1, in the same workload.py process (phases
                 prepare,w1,w2), exactly as workload.py runs it;
  --settle S>0   workload.py prepare,w1; S seconds of nothing; workload.py w2.
W2 changes the mailbox (flags, expunge), so every settle value gets its own fresh
instance and its own delivery.  Why settle: tern moves message text into its
full-text index in a background thread after delivery; until then SEARCH BODY
reads the unindexed messages.  For tern the driver records how many texts were
still pending (a read-only count of the store's `pending_texts` table) at the end
of W1, before W2 and after W2, and when the backlog reached zero.  The other
servers get the same settle for symmetry (they have no body index here: Cyrus
`search_engine: none`, Dovecot without FTS).

W3 (POP3) is not run: tern has no POP3 listener yet, so there is nothing to
compare.  Dovecot/Cyrus W3 figures are in ../shared/bench/results-*.md.

Memory per idle IMAP connection (workload.py reports none):
  --conn-mem K       after W2, K connections LOGIN + SELECT INBOX and idle; per
                     server the growth of the whole process tree / K (RSS, PSS,
                     USS) and, for servers that fork a process per connection
                     (Dovecot imap, Cyrus imapd), that process's RSS/PSS/USS.
  --idle-connections N   once at the end, bench/imap_idle.py with N connections
                     (tern only; its own tern on ports 14601/14602): tern's RSS
                     growth per idle connection — the tern figure to quote.
The report also repeats the per-process figures measured in results-cyrus.md
(results-dovecot.md has none).

Times are client wall clock (Python imaplib, included).  The table shows medians
over the iterations and the ratio other/tern of each time (>1: tern faster).
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
import servers as S  # noqa: E402  (bench/servers.py)

# (key in workload.py's w2_imap, label)
W2_STEPS = [("login_s", "LOGIN"),
            ("select_s", "SELECT INBOX"),
            ("fetch_meta_s", "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"),
            ("fetch_body500_s", "FETCH 1:500 BODY.PEEK[]"),
            ("search_body_s", "UID SEARCH BODY quokka"),
            ("store_seen_all_s", "STORE 1:* +FLAGS (\\Seen)"),
            ("store_deleted_s", "STORE +FLAGS.SILENT (\\Deleted) 5%"),
            ("expunge_s", "EXPUNGE 5%")]
# from ../shared/bench/results-cyrus.md (headline "Memory" row, N=10,000, quiet run)
REFERENCE_MEM = {"cyrus": "results-cyrus.md: imapd 23.7 MB peak RSS (7–9 MB PSS) per connection process",
                 "dovecot": "results-dovecot.md: no memory figure"}


def w2_checks(w2, corpus):
    """Problems in one W2 result, as strings (empty: all as expected)."""
    bad = []
    n = w2.get("mailbox_messages")
    inbox = corpus["per_mailbox"].get("INBOX")
    if w2.get("mailbox") != "INBOX" or n != inbox:
        bad.append(f"largest mailbox {w2.get('mailbox')!r} with {n} msgs (expected INBOX with {inbox})")
    if w2.get("fetch_meta_count") != n:
        bad.append(f"FETCH 1:* answered {w2.get('fetch_meta_count')} of {n}")
    if n and w2.get("fetch_body500_count") != min(500, n):
        bad.append(f"FETCH 1:500 BODY.PEEK[] answered {w2.get('fetch_body500_count')} of {min(500, n)}")
    if w2.get("search_hits") != w2.get("search_hits_expected_upper_bound"):
        bad.append(f"SEARCH BODY hits {w2.get('search_hits')} vs manifest {w2.get('search_hits_expected_upper_bound')}")
    if w2.get("store_seen_all_count") != n:
        bad.append(f"STORE 1:* +FLAGS answered {w2.get('store_seen_all_count')} FETCH of {n}")
    if w2.get("expunge_count") != w2.get("expunge_count_target"):
        bad.append(f"EXPUNGE reported {w2.get('expunge_count')} of {w2.get('expunge_count_target')}")
    return bad


def run_variant(a, corpus, rdir, inst, server, k, settle, probe):
    label = f"{server} iter {k} settle {settle:g}s"
    js = os.path.join(rdir, f"iter{k}-settle{settle:g}-{server}")
    tern = server == "tern"
    rec = {}
    if settle == 0:
        res = S.run_workload(a, label, "prepare,w1,w2", inst.ports, js + ".json")
    else:
        res = S.run_workload(a, label, "prepare,w1", inst.ports, js + "-w1.json")
        t0 = time.monotonic()
        if tern:
            rec["pending_texts_w1_end"] = inst.pending_texts()
            rec["server_cpu_s_w1"] = inst.cpu_s()
            drained = 0.0 if rec["pending_texts_w1_end"] == 0 else None
            while time.monotonic() - t0 < settle:
                time.sleep(0.1)
                if drained is None and inst.pending_texts() == 0:
                    drained = round(time.monotonic() - t0, 1)
            rec["index_drained_after_s"] = drained   # None: not within the settle time
            rec["pending_texts_before_w2"] = inst.pending_texts()
        else:
            time.sleep(settle)
        res["w2_imap"] = S.run_workload(a, label, "w2", inst.ports, js + "-w2.json")["w2_imap"]
    if tern:
        rec["tern_binary_mtime"] = inst.binary_mtime
        rec["pending_texts_after_w2"] = inst.pending_texts()
        rec["server_cpu_s_end"] = inst.cpu_s()
    w1, w2 = res["w1_lmtp"], res["w2_imap"]
    rec["w1"] = {x: w1[x] for x in ("seconds", "msgs_per_s", "MB_per_s", "delivered", "messages",
                                    "error_count", "count_mismatch")}
    rec["w1"]["errors_first"] = w1["errors"][:3]
    rec["prepare"] = res.get("prepare")
    rec["w2"] = w2
    rec["checks"] = w2_checks(w2, corpus)
    if w1["count_mismatch"]:
        rec["checks"].append(f"W1 count mismatch {w1['count_mismatch']}")
    if w1["error_count"]:
        rec["checks"].append(f"W1 {w1['error_count']} delivery errors, first {w1['errors'][:2]}")
    if probe:
        rec["conn_mem"] = S.conn_mem_probe(inst, probe)
    S.log(f"{label}: W1 {w1['msgs_per_s']} msg/s; W2 " + ", ".join(
        f"{key[:-2]} {w2.get(key, 0) * 1000:.1f} ms" for key, _ in W2_STEPS if key in w2)
        + (f"; pending texts {rec.get('pending_texts_before_w2', '-')} before / "
           f"{rec['pending_texts_after_w2']} after W2" if tern else "")
        + (f"; CHECKS: {rec['checks']}" if rec["checks"] else ""))
    return rec


def run_one(a, corpus, rdir, server, k):
    out = {"variants": {}}
    for i, settle in enumerate(a.settle_list):
        with S.instance(a, server, f"iter{k}-settle{settle:g}") as inst:
            out["variants"][f"{settle:g}"] = run_variant(a, corpus, rdir, inst, server, k, settle,
                                                         a.conn_mem if i == 0 else 0)
    return out


def summarize(runs, a):
    summ = {}
    for s in a.server_list:
        ok = [r for r in runs if r["server"] == s and "variants" in r]
        if not ok:
            continue
        summ[s] = {}
        for st in (f"{x:g}" for x in a.settle_list):
            vs = [r["variants"][st] for r in ok if st in r["variants"]]
            if not vs:
                continue
            v = {"iterations": len(vs),
                 "w1_msgs_per_s": S.med([x["w1"]["msgs_per_s"] for x in vs]),
                 "w2_ms": {key: S.med([x["w2"].get(key) and x["w2"][key] * 1000 for x in vs])
                           for key, _ in W2_STEPS},
                 "w2_ms_each": {key: [x["w2"].get(key) and round(x["w2"][key] * 1000, 1) for x in vs]
                                for key, _ in W2_STEPS},
                 "mailbox_messages": S.med([x["w2"].get("mailbox_messages") for x in vs]),
                 "search_hits": [x["w2"].get("search_hits") for x in vs],
                 "search_hits_expected": [x["w2"].get("search_hits_expected_upper_bound") for x in vs],
                 "checks": [c for x in vs for c in x["checks"]]}
            for key in ("pending_texts_w1_end", "pending_texts_before_w2", "pending_texts_after_w2",
                        "index_drained_after_s", "server_cpu_s_w1", "server_cpu_s_end"):
                vals = [x.get(key) for x in vs if key in x]
                if vals:
                    v[key] = vals
            mems = [x["conn_mem"] for x in vs if "conn_mem" in x]
            if mems:
                v["conn_mem"] = {"connections": mems[0]["connections"],
                                 "tree_delta_kib_per_conn": {m: S.med([x["tree_delta_kib_per_conn"][m] for x in mems])
                                                             for m in ("rss", "pss", "uss")}}
                pp = [x["per_process"] for x in mems if "per_process" in x]
                if pp:
                    v["conn_mem"]["per_process"] = {"comm": pp[0]["comm"], **{
                        m: S.med([x[m] for x in pp]) for m in ("rss_kib_median", "pss_kib_median", "uss_kib_median")}}
                else:
                    v["conn_mem"]["holders"] = mems[0].get("holders")
            summ[s][st] = v
    return summ


def ratio(other, tern):
    return f"{other / tern:.2f}x" if other and tern else "-"


def report(summ, corpus, a, skipped, failed, idle):
    n_inbox = corpus["per_mailbox"].get("INBOX")
    others = [s for s in a.server_list if s != "tern"]
    print(f"\nW2 IMAP on INBOX ({n_inbox:,} msgs) after W1 delivered the corpus ({corpus['messages']:,} msgs / "
          f"{corpus['bytes'] / 1e6:.1f} MB); fresh instance per run; median of {a.iterations} iteration(s); "
          f"times in ms (client wall clock); other/tern = other's time ÷ tern's (>1: tern faster)")
    for st in (f"{x:g}" for x in a.settle_list):
        how = ("W2 right after W1, same workload.py process (as workload.py runs it)" if st == "0"
               else f"W2 {st} s after W1 ended (separate workload.py run)")
        print(f"\n### settle {st} s: {how}\n")
        hdr = ["step"] + [c for s in a.server_list for c in ([s] if s == "tern" else [s, f"{s}/tern"])]
        rows = []
        get = lambda s, key: summ.get(s, {}).get(st, {}).get("w2_ms", {}).get(key)
        for key, lab in W2_STEPS:
            t = get("tern", key)
            row = [lab]
            for s in a.server_list:
                row.append(S.fmt(get(s, key), 1))
                if s != "tern":
                    row.append(ratio(get(s, key), t))
            rows.append(row)
        w1 = lambda s: summ.get(s, {}).get(st, {}).get("w1_msgs_per_s")
        row = ["(W1 msgs/s, for context)"]
        for s in a.server_list:
            row.append(S.fmt(w1(s), 0))
            if s != "tern":
                row.append(ratio(w1("tern"), w1(s)))   # rates: tern/other, >1 tern faster
        rows.append(row)
        row = ["checks (counts, hits, expunged)"]
        for s in a.server_list:
            v = summ.get(s, {}).get(st)
            row.append("-" if v is None else ("ok" if not v["checks"] else f"{len(v['checks'])} PROBLEM(S)"))
            if s != "tern":
                row.append("")
        rows.append(row)
        S.print_table(hdr, rows)
    t = summ.get("tern", {})
    if t:
        print("\ntern full-text index backlog (pending_texts; SEARCH BODY reads unindexed messages):")
        for st, v in t.items():
            print(f"  settle {st} s: SEARCH {v['w2_ms_each']['search_body_s']} ms; pending at W1 end "
                  f"{v.get('pending_texts_w1_end', 'n/a (same process)')}, before W2 "
                  f"{v.get('pending_texts_before_w2', 'n/a (same process)')}, after W2 "
                  f"{v.get('pending_texts_after_w2')}; drained after {v.get('index_drained_after_s', 'n/a')} s"
                  f"; tern CPU s (W1 end / end) {v.get('server_cpu_s_w1', '-')} / {v.get('server_cpu_s_end')}")
    print("\nMemory per idle IMAP connection (LOGIN + SELECT INBOX, KiB):\n")
    rows = []
    for s in a.server_list:
        v = next((x["conn_mem"] for x in summ.get(s, {}).values() if "conn_mem" in x), None)
        if s == "tern":
            main = ("imap_idle.py not run" if not idle else f"imap_idle.py: {idle['error']}" if "error" in idle
                    else f"{idle['kib_per_idle_connection']} (imap_idle.py, {idle['connections']:,} conns, RSS growth)")
        else:
            pp = (v or {}).get("per_process")
            main = (f"RSS {S.fmt(pp['rss_kib_median'], 0)} / PSS {S.fmt(pp['pss_kib_median'], 0)} / "
                    f"USS {S.fmt(pp['uss_kib_median'], 0)} (one {','.join(pp['comm'])} process each)") if pp else "-"
        probe = (f"{v['connections']} conns: tree +RSS {v['tree_delta_kib_per_conn']['rss']:,} "
                 f"+PSS {v['tree_delta_kib_per_conn']['pss']:,} per conn") if v else "-"
        rows.append([s, main, probe, REFERENCE_MEM.get(s, "")])
    S.print_table(["server", "per connection", "probe: process tree growth / conns", "reference"], rows,
                  left=(0, 1, 2, 3))
    print("\nW3 (POP3) not run: tern has no POP3 listener.")
    for s, v in summ.items():
        for st, x in v.items():
            if x["checks"]:
                print(f"{s} settle {st}: PROBLEMS: {x['checks'][:5]}")
    for s, why in skipped.items():
        print(f"{s}: SKIPPED: {why}")
    for s, why in failed.items():
        print(f"{s}: FAILED: {why}")


def run_imap_idle(a, n):
    """bench/imap_idle.py, unchanged, but on --idle-ports instead of its fixed
    14601/14602: it checks neither that its ports are free nor that its own tern
    came up, so next to another imap_idle.py run it would measure (and deliver
    into) that one's tern.  The ports are module constants; a tiny wrapper sets
    them before calling its main()."""
    if a.quiet_wait > 0:
        S.wait_quiet(a.quiet_wait, a.quiet_load)
    imap_port, lmtp_port = a.idle_ports
    try:
        S.require_free([imap_port, lmtp_port], "imap_idle.py")
    except RuntimeError as e:
        S.log(str(e))
        return {"error": str(e)}
    wrapper = ("import sys; sys.dont_write_bytecode = True; sys.path.insert(0, %r); import imap_idle as m; "
               "assert hasattr(m, 'IMAP_PORT') and hasattr(m, 'LMTP_PORT'), 'imap_idle.py changed: no IMAP_PORT'; "
               "m.IMAP_PORT, m.LMTP_PORT = %d, %d; sys.argv = ['imap_idle.py'] + %r; sys.exit(m.main())"
               % (S.HERE, imap_port, lmtp_port, ["--connections", str(n), "--tern-bin", S.tern_bin(a)]))
    cmd = [sys.executable, "-c", wrapper]
    S.log(f"tern idle connections: imap_idle.py --connections {n} on ports {imap_port}/{lmtp_port}")
    try:
        # own session: on timeout the whole group goes, imap_idle.py's tern included
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, err = p.communicate(timeout=1800)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, err = p.communicate()
        res = json.loads(out) if out.strip().startswith("{") else {}
        if p.returncode != 0 or not res:
            res["error"] = f"imap_idle.py rc {p.returncode}: {(err or out)[-500:]}"
        elif not res.get("rss_idle_kib"):
            res["error"] = "imap_idle.py read no RSS: its tern did not run (port taken?)"
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        res = {"error": str(e)}
    S.log(f"imap_idle.py: {res}")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    S.add_common_args(ap)
    ap.add_argument("--settle", default="0,5",
                    help="comma list of seconds between the end of W1 and W2; each value is its own fresh "
                         "instance (0 = W2 in the same workload.py run as W1)")
    ap.add_argument("--conn-mem", type=int, default=10,
                    help="idle IMAP connections for the memory probe after W2 (0: off)")
    ap.add_argument("--idle-connections", type=int, default=2000,
                    help="run bench/imap_idle.py with this many connections once at the end (tern; 0: off)")
    ap.add_argument("--idle-ports", default="14611,14612",
                    help="IMAP,LMTP ports for imap_idle.py's tern (its own fixed 14601/14602 are left to "
                         "people running it by hand)")
    a, corpus, rdir = S.setup(ap, "w2")
    a.settle_list = [float(x) for x in a.settle.split(",") if x.strip()]
    a.idle_ports = [int(x) for x in a.idle_ports.split(",")]
    runs, skipped, failed = S.iterate(a, lambda s, k: run_one(a, corpus, rdir, s, k))
    idle = None
    if "tern" in a.server_list and "tern" not in skipped and a.idle_connections > 0:
        idle = run_imap_idle(a, a.idle_connections)
    summ = summarize(runs, a)
    out = {"corpus": corpus, "concurrency": a.concurrency, "iterations": a.iterations, "settle_s": a.settle_list,
           "servers": a.server_list, "tern_binary": a.tern_binary, "summary": summ,
           "tern_imap_idle": idle, "reference_memory": REFERENCE_MEM, "skipped": skipped, "failed": failed,
           "runs": runs, "total_wall_s": round(time.time() - a.t_start, 1)}
    S.check_binary_unchanged(a, out)
    jpath = a.json_out or os.path.join(rdir, "summary.json")
    with open(jpath, "w") as f:
        json.dump(out, f, indent=1)
    report(summ, corpus, a, skipped, failed, idle)
    print(f"\nraw results: {jpath}  (total {out['total_wall_s']} s)")
    if failed or not summ:
        return 1
    return 2 if any(x["checks"] for v in summ.values() for x in v.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
