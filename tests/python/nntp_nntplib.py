#!/usr/bin/env python3
"""A newsreader's session with Python's nntplib against tern's NNTP server.

Usage: nntp_nntplib.py HOST NNTP_PORT LMTP_PORT

Expects the user alice (password "secret") and the newsgroups tern.test (anonymous
read, posting by authenticated users, description "Testing") and tern.staff (readable
by logged-in users only), created by the caller with `tern admin newsgroup create`.
Checks what a reader sees: anonymous LIST, login, POST (with and without a
Message-ID, cross-posted), GROUP, OVER, HDR, ARTICLE/HEAD/BODY by number and by
Message-ID with Xref, NEXT/LAST, NEWGROUPS, NEWNEWS, a duplicate refused, and mail
delivered over LMTP into the group (a mailing list archived as news). Prints one JSON
line on success; on failure every failed check, exit 1.
"""
import datetime
import json
import smtplib
import sys
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

HOST, PORT, LMTP_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
FAILS = []


def expect(cond, msg):
    if not cond:
        FAILS.append(msg)
    return cond


def article(subject, groups, extra=b"", body=b"Hello, news.\r\n.a line with a dot\r\n"):
    return (b"From: Alice <alice@example.org>\r\nNewsgroups: " + groups.encode()
            + b"\r\nSubject: " + subject.encode() + b"\r\n" + extra + b"\r\n" + body)


def lines(raw):
    # nntplib sends each element as a line; the last CRLF ends the last one.
    return raw[:-2].split(b"\r\n") if raw.endswith(b"\r\n") else raw.split(b"\r\n")


