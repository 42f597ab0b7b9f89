#!/usr/bin/env python3
"""Keywords as a mailbox property, seen through Python's imaplib.

Usage: imap_keywords.py HOST IMAP_PORT SCENARIO
       imap_keywords.py HOST IMAP_PORT flags MAILBOX   (prints SELECT's FLAGS and
                                                      PERMANENTFLAGS as one JSON line)

The user alice (password "secret") must exist with the default mailboxes. Checks what a
desktop client's tag list relies on (RFC 3501 7.1, 7.2.6): SELECT lists the mailbox's
keywords in FLAGS and PERMANENTFLAGS, a session with the mailbox selected hears of a new
keyword in an untagged FLAGS before any FETCH shows it, a keyword stays listed when no
message has it any more, and the per-mailbox cap is answered with NO [LIMIT]. On success
it prints one JSON line; on failure every failed check and the IMAP exchange.
"""
import ast
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from imapcommon import (  # noqa: E402
    TRACE, connect, ok, report_and_exit, require, simple_message,
)

HOST, IMAP_PORT, SCENARIO = sys.argv[1], int(sys.argv[2]), sys.argv[3]

SYSTEM = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
CAP = 128


def received_since(mark):
    """The lines the server sent (any connection) since TRACE had `mark` entries."""
    out = []
    for entry in TRACE[mark:]:
        if isinstance(entry, str) and entry.startswith("< b"):
            out.append(ast.literal_eval(entry[2:]).decode(errors="replace"))
    return out


def flag_list(text):
    """'(\\Seen foo)' or '[PERMANENTFLAGS (\\Seen foo)] ...' -> ['\\Seen', 'foo']."""
    start, end = text.index("("), text.index(")")
    return text[start + 1:end].split()


def select_lists(m, name, readonly=False):
    """SELECT (or EXAMINE) `name`; returns (FLAGS list, PERMANENTFLAGS list)."""
    ok(m.select(name, readonly=readonly), f"{'EXAMINE' if readonly else 'SELECT'} {name}")
    _, flags = m.response("FLAGS")
    _, permanent = m.response("PERMANENTFLAGS")
    require(flags and flags[0], f"SELECT {name}: no untagged FLAGS")
    require(permanent and permanent[0], f"SELECT {name}: no [PERMANENTFLAGS]")
    return flag_list(flags[0].decode()), flag_list(permanent[0].decode())


def first(lines, pred):
    for i, line in enumerate(lines):
        if pred(line):
            return i
    return None


def flags_announced_before(f, lines, keywords, then, what):
    """Checks that `lines` hold an untagged FLAGS naming `keywords` (and a PERMANENTFLAGS
    with them) before the first line matching `then`."""
    at = first(lines, lambda l: l.startswith("* FLAGS") and all(k in flag_list(l) for k in keywords))
    perm = first(lines, lambda l: "[PERMANENTFLAGS" in l and all(k in flag_list(l) for k in keywords))
    later = first(lines, then)
    f.expect(at is not None, f"{what}: no untagged FLAGS listing {keywords}: {lines}")
    f.expect(perm is not None, f"{what}: no PERMANENTFLAGS listing {keywords}: {lines}")
    f.expect(later is not None, f"{what}: the expected response is missing: {lines}")
    if at is not None and later is not None:
        f.expect(at < later, f"{what}: FLAGS must come before the response showing the keyword: {lines}")


