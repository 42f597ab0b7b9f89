#!/usr/bin/env python3
"""What a user sees of their account over IMAP, for the replication tests: a snapshot to
compare a master with its replica, a way to change an account, and a load generator.

Usage:
  imap_snapshot.py HOST PORT USER PASSWORD snapshot [OUT.json]
      Snapshot of every personal mailbox (LIST "" "*", minus \\Noselect):
        STATUS UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ, the ACL (GETACL), and per
        message: UID, flags (sorted, without \\Recent), RFC822.SIZE, SHA-1 of BODY.PEEK[],
        Message-ID; and the subscriptions (LSUB).
      Without OUT: the JSON on stdout. With OUT: the JSON in OUT, and on stdout one
      tab-separated line per item, easy to read from another language:
        MBOX name uidvalidity uidnext messages highestmodseq
        ACL  name ident rights,ident rights,...   (rights sorted)
        MSG  name uid flags size sha1 message-id
        SUB  name
  imap_snapshot.py compare A.json B.json [LABEL_A [LABEL_B]]
      A readable list of every difference; exit status 1 when there is one.
  imap_snapshot.py HOST PORT USER PASSWORD run
      Runs the IMAP operations given as a JSON list on stdin, each [method, arg, ...]
      calling imaplib's method (e.g. ["uid", "STORE", "1:3", "+FLAGS", "(\\\\Seen)"]);
      ["append", mailbox, flags, message] appends (message as text, CRLF added where
      missing). An operation whose answer is not OK stops the run with exit status 1,
      unless it is written ["optional", method, ...]. Prints the answers as JSON.
  imap_snapshot.py HOST PORT USER PASSWORD churn STOPFILE SEED [MAILBOX ...]
      Until STOPFILE exists: random flag changes (+FLAGS, -FLAGS, keywords) and
      \\Deleted + UID EXPUNGE in the mailboxes (default INBOX), at a steady pace.
      Prints the number of operations done.

The IMAP exchange is printed to stderr when something fails.
"""
import hashlib
import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from imapcommon import (  # noqa: E402
    TRACE, Parser, _stream, fetch_by_uid, flags_of, ok, parse_list, parse_status, quote,
    require, TracedIMAP4,
)


def login(host, port, user, password):
    m = TracedIMAP4(host, int(port))
    TRACE.append("-- connected")
    ok(m.login(user, password), f"LOGIN {user}")
    return m


def mailbox_names(m):
    names = []
    for attrs, _, name in parse_list(ok(m.list('""', "*"), 'LIST "" "*"')):
        low = {a.lower() for a in attrs}
        if "\\noselect" in low or "\\nonexistent" in low:
            continue
        names.append(name)
    return sorted(names)


def acl_of(m, name):
    typ, data = m.getacl(quote(name))
    if typ != "OK":
        return None
    p = Parser(_stream(data))
    pairs = []
    while not p.at_end():
        p.value()  # mailbox name
        while p.i < len(p.b) and p.b[p.i] not in b"\r\n":
            ident = p.value()
            rights = p.value()
            pairs.append(f"{ident.decode()} {''.join(sorted(rights.decode()))}")
    return sorted(pairs)


def snapshot(m):
    has_acl = "ACL" in m.capabilities or "ACL" in set(
        ok(m.capability(), "CAPABILITY")[0].decode().upper().split())
    snap = {"mailboxes": {}, "subscriptions": []}
    for name in mailbox_names(m):
        q = quote(name)
        _, st = parse_status(ok(m.status(q, "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)"),
                                f"STATUS {name}"))
        ok(m.select(q, readonly=True), f"EXAMINE {name}")
        msgs = {}
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        require(typ == "OK", f"UID FETCH in {name}: {typ} {data!r}")
        if data != [None]:
            for uid, items in fetch_by_uid(data).items():
                body = items.get("BODY[]") or b""
                mid = re.search(rb"(?im)^Message-ID:\s*(\S+)", body)
                msgs[str(uid)] = {
                    "flags": " ".join(sorted(flags_of(items))),
                    "size": int(items.get("RFC822.SIZE", -1)),
                    "sha1": hashlib.sha1(body).hexdigest(),
                    "message_id": mid.group(1).decode() if mid else "",
                }
        ok(m.close(), f"CLOSE {name}")
        snap["mailboxes"][name] = {
            "status": st,
            "acl": acl_of(m, name) if has_acl else None,
            "messages": msgs,
        }
    typ, data = m.lsub('""', "*")
    if typ == "OK" and data != [None]:
        snap["subscriptions"] = sorted(n for _, _, n in parse_list(data))
    return snap


