#!/usr/bin/env python3
"""Drives tern's IMAP listener with Python's imaplib (a client tern did not write).

Usage: imap_imaplib.py HOST IMAP_PORT LMTP_PORT SCENARIO

The user alice (password "secret") must exist with the default mailboxes. Each scenario
checks what a user of an IMAP client would notice. On success it prints one JSON line
({"scenario": ..., "ok": true, "extra": ...}); on failure it prints every failed check
and the last lines of the IMAP exchange to stderr and exits 1.
"""
import datetime
import hashlib
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from imapcommon import (  # noqa: E402
    SAMPLES, connect, deliver, fetch_by_uid, flags_of, mutf7, ok, parse_fetch, parse_list,
    parse_status, parse_uid_set, quote, report_and_exit, require, response_code,
    search_result, simple_message, imaplib,
)

HOST, IMAP_PORT, LMTP_PORT, SCENARIO = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def select(m, name, f=None):
    """SELECT; returns (exists, uidvalidity, uidnext)."""
    data = ok(m.select(name), f"SELECT {name}")
    exists = int(data[0])
    uidvalidity = m.response("UIDVALIDITY")[1]
    uidnext = m.response("UIDNEXT")[1]
    require(uidvalidity and uidvalidity[0], f"SELECT {name}: no [UIDVALIDITY] response code")
    return (exists, int(uidvalidity[0]), int(uidnext[0]) if uidnext and uidnext[0] else None)


def uids_in_mailbox(m):
    typ, data = m.fetch("1:*", "(UID)")
    if typ != "OK" or data == [None]:
        return []
    return sorted(fetch_by_uid(data))


# --------------------------------------------------------------------------------
def login_capability_list_logout(f):
    m = connect(HOST, IMAP_PORT, login=False)
    pre = set(m.capabilities)
    f.expect("IMAP4REV1" in pre, f"greeting/CAPABILITY lacks IMAP4rev1: {pre}")
    f.expect("LOGINDISABLED" not in pre, "LOGIN is disabled")
    try:
        m.login(USER_WRONG[0], USER_WRONG[1])
        f.expect(False, "LOGIN with a wrong password was accepted")
    except imaplib.IMAP4.error as e:
        f.expect("AUTHENTICATIONFAILED" in str(e),
                 f"wrong password: NO without [AUTHENTICATIONFAILED] (RFC 5530): {e}")
    typ, _ = m.login("alice", "secret")
    require(typ == "OK", "LOGIN alice failed")
    data = ok(m.capability(), "CAPABILITY")
    caps = set(data[0].decode().upper().split())
    for c in ["IMAP4REV1", "UIDPLUS", "MOVE", "IDLE", "NAMESPACE", "LITERAL+"]:
        f.expect(c in caps, f"CAPABILITY after login lacks {c}: {sorted(caps)}")
    listed = parse_list(ok(m.list('""', "*"), "LIST"))
    names = {n for _, _, n in listed}
    for want in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]:
        f.expect(want in names, f"LIST \"\" * lacks {want}: {sorted(names)}")
    f.expect(len(names) == len(listed), f"LIST returned a mailbox twice: {listed}")
    delims = {d for _, d, _ in listed}
    f.expect(delims == {"/"}, f"hierarchy delimiter is not '/': {delims}")
    # The delimiter query of RFC 3501 6.3.8.
    root = parse_list(ok(m.list('""', '""'), 'LIST "" ""'))
    f.expect(len(root) == 1 and root[0][1] == "/" and "\\Noselect" in root[0][0],
             f'LIST "" "" should give (\\Noselect) "/" "": {root}')
    inbox_only = parse_list(ok(m.list('""', "inbox"), 'LIST "" inbox'))
    f.expect([n for _, _, n in inbox_only] == ["INBOX"], f"LIST of 'inbox' (any case): {inbox_only}")
    typ, data = m.logout()
    f.expect(typ == "BYE", f"LOGOUT: expected an untagged BYE, got {typ} {data}")
    return sorted(names)


USER_WRONG = ("alice", "not-the-password")


