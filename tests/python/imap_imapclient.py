#!/usr/bin/env python3
"""Drives tern's IMAP listener with IMAPClient (the PyPI package `imapclient`): a
client library tern did not write, with its own response parser (ENVELOPE,
BODYSTRUCTURE, ACL, QUOTA, VANISHED), used by UIDs as its applications use it.

Usage: imap_imapclient.py HOST IMAP_PORT LMTP_PORT

The user alice (password "secret") must exist with the default mailboxes and an empty
INBOX. Prints "ok" and exits 0 when every check held; otherwise prints each failed
check and exits 1.
"""
import datetime
import smtplib
import sys
import threading
import time

import imapclient

HOST, IMAP_PORT, LMTP_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
FAILED = []


def expect(cond, what):
    if not cond:
        FAILED.append(what)


def deliver(n, word):
    msg = (
        f"From: Sender {n} <s{n}@example.org>\r\nTo: alice@example.org\r\n"
        f"Subject: imapclient {n}\r\nDate: Mon, 0{n} Jun 2025 10:00:00 +0000\r\n"
        f"Message-ID: <ic-{n}@example.org>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/mixed; boundary=b{n}\r\n\r\n"
        f"--b{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {n}, {word}.\r\n"
        f"--b{n}\r\nContent-Type: application/pdf; name=a.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b{n}--\r\n"
    ).encode()
    lmtp = smtplib.LMTP(HOST, LMTP_PORT)
    lmtp.sendmail("sender@example.org", ["alice@localhost"], msg)
    lmtp.quit()
    return b"Return-Path: <sender@example.org>\r\n" + msg