# --------------------------------------------------------------------------------
def keywords_reach_every_session(f):
    a = connect(HOST, IMAP_PORT)
    ok(a.append("INBOX", None, None, simple_message(1)[1]), "APPEND")
    ok(a.create("Work"), "CREATE Work")
    flags, permanent = select_lists(a, "INBOX")
    f.expect(flags == SYSTEM, f"FLAGS of a mailbox without keywords: {flags}")
    f.expect(permanent == SYSTEM + ["\\*"], f"PERMANENTFLAGS of a new mailbox: {permanent}")
    b = connect(HOST, IMAP_PORT)
    select_lists(b, "INBOX")

    # The session that stores hears of the new keywords before its own FETCH.
    mark = len(TRACE)
    ok(a.store("1", "+FLAGS", "($Label1 foo)"), "STORE +FLAGS ($Label1 foo)")
    flags_announced_before(f, received_since(mark), ["$Label1", "foo"],
                           lambda l: "FETCH" in l and "$Label1" in l, "STORE in session A")
    # The other session, at its next command.
    mark = len(TRACE)
    ok(b.noop(), "NOOP in session B")
    flags_announced_before(f, received_since(mark), ["$Label1", "foo"],
                           lambda l: "FETCH" in l and "$Label1" in l, "NOOP in session B")

    # A keyword arriving with a new message (APPEND by another session).
    ok(a.append("INBOX", "(fromappend)", None, simple_message(2)[1]), "APPEND with a keyword")
    mark = len(TRACE)
    ok(b.noop(), "NOOP in session B after APPEND")
    flags_announced_before(f, received_since(mark), ["$Label1", "foo", "fromappend"],
                           lambda l: l.endswith("EXISTS"), "APPEND seen by session B")

    # Removed from every message: still the mailbox's.
    ok(a.store("1:*", "-FLAGS", "($Label1 foo fromappend)"), "STORE -FLAGS from every message")
    typ, data = a.fetch("1:*", "(FLAGS)")
    f.expect(typ == "OK" and not any(b"$Label1" in (d or b"") for d in data),
             f"the keyword is still on a message: {data}")
    c = connect(HOST, IMAP_PORT)
    flags, permanent = select_lists(c, "INBOX")
    want = SYSTEM + ["$Label1", "foo", "fromappend"]
    f.expect(flags == want, f"FLAGS after the keywords left every message: {flags}, expected {want}")
    f.expect(permanent == want + ["\\*"], f"PERMANENTFLAGS then: {permanent}")
    flags, permanent = select_lists(c, "INBOX", readonly=True)
    f.expect(flags == want, f"FLAGS at EXAMINE: {flags}")
    f.expect(permanent == [], f"PERMANENTFLAGS at EXAMINE must be empty (RFC 3501 6.3.2): {permanent}")

    # COPY brings a keyword into the target's table.
    ok(a.store("1", "+FLAGS", "(tocopy)"), "STORE +FLAGS (tocopy)")
    ok(a.copy("1", "Work"), "COPY 1 Work")
    flags, _ = select_lists(c, "Work")
    f.expect(flags == SYSTEM + ["tocopy"], f"FLAGS of Work after COPY: {flags}")
    for m in (a, b, c):
        m.logout()
    return want


def keyword_cap(f):
    m = connect(HOST, IMAP_PORT)
    ok(m.append("INBOX", None, None, simple_message(1)[1]), "APPEND")
    select_lists(m, "INBOX")
    many = [f"k{i:03}" for i in range(CAP)]
    ok(m.store("1", "+FLAGS", "(" + " ".join(many) + ")"), f"STORE +FLAGS with {CAP} keywords")
    flags, permanent = select_lists(m, "INBOX")
    f.expect(flags == SYSTEM + many, f"FLAGS with {CAP} keywords: {len(flags)} flags")
    f.expect("\\*" not in permanent and len(permanent) == len(SYSTEM) + CAP,
             f"PERMANENTFLAGS at the cap must not offer \\*: {permanent[-3:]}")
    typ, data = m.store("1", "+FLAGS", "(\\Seen onemore)")
    f.expect(typ == "NO" and b"[LIMIT]" in data[0], f"STORE of keyword {CAP + 1}: {typ} {data}")
    typ, data = m.fetch("1", "(FLAGS)")
    f.expect(typ == "OK" and b"\\Seen" not in data[0], f"the refused STORE changed flags: {data}")
    typ, data = m.append("INBOX", "(onemore)", None, simple_message(2)[1])
    f.expect(typ == "NO" and b"[LIMIT]" in data[0], f"APPEND with keyword {CAP + 1}: {typ} {data}")
    # Keywords already defined stay usable.
    ok(m.store("1", "-FLAGS", "(k000)"), "STORE -FLAGS (k000)")
    ok(m.store("1", "+FLAGS", "(k000 \\Seen)"), "STORE +FLAGS (k000) at the cap")
    m.logout()
    return CAP


SCENARIOS = {
    "keywords_reach_every_session": keywords_reach_every_session,
    "keyword_cap": keyword_cap,
}

def flags_of_mailbox(name):
    m = connect(HOST, IMAP_PORT)
    flags, permanent = select_lists(m, name)
    m.logout()
    import json
    print(json.dumps({"flags": flags, "permanentflags": permanent}))


if __name__ == "__main__":
    if SCENARIO == "flags":
        try:
            flags_of_mailbox(sys.argv[4])
        except Exception as e:  # noqa: BLE001
            print(f"flags {sys.argv[4]}: {type(e).__name__}: {e}", file=sys.stderr)
            for line in TRACE[-40:]:
                print(f"    {line}", file=sys.stderr)
            sys.exit(1)
    else:
        report_and_exit(SCENARIO, SCENARIOS[SCENARIO])
