"""The hostile clients of bench/hostile.py: one function per flood.

Every flood gets a `Flood` (ports, attacker source addresses, deadline, counters) and
returns when its deadline has passed and its sockets are closed.  Every socket has a
timeout or is non-blocking, every loop ends at the deadline, so a flood stops by itself
whatever the server does.  Attackers connect from 127.0.1.x (loopback, but not the
legitimate client's 127.0.0.1), so per-IP limits in the server can tell them apart.
Stdlib only.
"""
import base64
import collections
import errno
import select
import socket
import threading
import time

CHUNK = b"x" * (1 << 20)  # one buffer, sent again and again: the client's memory stays flat
MIB = 1 << 20


class Flood:
    """What a flood needs: where to connect, until when, and counters for its report."""

    def __init__(self, a, ports, seconds):
        self.a, self.ports = a, ports
        self.deadline = time.monotonic() + seconds
        self.src = [f"127.0.1.{k}" for k in range(1, a.attack_ips + 1)]
        self.stats = collections.Counter()
        self.samples = collections.defaultdict(list)  # name -> list of seconds
        self._lock = threading.Lock()
        self._next = 0

    def left(self):
        return self.deadline - time.monotonic()

    def count(self, key, n=1):
        with self._lock:
            self.stats[key] += n

    def sample(self, key, value):
        with self._lock:
            self.samples[key].append(value)

    def source(self):
        with self._lock:
            self._next += 1
            return self.src[self._next % len(self.src)]

    def connect(self, port, timeout=5.0):
        """A blocking socket from an attacker address, with a timeout on every call."""
        s = socket.socket()
        try:
            s.bind((self.source(), 0))
            s.settimeout(max(0.2, min(timeout, self.left())))
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            self.count("connect_failed")
            raise
        self.count("connected")
        return s


def read_line(s, limit=65536):
    """One line (without CRLF) from a blocking socket with a timeout; None on EOF."""
    buf = bytearray()
    while len(buf) < limit:
        b = s.recv(1)
        if not b:
            return None
        buf += b
        if buf.endswith(b"\n"):
            return bytes(buf).rstrip(b"\r\n")
    return bytes(buf)


def read_tagged(s, tag, limit=1000):
    """Lines until the tagged answer to `tag`; that line, or None on EOF."""
    for _ in range(limit):
        line = read_line(s)
        if line is None or line.startswith(tag + b" "):
            return line
    return None


def send_bytes(f, s, n):
    """Send n octets (or until the deadline); -> octets sent."""
    sent = 0
    while sent < n and f.left() > 0:
        k = min(len(CHUNK), n - sent)
        s.sendall(CHUNK[:k])
        sent += k
        f.count("bytes_sent", k)
    return sent


def stall(f, s):
    """Hold the connection open, sending nothing, until the deadline or the server closes it."""
    while f.left() > 0:
        r, _, _ = select.select([s], [], [], min(1.0, max(0.0, f.left())))
        if r:
            try:
                if not s.recv(65536):
                    f.count("closed_by_server")
                    return
            except OSError:
                f.count("closed_by_server")
                return


def run_workers(f, n, attempt):
    """n threads, each repeating attempt(f) (one connection) until the deadline."""
    def loop():
        while f.left() > 0:
            try:
                attempt(f)
            except (OSError, ValueError):
                f.count("errors")
                time.sleep(min(0.2, max(0.0, f.left())))
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, f.left()) + 15)


# ---------------------------------------------------------------------------------------
# 1. IMAP pre-auth literal flood
def imap_literal(f, nonsync):
    size = 64 * MIB

    def attempt(f):
        with f.connect(f.ports["imap"]) as s:
            if read_line(s) is None:
                f.count("closed_by_server")
                return
            if nonsync:
                s.sendall(b"a LOGIN {%d+}\r\n" % size)
            else:
                s.sendall(b"a LOGIN {%d}\r\n" % size)
                answer = read_line(s)
                if not answer or not answer.startswith(b"+"):
                    f.count("literal_refused")
                    stall(f, s)
                    return
                f.count("continuations")
            send_bytes(f, s, size)
            f.count("literals_sent")
            stall(f, s)
    run_workers(f, f.a.connections, attempt)


