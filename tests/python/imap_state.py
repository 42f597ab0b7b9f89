#!/usr/bin/env python3
"""A small imaplib tool for the Maildir synchronisation tests (mbsync, offlineimap):
look at and change a mailbox on tern.

Usage:
  imap_state.py HOST PORT dump MAILBOX
      one line per message: UID <TAB> flags (sorted, space-separated, no \\Recent)
      <TAB> SHA-1 of BODY.PEEK[] <TAB> Message-ID <TAB> SHA-1 of BODY.PEEK[] as mbsync's
      Maildir side holds it (LF line ends, without the X-TUID header mbsync adds while
      copying a message)
  imap_state.py HOST PORT store MAILBOX UIDSET ITEM FLAGS     e.g. store INBOX 2 +FLAGS '(\\Flagged)'
  imap_state.py HOST PORT move MAILBOX UIDSET DEST           e.g. move INBOX 3 Archive
  imap_state.py HOST PORT create MAILBOX
  imap_state.py HOST PORT list
      one mailbox name per line

Exits 1 with the IMAP exchange on stderr when the server refuses something.
"""
import hashlib
import re
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from imapcommon import TRACE, connect, fetch_by_uid, flags_of, ok, parse_list  # noqa: E402


def as_in_maildir(body):
    text = body.replace(b"\r\n", b"\n")
    head, sep, rest = text.partition(b"\n\n")
    lines = [l for l in head.split(b"\n") if not l.lower().startswith(b"x-tuid:")]
    return b"\n".join(lines) + sep + rest


def main():
    host, port, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    m = connect(host, port)
    if cmd == "dump":
        ok(m.select(sys.argv[4], readonly=True), f"EXAMINE {sys.argv[4]}")
        # UID FETCH: `1:*` by sequence number is BAD in an empty mailbox (as on Dovecot).
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        if typ == "OK" and data != [None]:
            for uid, items in sorted(fetch_by_uid(data).items()):
                body = items.get("BODY[]") or b""
                mid = re.search(rb"(?im)^Message-ID:\s*(\S+)", body)
                print("\t".join([str(uid), " ".join(sorted(flags_of(items))),
                                 hashlib.sha1(body).hexdigest(),
                                 mid.group(1).decode() if mid else "",
                                 hashlib.sha1(as_in_maildir(body)).hexdigest()]))
    elif cmd == "store":
        _, _, _, _, mailbox, uids, item, flags = sys.argv
        ok(m.select(mailbox), f"SELECT {mailbox}")
        ok(m.uid("STORE", uids, item, flags), f"UID STORE {uids} {item} {flags}")
    elif cmd == "move":
        _, _, _, _, mailbox, uids, dest = sys.argv
        ok(m.select(mailbox), f"SELECT {mailbox}")
        ok(m.uid("MOVE", uids, dest), f"UID MOVE {uids} {dest}")
    elif cmd == "create":
        ok(m.create(sys.argv[4]), f"CREATE {sys.argv[4]}")
    elif cmd == "list":
        for _, _, name in parse_list(ok(m.list('""', "*"), "LIST")):
            print(name)
    else:
        raise SystemExit(f"unknown command {cmd}")
    m.logout()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"imap_state.py {' '.join(sys.argv[3:])}: {type(e).__name__}: {e}", file=sys.stderr)
        for line in TRACE[-60:]:
            print(f"    {line}", file=sys.stderr)
        sys.exit(1)
