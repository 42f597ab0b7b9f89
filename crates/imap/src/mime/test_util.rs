//! Fixtures and helpers shared by the MIME unit tests.

use crate::types::{Section, SectionText};

pub(super) const SIMPLE: &[u8] = b"From: John Doe <john@example.com>\r\n\
To: Jane Roe <jane@example.org>, bob@example.net\r\n\
Subject: Hello world\r\n\
Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
Message-ID: <B27397-0100000@example.com>\r\n\
\r\n\
Hello Jane,\r\n\
How are you?\r\n";

pub(super) const ALTERNATIVE: &[u8] = b"From: a@example.com\r\n\
To: b@example.com\r\n\
Subject: Re: [list] Fwd: Meeting (fwd)\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"XYZ\"\r\n\
\r\n\
preamble\r\n\
--XYZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=C3=A9 time\r\n\
--XYZ\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Caf&eacute;</p>\r\n\
--XYZ--\r\n\
epilogue\r\n";

pub(super) const MIXED: &[u8] = b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n\
To: =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>\r\n\
Cc: \"=?ISO-8859-1?B?RnJhbudvaXM=?=\" <francois@example.fr>\r\n\
Subject: =?UTF-8?B?R3LDvMOfZQ==?= again\r\n\
Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\
Message-ID: <m3@example.de>\r\n\
In-Reply-To: <m2@example.de>\r\n\
References: <m1@example.de>\r\n <m2@example.de>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=outer\r\n\
\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
\r\n\
See attached.\r\n\
--outer\r\n\
Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"data.bin\"\r\n\
Content-ID: <part2@example.de>\r\n\
Content-Description: Some data\r\n\
\r\n\
AAECAwQFBgcICQ==\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: inner@example.com\r\n\
Subject: Inner\r\n\
\r\n\
Inner body\r\n\
--outer--\r\n";

pub(super) const GROUPS: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\r\n\
Cc: undisclosed-recipients:;\r\n\
Subject: groups\r\n\
\r\n\
body\r\n";

pub(super) fn sec(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.to_vec(),
        text,
    }
}

pub(super) fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks that `b` is one well-formed IMAP parenthesised value (strings, literals,
/// NIL, numbers, nested lists).
pub(super) fn well_formed(b: &[u8]) -> bool {
    fn value(b: &[u8], mut p: usize) -> Option<usize> {
        match *b.get(p)? {
            b'(' => {
                p += 1;
                loop {
                    match *b.get(p)? {
                        b')' => return Some(p + 1),
                        b' ' if b.get(p + 1) != Some(&b')') && b.get(p + 1) != Some(&b' ') => {
                            p += 1
                        }
                        _ => p = value(b, p)?,
                    }
                }
            }
            b'"' => {
                p += 1;
                loop {
                    match *b.get(p)? {
                        b'\\' => p += 2,
                        b'"' => return Some(p + 1),
                        b'\r' | b'\n' => return None,
                        c if c >= 0x80 || c == 0 => return None,
                        _ => p += 1,
                    }
                }
            }
            b'{' => {
                let close = p + b[p..].iter().position(|&c| c == b'}')?;
                let n: usize = std::str::from_utf8(&b[p + 1..close]).ok()?.parse().ok()?;
                if b.get(close + 1..close + 3)? != b"\r\n" {
                    return None;
                }
                let end = close + 3 + n;
                if end > b.len() || b[close + 3..end].contains(&0) {
                    return None;
                }
                Some(end)
            }
            b'N' if b[p..].starts_with(b"NIL") => Some(p + 3),
            c if c.is_ascii_digit() => {
                while b.get(p).is_some_and(|c| c.is_ascii_digit()) {
                    p += 1;
                }
                Some(p)
            }
            _ => None,
        }
    }
    value(b, 0) == Some(b.len())
}