# 2. sync-port pre-auth literal flood
def sync_literal(f, chained):
    """chained=False: one `{268435456+}` literal; True: four `{67108864+}` literals in one
    command (256 MiB, each within the per-literal bound the sync listener has today)."""
    def attempt(f):
        with f.connect(f.ports["sync"]) as s:
            if read_line(s) is None:
                f.count("closed_by_server")
                return
            if not chained:
                s.sendall(b"a AUTHENTICATE PLAIN {%d+}\r\n" % (256 * MIB))
                send_bytes(f, s, 256 * MIB)
            else:
                s.sendall(b"a AUTHENTICATE PLAIN {%d+}\r\n" % (64 * MIB))
                for k in range(4):
                    send_bytes(f, s, 64 * MIB)
                    if k < 3:
                        s.sendall(b" {%d+}\r\n" % (64 * MIB))
            f.count("literals_sent")
            stall(f, s)
    run_workers(f, f.a.connections, attempt)


# 3. password flood
def passwords(f, target_user):
    """Wrong passwords for target_user and for unknown users, as fast as the server answers.
    The time to each NO is kept per kind: a difference between them leaks which users exist."""
    def attempt(f):
        with f.connect(f.ports["imap"]) as s:
            if read_line(s) is None:
                f.count("closed_by_server")
                return
            for k in range(1000):
                if f.left() <= 0:
                    return
                known = k % 2 == 0
                user = target_user if known else f"nobody{threading.get_ident() % 100000}x{k}"
                tag = b"p%d" % k
                s.settimeout(max(0.5, f.left() + 5))
                t0 = time.monotonic()
                s.sendall(tag + b' LOGIN "%s" "wrong-%d"\r\n' % (user.encode(), k))
                answer = read_tagged(s, tag)
                if answer is None:
                    f.count("closed_by_server")
                    return
                kind = "known" if known else "unknown"
                f.sample(f"no_{kind}_s", time.monotonic() - t0)
                f.count(f"tries_{kind}")
                if answer.split(b" ")[1:2] == [b"OK"]:
                    f.count("logged_in")  # must never happen
    run_workers(f, f.a.connections, attempt)


# 4. idle flood
def idle(f):
    """idle_connections TCP connections to each of IMAP, LMTP and sync, opened without
    waiting, held until the deadline.  At the end: how many got bytes (a greeting or a busy reply),
    were closed, or are still silent."""
    socks = {p: [] for p in ("imap", "lmtp", "sync")}
    for name in socks:
        for _ in range(f.a.idle_connections):
            if f.left() <= 0:
                break
            s = socket.socket()
            s.setblocking(False)
            try:
                s.bind((f.source(), 0))
                rc = s.connect_ex(("127.0.0.1", f.ports[name]))
            except OSError:
                s.close()
                f.count(f"{name}_connect_failed")
                continue
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                f.count(f"{name}_connect_failed")
                continue
            socks[name].append(s)
    f.count("opened", sum(len(v) for v in socks.values()))
    while f.left() > 0:
        time.sleep(min(1.0, max(0.0, f.left())))
    for name, lst in socks.items():
        for s in lst:
            try:
                data = s.recv(4096)
                f.count(f"{name}_answered" if data else f"{name}_closed_by_server")
            except BlockingIOError:
                f.count(f"{name}_silent")
            except OSError:
                f.count(f"{name}_failed")
            s.close()


# 5. slowloris
SLOW_LINES = {
    "imap": b"a LOGIN alice wrong-password-sent-very-slowly\r\n",
    "sync": b"a AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice\0wrong-password") + b"\r\n",
    "lmtp": b"LHLO slowloris.example.org\r\n",
}


def slowloris(f, rcpt):
    """slow_connections per port sending one byte of a command line every slow_interval s
    (reopened when the server closes them), plus `connections` LMTP sessions that start
    DATA, send data_stall_mb MiB of body and stall."""
    stalls = threading.Thread(target=run_workers, args=(f, f.a.connections, lambda f: _data_stall(f, rcpt)),
                              daemon=True)
    stalls.start()
    conns = []  # [name, socket or None, bytes sent]
    for name in SLOW_LINES:
        conns += [[name, None, 0] for _ in range(f.a.slow_connections)]
    while f.left() > 0:
        t_tick = time.monotonic()
        for c in conns:
            name, s, k = c
            if s is None:
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.bind((f.source(), 0))
                    s.connect_ex(("127.0.0.1", f.ports[name]))
                    f.count(f"slow_{name}_opened")
                except OSError:
                    s.close()
                    continue
                c[1], c[2] = s, 0
                continue
            try:
                while s.recv(65536):  # drain greetings and answers; b"" = closed
                    pass
                f.count(f"slow_{name}_closed_by_server")
                s.close()
                c[1] = None
                continue
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                c[1] = None
                continue
            line = SLOW_LINES[name]
            try:
                s.send(line[k % len(line):k % len(line) + 1])
                c[2] = k + 1
            except (BlockingIOError, OSError):
                pass
            if f.left() <= 0:
                break
        time.sleep(max(0.0, min(f.left(), f.a.slow_interval - (time.monotonic() - t_tick))))
    for c in conns:
        if c[1] is not None:
            c[1].close()
    stalls.join(15)


