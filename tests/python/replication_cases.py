#!/usr/bin/env python3
"""What tests/replication_cases.rs asks of a mailbox over IMAP that the snapshot does not
show: the FLAGS and PERMANENTFLAGS a SELECT announces, and the messages a user sees in a
mailbox of another user's (shared through an ACL).

Usage:
  replication_cases.py HOST PORT USER PASSWORD select MAILBOX
      SELECT MAILBOX; prints one JSON object: flags (the FLAGS list), permanentflags
      (the PERMANENTFLAGS list), uidvalidity, uidnext, exists, highestmodseq (STATUS).
  replication_cases.py HOST PORT USER PASSWORD messages MAILBOX
      EXAMINE MAILBOX; prints one line per message: UID <TAB> Message-ID.

Exits 1 with the IMAP exchange on stderr when the server refuses something.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from imapcommon import (  # noqa: E402
    TRACE, fetch_by_uid, ok, parse_status, quote, TracedIMAP4,
)


def flag_list(data):
    """The flags of a FLAGS response or a PERMANENTFLAGS response code."""
    if not data or data[0] is None:
        return None
    text = data[-1].decode() if isinstance(data[-1], bytes) else str(data[-1])
    inner = re.search(r"\(([^)]*)\)", text)
    return sorted(inner.group(1).split()) if inner else []


def main():
    host, port, user, password, cmd, mailbox = sys.argv[1:7]
    m = TracedIMAP4(host, int(port))
    TRACE.append("-- connected")
    ok(m.login(user, password), f"LOGIN {user}")
    q = quote(mailbox)
    if cmd == "select":
        _, st = parse_status(ok(m.status(q, "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)"),
                                f"STATUS {mailbox}"))
        ok(m.select(q), f"SELECT {mailbox}")
        _, flags = m.response("FLAGS")
        _, perm = m.response("PERMANENTFLAGS")
        print(json.dumps({
            "flags": flag_list(flags),
            "permanentflags": flag_list(perm),
            "uidvalidity": st.get("UIDVALIDITY"),
            "uidnext": st.get("UIDNEXT"),
            "exists": st.get("MESSAGES"),
            "highestmodseq": st.get("HIGHESTMODSEQ"),
        }))
    elif cmd == "messages":
        ok(m.select(q, readonly=True), f"EXAMINE {mailbox}")
        typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        if typ == "OK" and data != [None]:
            for uid, items in sorted(fetch_by_uid(data).items()):
                body = items.get("BODY[]") or b""
                mid = re.search(rb"(?im)^Message-ID:\s*(\S+)", body)
                print(f"{uid}\t{mid.group(1).decode() if mid else ''}")
    else:
        raise SystemExit(f"unknown command {cmd}")
    m.logout()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"replication_cases.py {' '.join(sys.argv[5:])}: {type(e).__name__}: {e}",
              file=sys.stderr)
        for line in TRACE[-60:]:
            print(f"    {line}", file=sys.stderr)
        sys.exit(1)