def run():
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    n = nntplib.NNTP(HOST, PORT, readermode=True)
    expect(n.getwelcome().startswith("200"), f"greeting: {n.getwelcome()}")
    caps = n.getcapabilities()
    for c in ["READER", "POST", "OVER", "HDR", "NEWNEWS", "AUTHINFO"]:
        expect(c in caps, f"CAPABILITIES lacks {c}: {caps}")
    # Anonymous: tern.test only.
    _, groups = n.list()
    names = [g.group for g in groups]
    expect(names == ["tern.test"], f"anonymous LIST: {names}")
    try:
        n.group("tern.staff")
        expect(False, "anonymous GROUP tern.staff was allowed")
    except nntplib.NNTPTemporaryError as e:
        expect(str(e).startswith("480"), f"anonymous GROUP tern.staff: {e}")
    try:
        n.post(lines(article("anon", "tern.test")))
        expect(False, "anonymous POST was accepted")
    except nntplib.NNTPTemporaryError as e:
        expect(str(e).startswith("480"), f"anonymous POST: {e}")

    n.login("alice", "secret", usenetrc=False)
    _, groups = n.list()
    expect([g.group for g in groups] == ["tern.staff", "tern.test"], f"alice's LIST: {groups}")
    expect(n.description("tern.test") == "Testing", f"description: {n.description('tern.test')}")

    resp = n.post(lines(article("first post", "tern.test")))
    expect(resp.startswith("240"), f"POST: {resp}")
    resp = n.post(lines(article("cross-posted", "tern.test, tern.staff",
                                b"Message-ID: <cross-1@example.org>\r\nReferences: <x@y>\r\n")))
    expect(resp.startswith("240") and "<cross-1@example.org>" in resp, f"cross POST: {resp}")
    try:
        n.post(lines(article("again", "tern.test", b"Message-ID: <cross-1@example.org>\r\n")))
        expect(False, "a duplicate Message-ID was accepted")
    except nntplib.NNTPTemporaryError as e:
        expect(str(e).startswith("441"), f"duplicate POST: {e}")

    # A mailing list archived straight into the group over LMTP (bb+news/tern.test@).
    lmtp = smtplib.LMTP(HOST, LMTP_PORT)
    msg = (b"From: list@example.org\r\nTo: list@example.org\r\nSubject: from the list\r\n"
           b"Message-ID: <list-1@example.org>\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\nlist body\r\n")
    expect(lmtp.sendmail("list@example.org", ["bb+news/tern.test@localhost"], msg) == {},
           "LMTP into the newsgroup refused")
    lmtp.quit()

    resp, count, first, last, name = n.group("tern.test")
    expect((count, first, last, name) == (3, 1, 3, "tern.test"), f"GROUP: {resp}")
    _, overviews = n.over((1, 3))
    subjects = [o[1]["subject"] for o in overviews]
    expect(subjects == ["first post", "cross-posted", "from the list"], f"OVER subjects: {subjects}")
    o2 = overviews[1][1]
    expect(o2["message-id"] == "<cross-1@example.org>", f"OVER message-id: {o2}")
    expect(o2["references"] == "<x@y>", f"OVER references: {o2}")
    expect(int(o2[":lines"]) == 2, f"OVER :lines: {o2}")
    _, hdrs = n.xhdr("subject", "1-3")
    expect([h[1] for h in hdrs] == subjects, f"XHDR: {hdrs}")

    _, info = n.article(2)
    text = b"\r\n".join(info.lines)
    expect(info.message_id == "<cross-1@example.org>", f"ARTICLE 2: {info.message_id}")
    expect(b"\r\n.a line with a dot" in text, "dot-stuffing not undone by the client")
    xref = [l for l in info.lines if l.startswith(b"Xref:")]
    expect(xref and b"tern.staff:1" in xref[0] and b"tern.test:2" in xref[0], f"Xref: {xref}")
    expect(any(l.startswith(b"Path: ") for l in info.lines), "no Path header")
    expect(any(l.startswith(b"Injection-Date: ") for l in info.lines), "no Injection-Date")
    _, head = n.head("<list-1@example.org>")
    expect(head.number == 3 and all(l for l in head.lines), f"HEAD by id: {head}")
    _, body = n.body(1)
    expect(body.lines == [b"Hello, news.", b".a line with a dot"], f"BODY 1: {body.lines}")
    resp, num, mid = n.stat(1)
    expect(num == 1, f"STAT 1: {resp}")
    resp, num, mid = n.next()
    expect(num == 2 and mid == "<cross-1@example.org>", f"NEXT: {resp}")
    resp, num, mid = n.last()
    expect(num == 1, f"LAST: {resp}")
    try:
        n.article(99)
        expect(False, "ARTICLE 99 found")
    except nntplib.NNTPTemporaryError as e:
        expect(str(e).startswith("423"), f"ARTICLE 99: {e}")
    try:
        n.article("<nope@example.org>")
        expect(False, "ARTICLE <nope> found")
    except nntplib.NNTPTemporaryError as e:
        expect(str(e).startswith("430"), f"ARTICLE <nope>: {e}")

    _, new = n.newgroups(start)
    expect(sorted(g.group for g in new) == ["tern.staff", "tern.test"], f"NEWGROUPS: {new}")
    _, ids = n.newnews("tern.*", start)
    expect(set(ids) >= {"<cross-1@example.org>", "<list-1@example.org>"}, f"NEWNEWS: {ids}")
    _, ids = n.newnews("tern.*", datetime.datetime(2037, 1, 1))
    expect(ids == [], f"NEWNEWS from the future: {ids}")
    _, fmt = n._longcmdstring("LIST OVERVIEW.FMT")
    expect(fmt[:5] == ["Subject:", "From:", "Date:", "Message-ID:", "References:"], f"OVERVIEW.FMT: {fmt}")
    expect(n.date()[0].startswith("111"), "DATE")
    n.quit()
    return {"articles": 3}


if __name__ == "__main__":
    try:
        extra = run()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        FAILS.append(f"stopped: {type(e).__name__}: {e}")
    if FAILS:
        print("nntplib: %d check(s) failed:" % len(FAILS), file=sys.stderr)
        for f in FAILS:
            print("  - " + f, file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"ok": True, "extra": extra}))