# --------------------------------------------------------------------------------
def select_and_fetch_metadata(f):
    before = time.time()
    stored = deliver(HOST, LMTP_PORT, SAMPLES)
    after = time.time()
    m = connect(HOST, IMAP_PORT)
    exists, uidvalidity, uidnext = select(m, "INBOX")
    f.expect(exists == 3, f"SELECT INBOX: {exists} EXISTS, expected 3")
    f.expect(uidnext == 4, f"SELECT INBOX: UIDNEXT {uidnext}, expected 4")
    f.expect(uidvalidity > 0, "UIDVALIDITY 0")
    data = ok(m.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"), "FETCH 1:*")
    by_uid = fetch_by_uid(data)
    require(sorted(by_uid) == [1, 2, 3], f"FETCH 1:* UIDs {sorted(by_uid)}, expected [1, 2, 3]")
    for uid, items in by_uid.items():
        f.expect(items["SEQ"] == uid, f"uid {uid} has sequence number {items['SEQ']}")
        f.expect(flags_of(items) == set(), f"uid {uid}: a new message has flags {flags_of(items)}")
        f.expect(int(items.get("RFC822.SIZE", -1)) == len(stored[uid - 1]),
                 f"uid {uid}: RFC822.SIZE {items.get('RFC822.SIZE')} but the stored message is "
                 f"{len(stored[uid - 1])} bytes")
        idate = items.get("INTERNALDATE")
        try:
            when = datetime.datetime.strptime(idate.decode().strip(), "%d-%b-%Y %H:%M:%S %z").timestamp()
            f.expect(before - 2 <= when <= after + 2,
                     f"uid {uid}: INTERNALDATE {idate} is not the delivery time")
        except (ValueError, AttributeError) as e:
            f.expect(False, f"uid {uid}: INTERNALDATE {idate!r} unparseable: {e}")
        f.expect(isinstance(items.get("ENVELOPE"), list) and len(items["ENVELOPE"]) == 10,
                 f"uid {uid}: ENVELOPE is not a 10-element list: {items.get('ENVELOPE')!r}")
    env1 = by_uid[1]["ENVELOPE"]
    f.expect(env1[0] == b"Mon, 03 Jun 2024 12:30:00 +0200", f"ENVELOPE date: {env1[0]!r}")
    f.expect(env1[1] == b"Lunch on Friday?", f"ENVELOPE subject: {env1[1]!r}")
    f.expect(env1[2] == [[b"Bob Example", None, b"bob", b"example.org"]], f"ENVELOPE from: {env1[2]!r}")
    f.expect(env1[3] == env1[2] and env1[4] == env1[2],
             f"ENVELOPE sender/reply-to must default to From (RFC 3501 7.4.2): {env1[3]!r} {env1[4]!r}")
    f.expect(env1[5] == [[b"Alice", None, b"alice", b"example.org"]], f"ENVELOPE to: {env1[5]!r}")
    f.expect(env1[6] is None and env1[7] is None and env1[8] is None, f"ENVELOPE cc/bcc/in-reply-to: {env1!r}")
    f.expect(env1[9] == b"<lunch-1@example.org>", f"ENVELOPE message-id: {env1[9]!r}")
    env2 = by_uid[2]["ENVELOPE"]
    f.expect(env2[1] == b"=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=",
             f"ENVELOPE subject must be the raw header, not decoded: {env2[1]!r}")
    env3 = by_uid[3]["ENVELOPE"]
    f.expect(env3[5] == [[None, None, b"alice", b"example.org"], [b"Bob", None, b"bob", b"example.org"]],
             f"ENVELOPE to with two addresses: {env3[5]!r}")
    # UID FETCH by UID range, as clients resynchronise.
    typ, data = m.uid("FETCH", "2:*", "(FLAGS)")
    f.expect(typ == "OK" and sorted(fetch_by_uid(data)) == [2, 3], f"UID FETCH 2:* gave {typ} {data}")
    m.logout()


# --------------------------------------------------------------------------------
def fetch_body_bytes(f):
    stored = deliver(HOST, LMTP_PORT, SAMPLES)
    m = connect(HOST, IMAP_PORT)
    select(m, "INBOX")
    data = ok(m.fetch("1:*", "(UID BODY.PEEK[])"), "FETCH BODY.PEEK[]")
    by_uid = fetch_by_uid(data)
    require(sorted(by_uid) == [1, 2, 3], f"UIDs {sorted(by_uid)}")
    for uid, items in by_uid.items():
        body = items.get("BODY[]")
        f.expect(body == stored[uid - 1],
                 f"uid {uid}: BODY[] differs from what was delivered (+Return-Path):\n"
                 f"    got      {body!r}\n    expected {stored[uid - 1]!r}")
    flags = fetch_by_uid(ok(m.fetch("1:*", "(UID FLAGS)"), "FETCH FLAGS"))
    f.expect(all("\\Seen" not in flags_of(v) for v in flags.values()),
             f"BODY.PEEK[] set \\Seen: {flags}")
    # Header and text sections add up to the whole message.
    parts = fetch_by_uid(ok(m.fetch("2", "(UID BODY.PEEK[HEADER] BODY.PEEK[TEXT])"), "FETCH sections"))[2]
    f.expect(parts.get("BODY[HEADER]", b"") + parts.get("BODY[TEXT]", b"") == stored[1],
             f"BODY[HEADER] + BODY[TEXT] != the message: {parts!r}")
    f.expect(parts.get("BODY[HEADER]", b"").endswith(b"\r\n\r\n"), "BODY[HEADER] must end with the blank line")
    part = fetch_by_uid(ok(m.fetch("3", "(UID BODY.PEEK[1])"), "FETCH BODY.PEEK[1]"))[3]
    f.expect(part.get("BODY[1]") == b"Here are the holiday pictures, enjoy.",
             f"BODY[1] of the multipart message: {part.get('BODY[1]')!r}")
    partial = fetch_by_uid(ok(m.fetch("1", "(UID BODY.PEEK[]<0.10>)"), "FETCH partial"))[1]
    f.expect(partial.get("BODY[]<0>") == stored[0][:10], f"BODY.PEEK[]<0.10>: {partial!r}")
    # A non-peek fetch sets \Seen, and the server tells the client.
    data = ok(m.fetch("1", "(BODY[])"), "FETCH BODY[]")
    items = {}
    for _, d in parse_fetch(data):
        items.update(d)
    f.expect(items.get("BODY[]") == stored[0], "FETCH BODY[] content")
    f.expect("\\Seen" in flags_of(items), f"FETCH BODY[] did not report FLAGS (\\Seen): {items.keys()}")
    flags = fetch_by_uid(ok(m.fetch("1:*", "(UID FLAGS)"), "FETCH FLAGS"))
    f.expect([uid for uid, v in sorted(flags.items()) if "\\Seen" in flags_of(v)] == [1],
             f"after FETCH 1 BODY[] the \\Seen messages are {flags}")
    m.logout()


# --------------------------------------------------------------------------------
def store_flags(f):
    deliver(HOST, LMTP_PORT, SAMPLES)
    m = connect(HOST, IMAP_PORT)
    select(m, "INBOX")
    data = ok(m.store("1", "+FLAGS", "(\\Seen \\Flagged)"), "STORE +FLAGS")
    got = {seq: d for seq, d in parse_fetch(data)}
    f.expect(1 in got and flags_of(got[1]) == {"\\Seen", "\\Flagged"},
             f"STORE 1 +FLAGS (\\Seen \\Flagged) answered {data}")
    data = ok(m.store("1", "-FLAGS", "(\\Flagged)"), "STORE -FLAGS")
    got = {seq: d for seq, d in parse_fetch(data)}
    f.expect(1 in got and flags_of(got[1]) == {"\\Seen"}, f"STORE 1 -FLAGS (\\Flagged) answered {data}")
    data = ok(m.store("2", "+FLAGS", "($Important Work)"), "STORE keywords")
    got = {seq: d for seq, d in parse_fetch(data)}
    f.expect(2 in got and flags_of(got[2]) == {"$Important", "Work"}, f"STORE 2 +FLAGS keywords answered {data}")
    typ, data = m.uid("STORE", "3", "+FLAGS.SILENT", "(\\Answered)")
    f.expect(typ == "OK", f"UID STORE +FLAGS.SILENT: {typ}")
    f.expect(data == [None], f"+FLAGS.SILENT must not send FETCH for the change: {data}")
    ok(m.store("2", "FLAGS", "(\\Draft)"), "STORE FLAGS (replace)")
    m.logout()
    # Another session sees what stuck.
    m = connect(HOST, IMAP_PORT)
    select(m, "INBOX")
    flags = fetch_by_uid(ok(m.fetch("1:*", "(UID FLAGS)"), "FETCH FLAGS"))
    want = {1: {"\\Seen"}, 2: {"\\Draft"}, 3: {"\\Answered"}}
    f.expect({u: flags_of(v) for u, v in flags.items()} == want,
             f"flags in a new session: {({u: flags_of(v) for u, v in flags.items()})}, expected {want}")
    # A read-only session refuses STORE.
    ok(m.select("INBOX", readonly=True), "EXAMINE")
    typ, _ = m.store("1", "+FLAGS", "(\\Flagged)")
    f.expect(typ == "NO", f"STORE in an EXAMINEd mailbox answered {typ}")
    m.logout()


# --------------------------------------------------------------------------------
def search(f):
    # uid 1 is expunged so that sequence numbers and UIDs differ: seq n = uid n+1.
    msgs = [simple_message(0, "to be removed")] + SAMPLES
    deliver(HOST, LMTP_PORT, msgs)
    m = connect(HOST, IMAP_PORT)
    select(m, "INBOX")
    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    ok(m.expunge(), "EXPUNGE")
    ok(m.store("1", "+FLAGS", "(\\Seen)"), "STORE \\Seen")
    ok(m.store("3", "+FLAGS", "(\\Flagged)"), "STORE \\Flagged")

    def s(*criteria, uid=False, charset=None, literal=None):
        if literal is not None:
            m.literal = literal
        if uid:
            typ, data = m.uid("SEARCH", *(["CHARSET", charset] if charset else []), *criteria)
        else:
            typ, data = m.search(charset, *criteria)
        if typ != "OK":
            return f"{typ} {data}"
        return search_result(data)

    cases = [
        ("SEARCH UNSEEN", s("UNSEEN"), [2, 3]),
        ("SEARCH SEEN", s("SEEN"), [1]),
        ("SEARCH FLAGGED", s("FLAGGED"), [3]),
        ("SEARCH ALL", s("ALL"), [1, 2, 3]),
        ("SEARCH FROM carol", s("FROM", "carol"), [2]),
        ("SEARCH FROM \"Bob Example\"", s("FROM", '"Bob Example"'), [1]),
        ("SEARCH TO bob (second address)", s("TO", "bob@example.org"), [3]),
        ("SEARCH SUBJECT lunch (case-insensitive)", s("SUBJECT", "lunch"), [1]),
        ("SEARCH SUBJECT \"holiday\"", s("SUBJECT", '"holiday"'), [3]),
        ("SEARCH BODY ramen", s("BODY", "ramen"), [1]),
        ("SEARCH BODY pictures (text part of a multipart)", s("BODY", "pictures"), [3]),
        ("SEARCH BODY lunch (only in the subject)", s("BODY", "lunch"), []),
        ("SEARCH TEXT lunch", s("TEXT", "lunch"), [1]),
        ("SEARCH HEADER Message-ID report-2", s("HEADER", "Message-ID", "report-2"), [2]),
        ("SEARCH CHARSET UTF-8 BODY über (8-bit body)", s("BODY", charset="UTF-8", literal="über".encode()), [2]),
        ("SEARCH CHARSET UTF-8 SUBJECT grüße (RFC 2047 subject)",
         s("SUBJECT", charset="UTF-8", literal="grüße".encode()), [2]),
        ("SEARCH OR FROM bob FROM dave", s("OR", "FROM", "bob", "FROM", "dave"), [1, 3]),
        ("SEARCH NOT FROM bob", s("NOT", "FROM", "bob"), [2, 3]),
        ("SEARCH UNSEEN NOT FLAGGED", s("UNSEEN", "NOT", "FLAGGED"), [2]),
        ("SEARCH LARGER 600", s("LARGER", "600"), [3]),
        ("SEARCH 2:*", s("2:*"), [2, 3]),
        ("SEARCH UID 3:4 (gives sequence numbers)", s("UID", "3:4"), [2, 3]),
        ("UID SEARCH UID 3:* (gives UIDs)", s("UID", "3:*", uid=True), [3, 4]),
        ("UID SEARCH 1:2 (sequence numbers in, UIDs out)", s("1:2", uid=True), [2, 3]),
        ("UID SEARCH UID 1:2 (uid 1 expunged)", s("UID", "1:2", uid=True), [2]),
        ("UID SEARCH UID 100:* (* is the highest UID, 4)", s("UID", "100:*", uid=True), [4]),
        ("UID SEARCH UNSEEN", s("UNSEEN", uid=True), [3, 4]),
        ("SEARCH SENTSINCE 4-Jun-2024", s("SENTSINCE", "4-Jun-2024"), [2, 3]),
        ("SEARCH SENTBEFORE 4-Jun-2024", s("SENTBEFORE", "4-Jun-2024"), [1]),
    ]
    for name, got, want in cases:
        f.expect(got == want, f"{name}: got {got}, expected {want}")
    m.logout()


# --------------------------------------------------------------------------------
def append(f):
    m = connect(HOST, IMAP_PORT)
    msg = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: draft\r\n"
           b"Date: Fri, 01 Mar 2024 09:15:00 +0100\r\n\r\nunfinished thoughts\r\n")
    when = datetime.datetime(2024, 3, 1, 9, 15, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    typ, data = m.append("Drafts", "(\\Draft \\Seen)", imaplib.Time2Internaldate(when), msg)
    require(typ == "OK", f"APPEND Drafts: {typ} {data}")
    appenduid = response_code(data[0], "APPENDUID")
    f.expect(appenduid is not None, f"APPEND completed without [APPENDUID] (UIDPLUS): {data}")
    _, status = parse_status(ok(m.status("Drafts", "(MESSAGES UIDVALIDITY UIDNEXT)"), "STATUS Drafts"))
    f.expect(status.get("MESSAGES") == 1, f"STATUS Drafts after APPEND: {status}")
    if appenduid:
        v, u = (int(x) for x in appenduid.split())
        f.expect(v == status.get("UIDVALIDITY"), f"APPENDUID uidvalidity {v} != STATUS {status}")
        f.expect(u == 1 and status.get("UIDNEXT") == 2, f"APPENDUID uid {u}, STATUS {status}")
    select(m, "Drafts")
    items = fetch_by_uid(ok(m.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"), "FETCH"))
    require(1 in items, f"no uid 1 in Drafts: {items}")
    it = items[1]
    f.expect(flags_of(it) == {"\\Draft", "\\Seen"}, f"APPENDed flags: {flags_of(it)}")
    f.expect(it.get("BODY[]") == msg, f"APPENDed message changed: {it.get('BODY[]')!r}")
    f.expect(int(it.get("RFC822.SIZE", -1)) == len(msg), f"RFC822.SIZE {it.get('RFC822.SIZE')} != {len(msg)}")
    try:
        got = datetime.datetime.strptime(it["INTERNALDATE"].decode().strip(), "%d-%b-%Y %H:%M:%S %z")
        f.expect(got == when, f"INTERNALDATE {it['INTERNALDATE']} != APPEND date {when}")
    except (KeyError, ValueError) as e:
        f.expect(False, f"INTERNALDATE: {e}")
    # APPEND to the selected mailbox: the client hears of the new message.
    typ, data = m.append("Drafts", None, None, b"Subject: second\r\n\r\nx\r\n")
    f.expect(typ == "OK" and response_code(data[0], "APPENDUID") is not None
             and response_code(data[0], "APPENDUID").split()[1] == "2", f"second APPEND: {typ} {data}")
    f.expect(uids_in_mailbox(m) == [1, 2], f"Drafts UIDs after the second APPEND: {uids_in_mailbox(m)}")
    # APPEND to a mailbox that does not exist: NO [TRYCREATE], so clients offer to create it.
    typ, data = m.append("NoSuchFolder", None, None, b"Subject: x\r\n\r\nx\r\n")
    f.expect(typ == "NO" and b"TRYCREATE" in data[0], f"APPEND to a missing mailbox: {typ} {data}")
    m.logout()


# --------------------------------------------------------------------------------
def copy_and_move(f):
    stored = deliver(HOST, LMTP_PORT, SAMPLES)
    m = connect(HOST, IMAP_PORT)
    _, inbox_validity, _ = select(m, "INBOX")
    ok(m.store("2", "+FLAGS", "(\\Flagged)"), "STORE")
    _, st = parse_status(ok(m.status("Archive", "(UIDVALIDITY)"), "STATUS Archive"))
    typ, data = m.copy("1:2", "Archive")
    require(typ == "OK", f"COPY 1:2 Archive: {typ} {data}")
    copyuid = response_code(data[0], "COPYUID")
    f.expect(copyuid is not None, f"COPY completed without [COPYUID]: {data}")
    if copyuid:
        v, src, dst = copyuid.split()
        f.expect(int(v) == st["UIDVALIDITY"], f"COPYUID uidvalidity {v}, Archive has {st}")
        f.expect(parse_uid_set(src) == [1, 2] and parse_uid_set(dst) == [1, 2], f"COPYUID {copyuid}")
    f.expect(uids_in_mailbox(m) == [1, 2, 3], "COPY changed the source mailbox")

    m.untagged_responses.clear()
    typ, data = m.xatom("UID", "MOVE", "3", "Trash")
    require(typ == "OK", f"UID MOVE 3 Trash: {typ} {data}")
    untagged_copyuid = m.untagged_responses.get("COPYUID")
    moved = response_code(data[0], "COPYUID") or (untagged_copyuid[0].decode() if untagged_copyuid else None)
    f.expect(moved is not None, f"UID MOVE gave no COPYUID (RFC 6851 3.3): tagged {data}, untagged "
             f"{m.untagged_responses}")
    if moved:
        _, src, dst = moved.split()
        f.expect(parse_uid_set(src) == [3] and parse_uid_set(dst) == [1], f"MOVE COPYUID {moved}")
    expunged = [int(x) for x in m.untagged_responses.get("EXPUNGE", [])]
    f.expect(expunged == [3], f"UID MOVE should expunge sequence 3, server sent EXPUNGE {expunged}")
    f.expect(uids_in_mailbox(m) == [1, 2], f"INBOX after MOVE: {uids_in_mailbox(m)}")
    _, inbox = parse_status(ok(m.status("INBOX", "(MESSAGES)"), "STATUS INBOX"))
    f.expect(inbox["MESSAGES"] == 2, f"STATUS INBOX after MOVE: {inbox}")

    ok(m.select("Archive", readonly=True), "EXAMINE Archive")
    arch = fetch_by_uid(ok(m.fetch("1:*", "(UID FLAGS BODY.PEEK[])"), "FETCH Archive"))
    f.expect(sorted(arch) == [1, 2], f"Archive UIDs {sorted(arch)}")
    f.expect([arch[u].get("BODY[]") for u in sorted(arch)] == stored[:2], "copied messages differ")
    f.expect(flags_of(arch.get(2, {})) == {"\\Flagged"}, f"COPY lost \\Flagged: {arch.get(2)}")
    ok(m.select("Trash", readonly=True), "EXAMINE Trash")
    trash = fetch_by_uid(ok(m.fetch("1:*", "(UID BODY.PEEK[])"), "FETCH Trash"))
    f.expect([trash[u].get("BODY[]") for u in sorted(trash)] == [stored[2]], "moved message differs")
    # COPY to a missing mailbox: NO [TRYCREATE].
    select(m, "INBOX")
    typ, data = m.copy("1", "Nowhere")
    f.expect(typ == "NO" and b"TRYCREATE" in data[0], f"COPY to a missing mailbox: {typ} {data}")
    m.logout()


# --------------------------------------------------------------------------------
def expunge(f):
    deliver(HOST, LMTP_PORT, [simple_message(i) for i in range(1, 6)])
    m = connect(HOST, IMAP_PORT)
    select(m, "INBOX")
    ok(m.store("2,4", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    m.untagged_responses.clear()
    data = ok(m.expunge(), "EXPUNGE")
    seqs = [int(x) for x in data if x is not None]
    # Apply the EXPUNGE responses in order, as a client must.
    view = [1, 2, 3, 4, 5]
    for s in seqs:
        if 1 <= s <= len(view):
            view.pop(s - 1)
    f.expect(len(seqs) == 2 and view == [1, 3, 5],
             f"EXPUNGE responses {seqs} leave the client with UIDs {view}, expected [1, 3, 5]")
    f.expect(uids_in_mailbox(m) == [1, 3, 5], f"UIDs after EXPUNGE: {uids_in_mailbox(m)}")
    # UID EXPUNGE (UIDPLUS) removes only the UIDs given.
    ok(m.uid("STORE", "3,5", "+FLAGS", "(\\Deleted)"), "UID STORE")
    typ, data = m.xatom("UID", "EXPUNGE", "5")
    f.expect(typ == "OK", f"UID EXPUNGE 5: {typ} {data}")
    f.expect(uids_in_mailbox(m) == [1, 3], f"UIDs after UID EXPUNGE 5: {uids_in_mailbox(m)}")
    m.logout()
    m = connect(HOST, IMAP_PORT)
    exists, _, uidnext = select(m, "INBOX")
    f.expect(exists == 2 and uidnext == 6, f"a new session sees {exists} EXISTS, UIDNEXT {uidnext}")
    flags = fetch_by_uid(ok(m.fetch("1:*", "(UID FLAGS)"), "FETCH"))
    f.expect("\\Deleted" in flags_of(flags.get(3, {})), f"uid 3 should still be \\Deleted: {flags}")
    m.logout()


# --------------------------------------------------------------------------------
def folders(f):
    m = connect(HOST, IMAP_PORT)
    ok(m.create("Projects"), "CREATE Projects")
    ok(m.create("Projects/2024"), "CREATE Projects/2024")
    typ, data = m.create("Projects")
    f.expect(typ == "NO", f"CREATE of an existing mailbox answered {typ} {data}")
    typ, data = m.append("Projects/2024", None, None, b"Subject: plan\r\n\r\nthe plan\r\n")
    require(typ == "OK", f"APPEND Projects/2024: {typ} {data}")
    listed = parse_list(ok(m.list('""', "Projects*"), "LIST Projects*"))
    names = {n: a for a, _, n in listed}
    f.expect(set(names) == {"Projects", "Projects/2024"}, f"LIST Projects*: {listed}")
    f.expect("\\HasChildren" in names.get("Projects", set()), f"Projects lacks \\HasChildren: {listed}")
    f.expect("\\HasNoChildren" in names.get("Projects/2024", set()), f"child attributes: {listed}")
    pct = parse_list(ok(m.list('""', "%"), "LIST %"))
    f.expect("Projects/2024" not in {n for _, _, n in pct} and "Projects" in {n for _, _, n in pct},
             f"LIST % must list one level only: {pct}")

    ok(m.rename("Projects", "Work"), "RENAME Projects Work")
    after = {n for _, _, n in parse_list(ok(m.list('""', "*"), "LIST *"))}
    f.expect({"Work", "Work/2024"} <= after and not any(n.startswith("Projects") for n in after),
             f"after RENAME Projects Work, LIST * gives {sorted(after)}")
    typ, data = m.status("Work/2024", "(MESSAGES)")
    f.expect(typ == "OK" and parse_status(data)[1].get("MESSAGES") == 1,
             f"the child kept its message across RENAME: {typ} {data}")

    # DELETE of a mailbox with a child: either refused, or the child stays (RFC 3501 6.3.4).
    typ, data = m.delete("Work")
    now = {n for _, _, n in parse_list(ok(m.list('""', "Work*"), "LIST Work*"))}
    f.expect("Work/2024" in now, f"DELETE Work ({typ}) removed its child: {sorted(now)}")
    if typ == "OK":
        typ2, _ = m.select("Work")
        f.expect(typ2 != "OK", "Work can still be selected after DELETE answered OK")
    ok(m.delete("Work/2024"), "DELETE Work/2024")
    rest = {n for _, _, n in parse_list(ok(m.list('""', "Work*"), "LIST Work*"))}
    if "Work" in rest:
        typ, data = m.delete("Work")
        f.expect(typ == "OK", f"DELETE Work once childless: {typ} {data}")
    left = parse_list(ok(m.list('""', "Work*"), "LIST Work*"))
    f.expect(left == [], f"after deleting both: LIST Work* gives {left}")
    typ, data = m.delete("INBOX")
    f.expect(typ == "NO", f"DELETE INBOX answered {typ}")
    # A deleted name can be created again, with a fresh UIDVALIDITY.
    ok(m.create("Work"), "CREATE Work again")
    m.logout()


# --------------------------------------------------------------------------------
def status(f):
    deliver(HOST, LMTP_PORT, SAMPLES)
    m = connect(HOST, IMAP_PORT)
    name, st = parse_status(ok(m.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)"), "STATUS"))
    f.expect(name.upper() == "INBOX", f"STATUS named {name}")
    f.expect(st.get("MESSAGES") == 3 and st.get("UNSEEN") == 3 and st.get("UIDNEXT") == 4,
             f"STATUS INBOX after 3 deliveries: {st}")
    f.expect(st.get("RECENT") == 3, f"STATUS RECENT (nobody has seen them yet): {st}")
    other = connect(HOST, IMAP_PORT)
    _, validity, _ = select(other, "INBOX")
    ok(other.store("1", "+FLAGS", "(\\Seen)"), "STORE \\Seen")
    other.logout()
    _, st2 = parse_status(ok(m.status("INBOX", "(MESSAGES UNSEEN UIDVALIDITY)"), "STATUS"))
    f.expect(st2.get("UNSEEN") == 2 and st2.get("MESSAGES") == 3, f"STATUS after \\Seen elsewhere: {st2}")
    f.expect(st2.get("UIDVALIDITY") == validity == st.get("UIDVALIDITY"),
             f"UIDVALIDITY: STATUS {st.get('UIDVALIDITY')}, SELECT {validity}")
    _, sent = parse_status(ok(m.status("Sent", "(MESSAGES UIDNEXT UNSEEN)"), "STATUS Sent"))
    f.expect(sent == {"MESSAGES": 0, "UIDNEXT": 1, "UNSEEN": 0}, f"STATUS Sent: {sent}")
    typ, data = m.status("Nope", "(MESSAGES)")
    f.expect(typ == "NO", f"STATUS of a missing mailbox answered {typ}")
    m.logout()


# --------------------------------------------------------------------------------
def non_ascii_names(f):
    m = connect(HOST, IMAP_PORT)
    names = ["Entwürfe", "日本語", "Reisen/Köln", "Tom & Jerry"]
    for n in names:
        typ, data = m.create(quote(mutf7(n)))
        require(typ == "OK", f"CREATE {mutf7(n)} ({n}): {typ} {data}")
    listed = {n for _, _, n in parse_list(ok(m.list('""', "*"), "LIST"))}
    for n in names:
        f.expect(mutf7(n) in listed, f"LIST lacks {mutf7(n)} ({n}): {sorted(listed)}")
    f.expect("Reisen" in listed, f"the parent Reisen of Reisen/Köln is not listed: {sorted(listed)}")
    msg = b"Subject: Reiseplan\r\n\r\nAb nach K\xc3\xb6ln.\r\n"
    typ, data = m.append(quote(mutf7("Reisen/Köln")), None, None, msg)
    f.expect(typ == "OK" and response_code(data[0], "APPENDUID"), f"APPEND to Reisen/K&APY-ln: {typ} {data}")
    exists, _, _ = select(m, quote(mutf7("Reisen/Köln")))
    f.expect(exists == 1, f"SELECT Reisen/K&APY-ln: {exists} EXISTS")
    body = fetch_by_uid(ok(m.fetch("1", "(UID BODY.PEEK[])"), "FETCH"))
    f.expect(body.get(1, {}).get("BODY[]") == msg, f"message in Reisen/Köln: {body}")
    ok(m.rename(quote(mutf7("Entwürfe")), quote(mutf7("Ältere Entwürfe"))), "RENAME Entw&APw-rfe")
    _, st = parse_status(ok(m.status(quote(mutf7("Tom & Jerry")), "(MESSAGES)"), "STATUS Tom &- Jerry"))
    f.expect(st.get("MESSAGES") == 0, f"STATUS Tom &- Jerry: {st}")
    listed = {n for _, _, n in parse_list(ok(m.list('""', "*"), "LIST"))}
    f.expect(mutf7("Ältere Entwürfe") in listed and mutf7("Entwürfe") not in listed, f"after RENAME: {sorted(listed)}")
    # A name that is not valid modified UTF-7 must be refused, not stored as is.
    try:
        typ, data = m.create(quote("Bad&Name"))
    except imaplib.IMAP4.error as e:  # imaplib raises on BAD
        typ, data = "BAD", [str(e)]
    # NO, not BAD: the command is well-formed, the name is what is wrong (RFC 3501 7.1.3).
    f.expect(typ == "NO", f"CREATE Bad&Name (invalid mUTF-7) answered {typ} {data}")
    m.logout()
    return sorted(listed)


SCENARIOS = {
    "login_capability_list_logout": login_capability_list_logout,
    "select_and_fetch_metadata": select_and_fetch_metadata,
    "fetch_body_bytes": fetch_body_bytes,
    "store_flags": store_flags,
    "search": search,
    "append": append,
    "copy_and_move": copy_and_move,
    "expunge": expunge,
    "folders": folders,
    "status": status,
    "non_ascii_names": non_ascii_names,
}

if __name__ == "__main__":
    report_and_exit(SCENARIO, SCENARIOS[SCENARIO])
