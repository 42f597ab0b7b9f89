#!/usr/bin/env python3
"""The client side of tests/convergence.rs: random IMAP and LMTP operations on one side
of a replication pair, observations of what a client sees, and the invariants checked
on them. The Rust test runs the servers, `tern sync` and the kills; this script keeps a
model of what clients saw in a JSON state file between its runs.

Usage:
  convergence.py ops STATE SEED PHASE SIDE HOST IMAP_PORT LMTP_PORT COUNT
      COUNT random operations as alice on SIDE (master or replica), seeded by
      (SEED, PHASE, SIDE); then an observation of that side.
  convergence.py observe STATE LABEL SIDE HOST IMAP_PORT
      An observation of SIDE, kept under LABEL (the last one per label and side).
  convergence.py check STATE
      The no-loss and no-duplicate invariants over the observations "base" (both sides
      in step before the cut), "cut" (each side at the end of the cut) and "final".
  `check` prints every violation found by any command (one per line, "VIOLATION ...")
  and exits 1 when there is any; the other commands exit 0 unless they fail (exit 2).

What is checked at every observation of a side (RFC 3501 2.3.1.1, RFC 7162 3.1.2):
  - a UID a client saw holding a message (by SHA-1 of its content) under a mailbox
    name and UIDVALIDITY never holds another message on that side later;
  - a UID a client saw expunged never holds a message again under that UIDVALIDITY;
  - UIDNEXT and HIGHESTMODSEQ of a (name, UIDVALIDITY) never go down.
"""
import hashlib
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from imapcommon import (  # noqa: E402
    TRACE, deliver, fetch_by_uid, ok, parse_list, quote,
)
from imap_snapshot import login, snapshot  # noqa: E402

USER, PASSWORD = "alice", "secret"
POOL = ["A", "B", "C", "D", "A/E"]
SYSTEM = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]
KEYWORDS = ["$Label1", "foo", "Work"]


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"seen": {}, "gone": [], "max": {}, "created": {}, "removed": [],
            "obs": {}, "violations": [], "n": 0}


