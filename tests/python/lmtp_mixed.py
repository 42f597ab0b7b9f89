#!/usr/bin/env python3
"""Drives tern's LMTP listener with Python's smtplib.LMTP (a client tern did not write).

Usage: lmtp_mixed.py HOST PORT OUTDIR

Sends a mixed batch and writes OUTDIR/result.json: for each message, the exact bytes
handed to smtplib (in OUTDIR/msgN.eml), the sender, and every reply (RCPT and DATA,
one DATA reply per accepted recipient, read as RFC 2033 requires).
"""
import json
import os
import smtplib
import sys

host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]

eightbit = ("From: Jürgen <j@example.org>\r\nTo: alice@example.org\r\n"
            "Subject: Grüße\r\nMessage-ID: <mixed-1@example.org>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Straße, café, naïve — 8-bit body\r\n"
            ".a line starting with a dot\r\n"
            "..two dots\r\n"
            ".\tdot and tab\r\n"
            "bare LF line\n"
            "another bare LF line\n"
            "last line\r\n").encode("utf-8") + b"latin-1 byte: \xe9\r\n"

big_lines = []
line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
big = (b"From: big@example.org\r\nSubject: twenty MiB\r\nMessage-ID: <big-1@example.org>\r\n\r\n"
       + line * ((20 * 1024 * 1024) // len(line) + 1))

batches = [
    # (sender, recipients, message)
    ("sender@example.org", ["alice@example.org", "nobody@example.org", "full@example.org",
                            "bob+Lists/rust@example.org"], eightbit),
    ("big@example.org", ["alice@example.org"], big),
    ("", ["bob@example.org"], b"Subject: null sender\r\n\r\n.\r\n..\r\nend\r\n"),
]

results = []
lmtp = smtplib.LMTP(host, port)
code, _ = lmtp.ehlo("python-test")
assert code == 250
for i, (sender, rcpts, msg) in enumerate(batches):
    path = os.path.join(out, f"msg{i}.eml")
    with open(path, "wb") as f:
        f.write(msg)
    code, text = lmtp.mail(sender)
    assert code == 250, (code, text)
    rcpt_replies = []
    accepted = []
    for r in rcpts:
        c, t = lmtp.rcpt(r)
        rcpt_replies.append([r, c, t.decode()])
        if c == 250:
            accepted.append(r)
    data_replies = []
    if accepted:
        c, t = lmtp.data(msg)  # the reply for the first accepted recipient
        data_replies.append([accepted[0], c, t.decode()])
        for r in accepted[1:]:
            c, t = lmtp.getreply()
            data_replies.append([r, c, t.decode()])
    results.append({"file": path, "sender": sender, "rcpt": rcpt_replies, "data": data_replies})
lmtp.quit()
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump(results, f, indent=1)