def lines(snap):
    out = []
    for name, mb in sorted(snap["mailboxes"].items()):
        st = mb["status"]
        out.append("\t".join(["MBOX", name] + [str(st.get(k, "")) for k in
                                                ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")]))
        if mb["acl"] is not None:
            out.append("\t".join(["ACL", name, ",".join(mb["acl"])]))
        for uid, msg in sorted(mb["messages"].items(), key=lambda kv: int(kv[0])):
            out.append("\t".join(["MSG", name, uid, msg["flags"], str(msg["size"]), msg["sha1"],
                                  msg["message_id"]]))
    for name in snap["subscriptions"]:
        out.append(f"SUB\t{name}")
    return out


def compare(a, b, la, lb):
    problems = []
    ma, mb = a["mailboxes"], b["mailboxes"]
    for name in sorted(set(ma) | set(mb)):
        if name not in mb:
            problems.append(f"{name!r}: only on {la} ({len(ma[name]['messages'])} messages)")
            continue
        if name not in ma:
            problems.append(f"{name!r}: only on {lb} ({len(mb[name]['messages'])} messages)")
            continue
        sa, sb = ma[name]["status"], mb[name]["status"]
        for k in ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ"):
            if sa.get(k) != sb.get(k):
                problems.append(f"{name!r}: STATUS {k}: {la}={sa.get(k)} {lb}={sb.get(k)}")
        if ma[name]["acl"] != mb[name]["acl"]:
            problems.append(f"{name!r}: ACL: {la}={ma[name]['acl']} {lb}={mb[name]['acl']}")
        xa, xb = ma[name]["messages"], mb[name]["messages"]
        for uid in sorted(set(xa) | set(xb), key=int):
            if xa.get(uid) != xb.get(uid):
                problems.append(f"{name!r} UID {uid}: {la}={xa.get(uid)} {lb}={xb.get(uid)}")
    if a["subscriptions"] != b["subscriptions"]:
        problems.append(f"subscriptions: {la}={a['subscriptions']} {lb}={b['subscriptions']}")
    return problems


def with_crlf(text):
    return re.sub(r"(?<!\r)\n", "\r\n", text).encode()


def run_ops(m, ops):
    answers = []
    for op in ops:
        optional = op[0] == "optional"
        if optional:
            op = op[1:]
        method, args = op[0], list(op[1:])
        if method == "append":
            mailbox, flags, message = args
            res = m.append(quote(mailbox), flags, None, with_crlf(message))
        else:
            res = getattr(m, method)(*args)
        typ, data = res
        answers.append([method] + args[:3] + [typ, repr(data)[:300]])
        if not optional:
            require(typ == "OK", f"{op!r}: server answered {typ} {data!r}")
    return answers


def churn(m, stopfile, seed, mailboxes):
    rnd = random.Random(seed)
    done = 0
    keywords = ["$Important", "Work", "Later", "$Label1"]
    system = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]
    while not os.path.exists(stopfile):
        name = rnd.choice(mailboxes)
        ok(m.select(quote(name)), f"SELECT {name}")
        typ, data = m.uid("SEARCH", "ALL")
        uids = [int(x) for x in (data[0] or b"").split()] if typ == "OK" else []
        for _ in range(5):
            if not uids:
                break
            uid = rnd.choice(uids)
            r = rnd.random()
            if r < 0.35:
                flags = rnd.sample(system + keywords, rnd.randint(1, 3))
                ok(m.uid("STORE", str(uid), "+FLAGS", "(" + " ".join(flags) + ")"), "STORE +FLAGS")
            elif r < 0.6:
                flags = rnd.sample(system + keywords, rnd.randint(1, 3))
                ok(m.uid("STORE", str(uid), "-FLAGS", "(" + " ".join(flags) + ")"), "STORE -FLAGS")
            elif r < 0.8:
                lo = rnd.choice(uids)
                ok(m.uid("STORE", f"{lo}:{lo + 3}", "+FLAGS.SILENT", "(\\Seen)"), "STORE range")
            elif len(uids) > 10:
                ok(m.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
                ok(m.uid("EXPUNGE", str(uid)), "UID EXPUNGE")
                uids.remove(uid)
            done += 1
        ok(m.close(), "CLOSE")
        time.sleep(0.05)
    return done


def main():
    if sys.argv[1] == "compare":
        a = json.load(open(sys.argv[2]))
        b = json.load(open(sys.argv[3]))
        la = sys.argv[4] if len(sys.argv) > 4 else "A"
        lb = sys.argv[5] if len(sys.argv) > 5 else "B"
        problems = compare(a, b, la, lb)
        for p in problems:
            print(p)
        nmsg = sum(len(v["messages"]) for v in a["mailboxes"].values())
        print(f"{len(problems)} differences over {len(a['mailboxes'])} mailboxes, {nmsg} messages")
        sys.exit(1 if problems else 0)
    host, port, user, password, cmd = sys.argv[1:6]
    m = login(host, port, user, password)
    if cmd == "snapshot":
        snap = snapshot(m)
        text = json.dumps(snap, sort_keys=True, indent=1)
        if len(sys.argv) > 6:
            with open(sys.argv[6], "w") as f:
                f.write(text)
            for line in lines(snap):
                print(line)
        else:
            print(text)
    elif cmd == "run":
        print(json.dumps(run_ops(m, json.load(sys.stdin))))
    elif cmd == "churn":
        stopfile, seed = sys.argv[6], int(sys.argv[7])
        print(churn(m, stopfile, seed, sys.argv[8:] or ["INBOX"]))
    else:
        raise SystemExit(f"unknown command {cmd}")
    m.logout()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"imap_snapshot.py {' '.join(sys.argv[5:6])}: {type(e).__name__}: {e}", file=sys.stderr)
        for line in TRACE[-60:]:
            print(f"    {line}", file=sys.stderr)
        sys.exit(1)