def main():
    stored = {n: deliver(n, "quokka" if n != 2 else "wombat") for n in (1, 2, 3)}
    c = imapclient.IMAPClient(HOST, port=IMAP_PORT, ssl=False, timeout=20)
    c.login("alice", "secret")
    caps = set(c.capabilities())
    for cap in (b"IMAP4REV1", b"IDLE", b"MOVE", b"UIDPLUS", b"QRESYNC", b"MULTIAPPEND"):
        expect(cap in caps, f"CAPABILITY lacks {cap}")
    expect(c.enable("QRESYNC") == [b"QRESYNC"], "ENABLE QRESYNC not confirmed")
    sent = c.find_special_folder(imapclient.imapclient.SENT)
    expect(sent == "Sent", f"the \\Sent folder is {sent!r}")

    info = c.select_folder("INBOX")
    expect(info[b"EXISTS"] == 3, f"SELECT: {info}")
    expect(info.get(b"HIGHESTMODSEQ", 0) > 0, f"SELECT without HIGHESTMODSEQ: {info}")
    uids = c.search()
    expect(uids == [1, 2, 3], f"SEARCH ALL: {uids}")
    got = c.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BODY.PEEK[]", "FLAGS"])
    for uid in uids:
        item = got.get(uid, {})
        env = item.get(b"ENVELOPE")
        expect(env is not None and env.subject == f"imapclient {uid}".encode(),
               f"ENVELOPE of {uid}: {env}")
        expect(env is not None and env.message_id == f"<ic-{uid}@example.org>".encode(),
               f"Message-ID of {uid}: {env}")
        expect(env is not None and env.from_[0].mailbox == f"s{uid}".encode(),
               f"From of {uid}: {env}")
        body = item.get(b"BODYSTRUCTURE")
        expect(body is not None and body.is_multipart and len(body[0]) == 2,
               f"BODYSTRUCTURE of {uid}: {body}")
        expect(item.get(b"BODY[]") == stored[uid], f"BODY[] of {uid} differs from what was delivered")
        expect(item.get(b"RFC822.SIZE") == len(stored[uid]), f"RFC822.SIZE of {uid}")
        expect(b"\\Seen" not in item.get(b"FLAGS", ()), f"PEEK set \\Seen on {uid}")
    part = c.fetch([2], ["BODY.PEEK[1]"]).get(2, {}).get(b"BODY[1]")
    expect(part == b"Hello 2, wombat.", f"BODY[1] of 2: {part!r}")
    expect(c.search(["TEXT", "quokka"]) == [1, 3], "SEARCH TEXT quokka")
    expect(c.search(["FROM", "s2@example.org"]) == [2], "SEARCH FROM")
    expect(c.sort(["REVERSE", "DATE"]) == [3, 2, 1], "SORT REVERSE DATE")

    # Flags, copy, move, append (with a date), MULTIAPPEND.
    c.create_folder("Kept")
    flags = c.add_flags([1, 2], [b"\\Flagged", b"$Work"])
    expect(all(set(f) >= {b"\\Flagged", b"$Work"} for f in flags.values()) and len(flags) == 2,
           f"STORE +FLAGS answer: {flags}")
    c.copy([1], "Kept")
    c.move([2], "Kept")
    expect(c.search() == [1, 3], "MOVE left the message in INBOX")
    when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    c.append("Kept", b"Subject: draft\r\n\r\nnot sent\r\n", flags=[b"\\Draft"], msg_time=when)
    c.multiappend("Kept", [b"Subject: m1\r\n\r\nx\r\n", b"Subject: m2\r\n\r\ny\r\n"])
    status = c.folder_status("Kept", ["MESSAGES", "UIDNEXT"])
    expect(status.get(b"MESSAGES") == 5 and status.get(b"UIDNEXT") == 6, f"STATUS Kept: {status}")
    c.select_folder("Kept", readonly=True)
    dated = c.fetch([3], ["INTERNALDATE", "FLAGS"]).get(3, {})
    expect(dated.get(b"INTERNALDATE") == when.replace(tzinfo=None) or
           dated.get(b"INTERNALDATE") == when.astimezone().replace(tzinfo=None),
           f"INTERNALDATE of the appended draft: {dated}")
    expect(b"\\Draft" in dated.get(b"FLAGS", ()), f"flags of the appended draft: {dated}")
    kept = c.get_flags([1, 2])
    expect(all(b"$Work" in f for f in kept.values()) and len(kept) == 2,
           f"COPY and MOVE kept the flags: {kept}")

    # ACL and quota answers parse.
    acl = dict(c.getacl("INBOX"))
    expect(b"alice" in acl and b"a" in acl[b"alice"], f"GETACL INBOX: {acl}")
    c.setacl("Kept", "bob", "lr")
    acl = dict(c.getacl("Kept"))
    expect(acl.get(b"bob") == b"lr", f"GETACL Kept after SETACL: {acl}")
    roots = c.get_quota_root("INBOX")
    expect(roots[0].quota_roots, f"GETQUOTAROOT INBOX: {roots}")

    # EXPUNGE under QRESYNC: VANISHED, and the new HIGHESTMODSEQ in the tagged OK.
    c.select_folder("INBOX")
    c.delete_messages([1])
    text, responses = c.expunge()
    expect((b"VANISHED", 1) in responses or any(r[0] == b"VANISHED" for r in responses),
           f"EXPUNGE answer: {responses}")
    expect(b"[HIGHESTMODSEQ " in text, f"EXPUNGE under QRESYNC without HIGHESTMODSEQ: {text!r}")

    # IDLE: a delivery while idling is announced.
    threading.Thread(target=lambda: (time.sleep(0.5), deliver(4, "woken"))).start()
    c.idle()
    heard = c.idle_check(timeout=15)
    c.idle_done()
    expect(any(r[1] == b"EXISTS" for r in heard), f"IDLE heard {heard}")
    expect(c.search(["TEXT", "woken"]) == [4], "the delivery during IDLE")

    c.rename_folder("Kept", "Kept2")
    c.delete_folder("Kept2")
    expect(not c.folder_exists("Kept2"), "DELETE left the folder")
    c.logout()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        FAILED.append(f"{type(e).__name__}: {e}")
    if FAILED:
        for f in FAILED:
            print("FAILED:", f)
        sys.exit(1)
    print("ok")
