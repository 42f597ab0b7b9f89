"""Shared helpers for the imaplib-driven tests: a traced imaplib client, a small parser
for IMAP response data (imaplib leaves FETCH/LIST/STATUS data unparsed), modified UTF-7,
and LMTP delivery with smtplib.LMTP.

Everything here only uses the Python standard library.
"""
import base64
import imaplib
import smtplib
import sys

USER, PASSWORD = "alice", "secret"

# Every line imaplib sends or receives, for the failure report.
TRACE = []


class TracedIMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 with its protocol debug output kept in TRACE instead of printed."""

    def _mesg(self, s, secs=None):
        TRACE.append(s)


imaplib.Debug = 4


def connect(host, port, login=True):
    m = TracedIMAP4(host, port)
    TRACE.append("-- connected")
    if login:
        typ, data = m.login(USER, PASSWORD)
        require(typ == "OK", f"LOGIN failed: {typ} {data}")
    return m


class Failures:
    """Soft checks: every failed expectation is kept, so one run reports them all."""

    def __init__(self):
        self.items = []

    def expect(self, cond, msg):
        if not cond:
            self.items.append(msg)
            TRACE.append(f"!! EXPECTATION FAILED: {msg}")
        return cond


class Hard(Exception):
    pass


def require(cond, msg):
    """A check the rest of the scenario depends on."""
    if not cond:
        raise Hard(msg)


def ok(result, what):
    typ, data = result
    require(typ == "OK", f"{what}: server answered {typ} {data!r}")
    return data


def report_and_exit(scenario, run):
    fails = Failures()
    try:
        extra = run(fails)
    except Exception as e:  # noqa: BLE001 - report anything, with the protocol trace
        import traceback
        fails.items.append(f"stopped: {type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stderr)
        extra = None
    if fails.items:
        print(f"scenario {scenario}: {len(fails.items)} check(s) failed:", file=sys.stderr)
        for f in fails.items:
            print(f"  - {f}", file=sys.stderr)
        print("last protocol lines (imaplib debug trace):", file=sys.stderr)
        for line in TRACE[-120:]:
            print(f"    {line}", file=sys.stderr)
        sys.exit(1)
    import json
    print(json.dumps({"scenario": scenario, "ok": True, "extra": extra}))


# ---------------------------------------------------------------------------------
# Response data parsing


class Atom(bytes):
    """An IMAP atom (as opposed to a quoted string or literal, which are plain bytes)."""


def _stream(data):
    """Rebuilds the wire form of imaplib's response data (tuples hold literals)."""
    out = bytearray()
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            out += item[0] + b"\r\n" + item[1]
        else:
            out += item + b"\r\n"
    return bytes(out)


class Parser:
    def __init__(self, buf):
        self.b = buf
        self.i = 0

    def at_end(self):
        self.skip_ws()
        return self.i >= len(self.b)

    def skip_ws(self):
        while self.i < len(self.b) and self.b[self.i] in b" \r\n":
            self.i += 1

    def skip_sp(self):
        while self.i < len(self.b) and self.b[self.i] == 0x20:
            self.i += 1

    def value(self):
        self.skip_sp()
        if self.i >= len(self.b):
            raise ValueError(f"unexpected end of response data: {self.b!r}")
        c = self.b[self.i]
        if c == ord("("):
            self.i += 1
            items = []
            while True:
                self.skip_sp()
                if self.i >= len(self.b):
                    raise ValueError(f"unclosed list in {self.b!r}")
                if self.b[self.i] == ord(")"):
                    self.i += 1
                    return items
                items.append(self.value())
        if c == ord('"'):
            self.i += 1
            out = bytearray()
            while True:
                ch = self.b[self.i]
                self.i += 1
                if ch == 0x5C:
                    out.append(self.b[self.i])
                    self.i += 1
                elif ch == 0x22:
                    return bytes(out)
                else:
                    out.append(ch)
        if c == ord("{") or (c == ord("~") and self.b[self.i + 1] == ord("{")):
            if c == ord("~"):
                self.i += 1
            j = self.b.index(b"}", self.i)
            n = int(self.b[self.i + 1:j].rstrip(b"+"))
            self.i = j + 1
            if self.b[self.i:self.i + 2] != b"\r\n":
                raise ValueError(f"literal not followed by CRLF in {self.b!r}")
            self.i += 2
            v = self.b[self.i:self.i + n]
            self.i += n
            return v
        start = self.i
        depth = 0
        while self.i < len(self.b):
            ch = self.b[self.i]
            if ch == ord("["):
                depth += 1
            elif ch == ord("]"):
                depth -= 1
            elif depth == 0 and ch in b" ()\r\n":
                break
            self.i += 1
        atom = self.b[start:self.i]
        if not atom:
            raise ValueError(f"empty atom at {self.i} in {self.b!r}")
        if atom.upper() == b"NIL":
            return None
        return Atom(atom)


def parse_fetch(data):
    """imaplib FETCH data -> list of (seq, {ITEM NAME: value})."""
    p = Parser(_stream(data))
    out = []
    while not p.at_end():
        seq = int(p.value())
        items = p.value()
        if not isinstance(items, list) or len(items) % 2:
            raise ValueError(f"bad FETCH data for {seq}: {items!r}")
        d = {}
        for k, v in zip(items[0::2], items[1::2]):
            d[k.decode().upper()] = v
        out.append((seq, d))
    return out


