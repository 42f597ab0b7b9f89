//! Messages the MIME unit tests of this crate and of the protocol crates share (with
//! the `fixtures` feature): a simple message, a multipart/alternative, a
//! multipart/mixed with an attachment and an encapsulated message, and address groups.

/// Fixture `SIMPLE`.
pub const SIMPLE: &[u8] = b"From: John Doe <john@example.com>\r\n\
To: Jane Roe <jane@example.org>, bob@example.net\r\n\
Subject: Hello world\r\n\
Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
Message-ID: <B27397-0100000@example.com>\r\n\
\r\n\
Hello Jane,\r\n\
How are you?\r\n";

/// Fixture `ALTERNATIVE`.
pub const ALTERNATIVE: &[u8] = b"From: a@example.com\r\n\
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

/// Fixture `MIXED`.
pub const MIXED: &[u8] = b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n\
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

/// Fixture `GROUPS`.
pub const GROUPS: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\r\n\
Cc: undisclosed-recipients:;\r\n\
Subject: groups\r\n\
\r\n\
body\r\n";
