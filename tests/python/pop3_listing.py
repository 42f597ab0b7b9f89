"""Logs in over POP3 with Python's poplib and prints what a POP3 client sees, one
fact per line: `uidl N UIDL`, `size N LIST-octets RETR-octets`, and for each message
the number of body lines starting with `From ` and with `>From `.

    python3 pop3_listing.py HOST PORT USER PASSWORD
"""
import poplib
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = poplib.POP3(host, port, timeout=30)
p.user(user)
p.pass_(password)
for line in p.uidl()[1]:
    n, uidl = line.decode().split(" ", 1)
    print(f"uidl {n} {uidl}")
listed = [int(line.split()[1]) for line in p.list()[1]]
for n, size in enumerate(listed, start=1):
    _, lines, octets = p.retr(n)
    body = lines[lines.index(b"") + 1:] if b"" in lines else []
    plain = sum(1 for l in body if l.startswith(b"From "))
    quoted = sum(1 for l in body if l.startswith(b">From "))
    print(f"size {n} {size} {octets}")
    print(f"from {n} {plain} {quoted}")
p.quit()