def _start_data(f, s, rcpt, name):
    """Takes an LMTP connection to DATA's 354 and sends a header; False (counted) when
    the server closed it or refused on the way."""
    if read_line(s) is None:
        f.count("closed_by_server")
        return False
    s.sendall(b"LHLO %s.example.org\r\nMAIL FROM:<%s@example.org>\r\n"
              b"RCPT TO:<%s>\r\nDATA\r\n" % (name.encode(), name.encode(), rcpt.encode()))
    for _ in range(50):
        line = read_line(s)
        if line is None or line[:1] in (b"4", b"5"):
            f.count("data_refused")
            return False
        if line.startswith(b"354"):
            break
    else:
        return False
    f.count("data_started")
    s.sendall(b"From: %s@example.org\r\nSubject: %s\r\n\r\n" % (name.encode(), name.encode()))
    return True


def _data_stall(f, rcpt):
    with f.connect(f.ports["lmtp"]) as s:
        if _start_data(f, s, rcpt, "stall"):
            send_bytes(f, s, f.a.data_stall_mb * MIB)
            stall(f, s)


# 5b. DATA churn
def data_churn(f, rcpt):
    """`connections` LMTP sessions, each starting DATA, sending data_stall_mb MiB of body
    and hanging up without the final dot, over and over. Every body the server was
    holding is dropped; what it keeps afterwards is memory it did not give back (with
    glibc's default allocator settings this climbed past the 512 MB aim)."""
    def attempt(f):
        with f.connect(f.ports["lmtp"]) as s:
            if _start_data(f, s, rcpt, "churn"):
                send_bytes(f, s, f.a.data_stall_mb * MIB)
                f.count("data_dropped")
    run_workers(f, f.a.connections, attempt)


# 5c. APPEND churn
def append_churn(f, user, password):
    """`connections` logged-in clients, each announcing a data_stall_mb MiB APPEND
    (non-synchronizing literal), sending all of it but the last line and hanging up,
    over and over. As data-churn, through IMAP's literal reader."""
    size = f.a.data_stall_mb * MIB
    head = b"Subject: dropped\r\n\r\n"

    def attempt(f):
        with f.connect(f.ports["imap"]) as s:
            read_line(s)
            s.sendall(b'l LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
            if (read_tagged(s, b"l") or b"").split(b" ")[1:2] != [b"OK"]:
                f.count("login_failed")
                return
            s.sendall(b"a APPEND INBOX {%d+}\r\n" % size + head)
            f.count("append_started")
            send_bytes(f, s, size - len(head) - 100)
            f.count("append_dropped")
    run_workers(f, f.a.connections, attempt)


# 6. huge FETCH
def huge_fetch(f, user, password):
    """fetch_clients logged-in clients: half send FETCH 1 (BODY.PEEK[] x400), half
    FETCH 1:* BODY.PEEK[]; all read their answers slowly (64 KiB per 50 ms)."""
    def attempt(f, many):
        with f.connect(f.ports["imap"], timeout=10) as s:
            s.settimeout(10)
            read_line(s)
            s.sendall(b'l LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
            if (read_tagged(s, b"l") or b"").split(b" ")[1:2] != [b"OK"]:
                f.count("login_failed")
                return
            s.sendall(b"s SELECT INBOX\r\n")
            read_tagged(s, b"s")
            s.settimeout(2)  # a silence this long after the tagged answer: ask again
            items = b" ".join([b"BODY.PEEK[]"] * 400) if many else b"BODY.PEEK[]"
            what = b"1 (%s)" % items if many else b"1:* " + items
            for k in range(1000):
                tag = b"f%d" % k
                s.sendall(tag + b" FETCH " + what + b"\r\n")
                f.count("fetches_sent")
                tail = b""
                while f.left() > 0:
                    try:
                        data = s.recv(65536)
                    except socket.timeout:
                        if (b"\n" + tag + b" ") in tail:
                            f.count("fetches_answered")
                            break
                        continue
                    if not data:
                        f.count("closed_by_server")
                        return
                    f.count("bytes_read", len(data))
                    tail = (tail + data)[-512:]
                    time.sleep(0.05)
                if f.left() <= 0:
                    return

    half = max(1, f.a.fetch_clients // 2)
    threads = [threading.Thread(target=run_workers, args=(f, half, lambda f, m=m: attempt(f, m)), daemon=True)
               for m in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, f.left()) + 30)