def fetch_by_uid(data):
    """FETCH data -> {uid: items}, requiring a UID in each response."""
    out = {}
    for seq, d in parse_fetch(data):
        require("UID" in d, f"FETCH response for {seq} without UID: {d!r}")
        out.setdefault(int(d["UID"]), {}).update(d, SEQ=seq)
    return out


def flags_of(items, drop_recent=True):
    fl = {f.decode() for f in items.get("FLAGS", [])}
    if drop_recent:
        fl.discard("\\Recent")
    return fl


def parse_list(data):
    """LIST/LSUB data -> list of (attributes set, delimiter, name as str)."""
    p = Parser(_stream(data))
    out = []
    while not p.at_end():
        attrs = p.value()
        delim = p.value()
        name = p.value()
        # LIST-EXTENDED may add extended data; skip the rest of the line.
        while p.i < len(p.b) and p.b[p.i] not in b"\r\n":
            p.value()
        out.append(({a.decode() for a in attrs}, None if delim is None else delim.decode(),
                    name.decode()))
    return out


def parse_status(data):
    """STATUS data -> (name, {ITEM: int})."""
    p = Parser(_stream(data))
    name = p.value().decode()
    items = p.value()
    return name, {k.decode().upper(): int(v) for k, v in zip(items[0::2], items[1::2])}


def parse_uid_set(s):
    """'1:3,5' -> [1, 2, 3, 5] (ranges in either order)."""
    out = []
    for part in s.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            lo, hi = min(a, b), max(a, b)
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(part))
    return out


def response_code(text, code):
    """Finds '[CODE args]' in a response text (bytes or str); returns the args or None."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    start = text.find("[" + code)
    if start < 0:
        return None
    end = text.find("]", start)
    return text[start + 1 + len(code):end].strip()


def search_result(data):
    """SEARCH data -> sorted list of numbers."""
    nums = []
    for item in data:
        if item:
            nums.extend(int(x) for x in item.split())
    return sorted(nums)


# ---------------------------------------------------------------------------------
# Mailbox names and delivery


def mutf7(name):
    """RFC 3501 5.1.3 modified UTF-7."""
    out, pending = [], []

    def flush():
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def deliver(host, lmtp_port, messages, rcpt="alice@localhost"):
    """Delivers (sender, bytes) pairs with smtplib.LMTP; returns what tern stores for each."""
    lmtp = smtplib.LMTP(host, lmtp_port)
    code, _ = lmtp.ehlo("imaplib-test")
    require(code == 250, f"LHLO answered {code}")
    stored = []
    for sender, msg in messages:
        refused = lmtp.sendmail(sender, [rcpt], msg)
        require(refused == {}, f"LMTP refused: {refused}")
        stored.append(f"Return-Path: <{sender}>\r\n".encode() + msg)
    lmtp.quit()
    return stored


SAMPLES = [
    ("bob@example.org",
     b"From: Bob Example <bob@example.org>\r\n"
     b"To: Alice <alice@example.org>\r\n"
     b"Subject: Lunch on Friday?\r\n"
     b"Date: Mon, 03 Jun 2024 12:30:00 +0200\r\n"
     b"Message-ID: <lunch-1@example.org>\r\n"
     b"\r\n"
     b"Shall we try the new ramen place?\r\n"
     b"-- \r\nBob\r\n"),
    ("carol@example.net",
     b"From: Carol <carol@example.net>\r\n"
     b"To: alice@example.org\r\n"
     b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=\r\n"
     b"Date: Tue, 04 Jun 2024 08:00:00 +0000\r\n"
     b"Message-ID: <report-2@example.net>\r\n"
     b"MIME-Version: 1.0\r\n"
     b"Content-Type: text/plain; charset=utf-8\r\n"
     b"Content-Transfer-Encoding: 8bit\r\n"
     b"\r\n"
     + "Quartalsbericht: Umsatz 12.000 €, über Plan.\r\nViele Grüße\r\n".encode("utf-8")),
    ("dave@example.com",
     b"From: dave@example.com\r\n"
     b"To: alice@example.org, Bob <bob@example.org>\r\n"
     b"Subject: Photos from the holiday\r\n"
     b"Date: Wed, 05 Jun 2024 19:45:10 -0700\r\n"
     b"Message-ID: <photos-3@example.com>\r\n"
     b"MIME-Version: 1.0\r\n"
     b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
     b"\r\n"
     b"--b1\r\n"
     b"Content-Type: text/plain; charset=us-ascii\r\n"
     b"\r\n"
     b"Here are the holiday pictures, enjoy.\r\n"
     b"--b1\r\n"
     b"Content-Type: image/png; name=\"beach.png\"\r\n"
     b"Content-Transfer-Encoding: base64\r\n"
     b"Content-Disposition: attachment; filename=\"beach.png\"\r\n"
     b"\r\n"
     b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n"
     b"--b1--\r\n"),
]


def simple_message(i, subject=None):
    subject = subject or f"Message number {i}"
    return ("sender@example.org",
            (f"From: Sender <sender@example.org>\r\nTo: alice@example.org\r\n"
             f"Subject: {subject}\r\nMessage-ID: <simple-{i}@example.org>\r\n\r\n"
             f"Body of message {i}.\r\n").encode())
