#!/usr/bin/env python3
"""Drives tern's METADATA (RFC 5464) with Python's imaplib, which has no METADATA
methods: the commands go through `xatom`, as a script or client add-on would send them.

Usage: imap_metadata.py HOST IMAP_PORT

The user alice (password "secret") must exist. Sets a comment and the expire policy of
a new mailbox Lists (the caller then checks the policy with `tern admin`). Prints one
JSON line on success; on failure every failed check and the IMAP exchange, exit 1.
"""
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from imapcommon import connect, ok, report_and_exit, require  # noqa: E402

HOST, IMAP_PORT = sys.argv[1], int(sys.argv[2])


def metadata(f):
    m = connect(HOST, IMAP_PORT)
    caps = set(ok(m.capability(), "CAPABILITY")[0].decode().upper().split())
    f.expect("METADATA" in caps, f"CAPABILITY lacks METADATA: {sorted(caps)}")
    f.expect("METADATA-SERVER" in caps, f"CAPABILITY lacks METADATA-SERVER: {sorted(caps)}")
    ok(m.create("Lists"), "CREATE Lists")
    ok(m.create("Lists/rust"), "CREATE Lists/rust")
    ok(m.xatom("SETMETADATA", "Lists",
               '(/shared/comment "Mailing lists" /shared/vendor/cmu/cyrus-imapd/expire "30")'),
       "SETMETADATA Lists")
    ok(m.xatom("GETMETADATA", "Lists", "(/shared/comment /shared/vendor/cmu/cyrus-imapd/expire)"),
       "GETMETADATA Lists")
    typ, data = m.response("METADATA")
    require(data and data[0], f"no METADATA response: {typ} {data}")
    text = b" ".join(d if isinstance(d, bytes) else b"".join(d) for d in data).decode()
    f.expect('"/shared/comment" "Mailing lists"' in text, f"comment not returned: {text}")
    f.expect('"/shared/vendor/cmu/cyrus-imapd/expire" "30"' in text,
             f"expire policy not returned: {text}")
    # MAXSIZE: the comment (13 bytes) is left out and counted.
    typ, data = m.xatom("GETMETADATA", "(MAXSIZE 5)", "Lists", "/shared/comment")
    f.expect(typ == "OK" and b"LONGENTRIES 13" in b" ".join(data),
             f"MAXSIZE 5: expected [METADATA LONGENTRIES 13]: {typ} {data}")
    m.response("METADATA")
    # A server entry of one's own.
    ok(m.xatom("SETMETADATA", '""', '(/private/vendor/example/theme "dark")'), "SETMETADATA server")
    ok(m.xatom("GETMETADATA", '""', "/private/vendor/example/theme"), "GETMETADATA server")
    typ, data = m.response("METADATA")
    f.expect(data and data[0] and b'"dark"' in data[0], f"server entry: {data}")
    m.logout()
    return "ok"


if __name__ == "__main__":
    report_and_exit("metadata", metadata)