def save(path, st):
    with open(path + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(path + ".tmp", path)


def key(side, name, uv, uid):
    return f"{side}\t{name}\t{uv}\t{uid}"


def saw(st, side, name, uv, uid, sha1, why):
    """A client on `side` saw `uid` of (name, uv) holding the message `sha1`."""
    k = key(side, name, uv, uid)
    if k in st["gone"]:
        st["violations"].append(
            f"VIOLATION {side}: {name} (UIDVALIDITY {uv}) UID {uid} was seen expunged, "
            f"now holds {sha1[:12]} ({why})")
    old = st["seen"].get(k)
    if old is not None and old != sha1:
        st["violations"].append(
            f"VIOLATION {side}: {name} (UIDVALIDITY {uv}) UID {uid} held {old[:12]}, "
            f"now holds {sha1[:12]} ({why})")
    st["seen"][k] = sha1


def observe(st, side, host, port, label):
    m = login(host, port, USER, PASSWORD)
    snap = snapshot(m)
    m.logout()
    counts = {}
    for name, mb in snap["mailboxes"].items():
        s = mb["status"]
        uv = s["UIDVALIDITY"]
        mk = f"{side}\t{name}\t{uv}"
        prev = st["max"].get(mk, {})
        for item in ("UIDNEXT", "HIGHESTMODSEQ"):
            if item in prev and s[item] < prev[item]:
                st["violations"].append(
                    f"VIOLATION {side}: {name} (UIDVALIDITY {uv}) {item} went down from "
                    f"{prev[item]} to {s[item]} ({label})")
            prev[item] = max(prev.get(item, 0), s[item])
        st["max"][mk] = prev
        present = set()
        for uid, msg in mb["messages"].items():
            present.add(int(uid))
            saw(st, side, name, uv, int(uid), msg["sha1"], f"observation {label}")
            mid = msg["message_id"]
            counts[mid] = counts.get(mid, 0) + 1
        # UIDs seen before, below UIDNEXT and no longer there: seen expunged.
        prefix = f"{side}\t{name}\t{uv}\t"
        gone = set(st["gone"])
        for k in list(st["seen"]):
            if k.startswith(prefix) and int(k[len(prefix):]) not in present:
                gone.add(k)
        st["gone"] = sorted(gone)
    st["obs"][f"{label}\t{side}"] = {"counts": counts, "snap": snap_lines(snap)}


def snap_lines(snap):
    out = []
    for name, mb in sorted(snap["mailboxes"].items()):
        s = mb["status"]
        out.append(f"{name} uv={s['UIDVALIDITY']} next={s['UIDNEXT']} hms={s['HIGHESTMODSEQ']}")
        for uid, msg in sorted(mb["messages"].items(), key=lambda kv: int(kv[0])):
            out.append(f"  {uid} {msg['message_id']} [{msg['flags']}]")
    return out


class Side:
    def __init__(self, st, side, host, port, lmtp_port, rnd, tag):
        self.st, self.side, self.host, self.lmtp_port = st, side, host, int(lmtp_port)
        self.rnd, self.tag = rnd, tag
        self.m = login(host, port, USER, PASSWORD)
        self.log = []

    def names(self):
        out = []
        for attrs, _, name in parse_list(ok(self.m.list('""', "*"), "LIST")):
            if not {a.lower() for a in attrs} & {"\\noselect", "\\nonexistent"}:
                out.append(name)
        return out

    def new_message(self):
        self.st["n"] += 1
        mid = f"<cv-{self.tag}-{self.st['n']}@example.org>"
        body = " ".join(self.rnd.choice(["lorem", "ipsum", "dolor", "sit", "amet"])
                        for _ in range(self.rnd.randint(3, 30)))
        text = (f"From: a@example.org\r\nTo: alice@example.org\r\nSubject: {mid}\r\n"
                f"Message-ID: {mid}\r\n\r\n{body}\r\n").encode()
        return mid, text

    def created(self, mid, n=1):
        c = self.st["created"].setdefault(self.side, {})
        c[mid] = c.get(mid, 0) + n

    def removed(self, mids):
        self.st["removed"] = sorted(set(self.st["removed"]) | set(mids))

    def select(self, name):
        typ, _ = self.m.select(quote(name))
        if typ != "OK":
            return None
        return int(self.m.response("UIDVALIDITY")[1][0])

    def messages(self, name, uv, uids=None):
        """{uid: message-id} of `uids` (all when None), each recorded as seen."""
        which = ",".join(map(str, uids)) if uids else "1:*"
        typ, data = self.m.uid("FETCH", which, "(UID BODY.PEEK[])")
        out = {}
        if typ == "OK" and data != [None]:
            for uid, items in fetch_by_uid(data).items():
                body = items.get("BODY[]") or b""
                found = re.search(rb"(?im)^Message-ID:\s*(\S+)", body)
                out[uid] = found.group(1).decode() if found else ""
                saw(self.st, self.side, name, uv, uid, hashlib.sha1(body).hexdigest(),
                    "fetched by the operations")
        return out

    def pick_messages(self, names):
        """A mailbox with messages, selected: (name, uv, {uid: mid}, chosen uids)."""
        for _ in range(4):
            name = self.rnd.choice(names)
            uv = self.select(name)
            if uv is None:
                continue
            msgs = self.messages(name, uv)
            if msgs:
                k = self.rnd.randint(1, min(3, len(msgs)))
                return name, uv, msgs, sorted(self.rnd.sample(sorted(msgs), k))
        return None

    def op(self):
        rnd, m = self.rnd, self.m
        names = self.names()
        others = [n for n in names if n != "INBOX"]
        kind = rnd.choices(
            ["deliver", "append", "flags", "keywords", "expunge", "copy", "move", "create",
             "rename", "delete", "recreate", "subscribe", "setacl"],
            [12, 10, 10, 6, 8, 6, 5, 6, 4, 3, 3, 3, 3])[0]
        if kind == "deliver":
            mid, text = self.new_message()
            deliver(self.host, self.lmtp_port, [("s@example.org", text)],
                    rcpt="alice@example.org")
            self.created(mid)
            return f"deliver {mid}"
        if kind == "append":
            name = rnd.choice(names)
            mid, text = self.new_message()
            flags = "(" + " ".join(rnd.sample(SYSTEM + KEYWORDS, rnd.randint(0, 2))) + ")"
            typ, data = m.append(quote(name), flags, None, text)
            if typ != "OK":
                return f"append {name}: {typ}"
            self.created(mid)
            code = re.search(rb"APPENDUID (\d+) (\d+)", b" ".join(
                d for d in data if isinstance(d, bytes)))
            if code:
                saw(self.st, self.side, name, int(code.group(1)), int(code.group(2)),
                    hashlib.sha1(text).hexdigest(), "APPENDUID")
            return f"append {mid} to {name}"
        if kind in ("flags", "keywords", "expunge", "copy", "move"):
            got = self.pick_messages(names)
            if got is None:
                return f"{kind}: no message"
            name, uv, msgs, uids = got
            which = ",".join(map(str, uids))
            if kind in ("flags", "keywords"):
                pool = SYSTEM if kind == "flags" else KEYWORDS
                flags = "(" + " ".join(rnd.sample(pool, rnd.randint(1, 2))) + ")"
                item = rnd.choice(["+FLAGS", "-FLAGS"])
                ok(m.uid("STORE", which, item, flags), f"STORE {which} {item} {flags}")
                return f"{kind} {name} {which} {item} {flags}"
            if kind == "expunge":
                ok(m.uid("STORE", which, "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
                ok(m.uid("EXPUNGE", which), "UID EXPUNGE")
                self.removed([msgs[u] for u in uids])
                return f"expunge {name} {which}"
            dest = rnd.choice([n for n in names if n != name] or [name])
            typ, _ = m.uid("COPY" if kind == "copy" else "MOVE", which, quote(dest))
            if typ == "OK":
                for u in uids:
                    self.created(msgs[u])
            return f"{kind} {name} {which} -> {dest}: {typ}"
        if kind == "create":
            free = [n for n in POOL if n not in names]
            if not free:
                return "create: none free"
            name = rnd.choice(free)
            return f"create {name}: {m.create(quote(name))[0]}"
        if kind in ("rename", "delete", "recreate"):
            if not others:
                return f"{kind}: nothing"
            name = rnd.choice(others)
            if kind == "rename":
                free = [n for n in POOL if n not in names and not n.startswith(name + "/")]
                if not free:
                    return "rename: none free"
                dest = rnd.choice(free)
                return f"rename {name} -> {dest}: {m.rename(quote(name), quote(dest))[0]}"
            # What the deleted mailbox (and, if the server takes them along, its
            # children) held is removed by this client.
            gone = []
            for n in names:
                if n == name or n.startswith(name + "/"):
                    uv = self.select(n)
                    if uv is not None:
                        gone += list(self.messages(n, uv).values())
                        m.close()
            typ = m.delete(quote(name))[0]
            if typ == "OK":
                self.removed(gone)
            text = f"delete {name}: {typ}"
            if kind == "recreate":
                text += f"; create {name}: {m.create(quote(name))[0]}"
            return text
        if kind == "subscribe":
            name = rnd.choice(names + ["Nonexistent"])
            verb = rnd.choice(["subscribe", "unsubscribe"])
            return f"{verb} {name}: {getattr(m, verb)(quote(name))[0]}"
        if kind == "setacl":
            name = rnd.choice(names)
            who = rnd.choice(["bob", "anyone"])
            rights = rnd.choice(["lr", "lrs", "lrsw", None])
            if rights is None:
                return f"deleteacl {name} {who}: {m.deleteacl(quote(name), who)[0]}"
            return f"setacl {name} {who} {rights}: {m.setacl(quote(name), who, rights)[0]}"
        raise AssertionError(kind)

    def run(self, count):
        for _ in range(count):
            if self.m.state == "SELECTED":
                self.m.close()
            self.log.append(self.op())
        self.m.logout()


def report(st):
    for v in st["violations"]:
        print(v)
    return 1 if st["violations"] else 0


def check(st):
    obs = st["obs"]
    base = obs.get("base\tmaster", {}).get("counts", {})
    cut = {s: obs.get(f"cut\t{s}", {}).get("counts", {}) for s in ("master", "replica")}
    final = {s: obs.get(f"final\t{s}", {}).get("counts", {}) for s in ("master", "replica")}
    removed = set(st["removed"])
    created = st["created"]
    every = set(base) | set(cut["master"]) | set(cut["replica"])
    for mid in sorted(every | set(final["master"]) | set(final["replica"])):
        want = max(cut["master"].get(mid, 0), cut["replica"].get(mid, 0))
        bound = (base.get(mid, 0) + created.get("master", {}).get(mid, 0)
                 + created.get("replica", {}).get(mid, 0))
        for side in ("master", "replica"):
            have = final[side].get(mid, 0)
            if mid not in removed and have < want:
                st["violations"].append(
                    f"VIOLATION lost: {mid} has {have} copies on the {side} after healing; "
                    f"{want} at the end of the cut, and no client removed it")
            if have > bound:
                st["violations"].append(
                    f"VIOLATION duplicated: {mid} has {have} copies on the {side}; at most "
                    f"{bound} were ever made")


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    st = load(path)
    try:
        if cmd == "ops":
            seed, phase, side, host, port, lmtp, count = sys.argv[3:10]
            rnd = random.Random(f"{seed}-{phase}-{side}")
            s = Side(st, side, host, int(port), lmtp, rnd, f"{seed}-{side}-{phase}")
            try:
                s.run(int(count))
            finally:
                for line in s.log:
                    print(f"{side} {phase}: {line}", file=sys.stderr)
            observe(st, side, host, int(port), phase)
        elif cmd == "observe":
            label, side, host, port = sys.argv[3:7]
            observe(st, side, host, int(port), label)
        elif cmd == "check":
            check(st)
            for label in ("base", "cut", "final"):
                for side in ("master", "replica"):
                    o = st["obs"].get(f"{label}\t{side}")
                    if o and st["violations"]:
                        print(f"--- {label} {side}", file=sys.stderr)
                        for line in o["snap"]:
                            print(f"    {line}", file=sys.stderr)
        else:
            raise SystemExit(f"unknown command {cmd}")
    finally:
        save(path, st)
    # Violations are collected as they are seen and reported by `check`, so that one run
    # shows all of them, from the first observation that broke a rule to the end.
    sys.exit(report(st) if cmd == "check" else 0)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        print(f"convergence.py {' '.join(sys.argv[1:2])}: {type(e).__name__}: {e}",
              file=sys.stderr)
        for line in TRACE[-40:]:
            print(f"    {line}", file=sys.stderr)
        sys.exit(2)
