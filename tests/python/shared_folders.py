#!/usr/bin/env python3
"""The shared namespace seen through Python's imaplib and smtplib.LMTP.

Usage: shared_folders.py HOST IMAP_PORT LMTP_PORT

Expects users alice and root (administrator), password "secret", and the shared
mailboxes lists/team (ACL anyone=lrsp, description "Team list") and private (no ACL),
created by the caller with `tern admin shared create`. Delivers a mailing list's mail
into lists/team over LMTP (`bb+lists/team@` and Cyrus's `+lists/team@`), then checks
what alice and root see. Prints one JSON line on success; on failure every failed check
and the IMAP exchange, exit 1.
"""
import json
import smtplib
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import imapcommon  # noqa: E402
from imapcommon import TracedIMAP4, ok, report_and_exit, require  # noqa: E402

HOST, IMAP_PORT, LMTP_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def login(user):
    m = TracedIMAP4(HOST, IMAP_PORT)
    ok(m.login(user, "secret"), f"LOGIN {user}")
    return m


def list_names(m, pattern="*"):
    names = []
    for line in ok(m.list('""', pattern), "LIST"):
        if isinstance(line, bytes):
            names.append(line.decode().split(' "/" ', 1)[1].strip('"'))
    return names


def message(n):
    return (f"From: list-owner@example.org\r\nTo: team@example.org\r\n"
            f"Subject: team note {n}\r\nMessage-ID: <team-{n}@example.org>\r\n"
            f"List-Id: <team.example.org>\r\n\r\nnote {n}\r\n").encode()


def run(f):
    lmtp = smtplib.LMTP(HOST, LMTP_PORT)
    refused = lmtp.sendmail("list@example.org", ["bb+lists/team@localhost"], message(1))
    f.expect(refused == {}, f"bb+lists/team refused: {refused}")
    refused = lmtp.sendmail("list@example.org", ["+lists/team@localhost"], message(2))
    f.expect(refused == {}, f"+lists/team refused: {refused}")
    for rcpt in ["bb+private@localhost", "bb+nosuch@localhost", "#shared@localhost",
                 "#shared+lists/team@localhost"]:
        try:
            lmtp.sendmail("list@example.org", [rcpt], message(9))
            f.expect(False, f"{rcpt} was accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code = e.recipients[rcpt][0]
            f.expect(code == 550, f"{rcpt}: expected 550, got {e.recipients}")
    lmtp.quit()

    alice = login("alice")
    typ, data = alice.namespace()
    ns = data[0].decode()
    f.expect('(("Shared Folders/" "/"))' in ns, f"NAMESPACE lacks the shared namespace: {ns}")
    names = list_names(alice)
    f.expect("Shared Folders/lists/team" in names, f"alice's LIST lacks the team list: {names}")
    f.expect(not any("private" in n for n in names), f"alice sees private: {names}")
    typ, data = alice.select('"Shared Folders/lists/team"', readonly=True)
    require(typ == "OK", f"EXAMINE team: {typ} {data}")
    f.expect(data == [b"2"], f"team should hold 2 messages: {data}")
    typ, data = alice.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(d[1].decode().strip() for d in data if isinstance(d, tuple))
    f.expect(subjects == ["Subject: team note 1", "Subject: team note 2"], f"{subjects}")
    typ, data = alice.select('"Shared Folders/private"')
    f.expect(typ == "NO", f"alice selected private: {typ} {data}")
    typ, data = alice.create('"Shared Folders/mine"')
    f.expect(typ == "NO", f"alice (no administrator) created a shared mailbox: {typ} {data}")
    typ, data = alice.delete('"Shared Folders/lists/team"')
    f.expect(typ == "NO", f"alice deleted the team list: {typ} {data}")
    typ, data = alice.xatom("GETMETADATA", '"Shared Folders/lists/team"', "/shared/comment")
    text = b" ".join(d if isinstance(d, bytes) else b"".join(d)
                     for d in alice.response("METADATA")[1] if d).decode()
    f.expect("Team list" in text, f"description not readable over METADATA: {text!r}")
    typ, data = alice.myrights('"Shared Folders/lists/team"')
    f.expect(typ == "OK" and b"lrsp" in b" ".join(data), f"MYRIGHTS: {typ} {data}")
    alice.logout()

    root = login("root")
    names = list_names(root)
    f.expect("Shared Folders/private" in names, f"an administrator must see private: {names}")
    ok(root.create('"Shared Folders/archive/2026"'), "root CREATE Shared Folders/archive/2026")
    ok(root.setacl('"Shared Folders/archive/2026"', "alice", "lr"), "root SETACL")
    ok(root.delete('"Shared Folders/private"'), "root DELETE Shared Folders/private")
    root.logout()

    alice = login("alice")
    names = list_names(alice)
    f.expect("Shared Folders/archive/2026" in names, f"alice lacks the archive: {names}")
    # Storing a flag needs more than lrsp: alice may keep \Seen, not set \Flagged.
    ok(alice.select('"Shared Folders/lists/team"'), "SELECT team")
    typ, data = alice.store("1", "+FLAGS", "(\\Seen)")
    f.expect(typ == "OK", f"STORE \\Seen with s: {typ} {data}")
    alice.logout()
    return {"team_messages": 2, "listed": len(names)}


if __name__ == "__main__":
    report_and_exit("shared_folders", run)
