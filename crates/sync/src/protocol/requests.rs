//! Encoding every authenticated-state command (`docs/replication.md`, section 5): the
//! client sends only what these produce, and the server's `Request::parse` reads it
//! back, so the two cannot disagree (each variant is round-trip tested).

use tern_store::UniqueId;

use super::update::encode_update;
use super::{encode_user, Request, Selection};
use crate::wire::Encoder;

impl Request {
    /// The command's verb, as sent.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Capability => "CAPABILITY",
            Request::Noop => "NOOP",
            Request::Logout => "LOGOUT",
            Request::StartTls => "STARTTLS",
            Request::Authenticate { .. } => "AUTHENTICATE",
            Request::Mailboxes { .. } => "MAILBOXES",
            Request::Reserve { .. } => "RESERVE",
            Request::User(_) => "USER",
            Request::Unuser(_) => "UNUSER",
            Request::Update(_) => "UPDATE",
            Request::Rename { .. } => "RENAME",
            Request::Delete { .. } => "DELETE",
            Request::Records { .. } => "RECORDS",
            Request::Users => "USERS",
            Request::Message { .. } => "MESSAGE",
        }
    }

    /// Encodes `tag COMMAND ...` CRLF (literals non-synchronizing, for pipelining).
    pub fn encode(&self, enc: &mut Encoder, tag: &str) {
        match self {
            Request::Update(u) => return encode_update(enc, tag, u),
            Request::User(s) => return encode_user(enc, tag, s),
            _ => {}
        }
        enc.atom(tag).sp().raw(self.verb());
        match self {
            Request::Authenticate { mechanism, initial } => {
                enc.sp().string(mechanism);
                if let Some(i) = initial {
                    enc.sp().string(i);
                }
            }
            Request::Mailboxes {
                user,
                selection,
                same,
            } => {
                enc.sp().string(user).sp();
                match selection {
                    Selection::All => {
                        enc.raw("ALL");
                        if let Some(same) = same {
                            enc.sp().string(same);
                        }
                    }
                    Selection::Some { ids, names } => {
                        ids_list(enc, ids);
                        enc.sp().open();
                        for (i, n) in names.iter().enumerate() {
                            if i > 0 {
                                enc.sp();
                            }
                            enc.string(n);
                        }
                        enc.close();
                    }
                }
            }
            Request::Reserve { mailboxes, guids } => {
                enc.sp();
                ids_list(enc, mailboxes);
                for g in guids {
                    enc.sp().atom(&g.to_hex());
                }
            }
            Request::Unuser(user) => {
                enc.sp().string(user);
            }
            Request::Rename {
                user,
                uniqueid,
                name,
                partition,
            } => {
                enc.sp().string(user).sp().string(uniqueid.as_str()).sp();
                enc.string(name).sp().string(partition);
            }
            Request::Delete { user, uniqueid } => {
                enc.sp().string(user).sp().string(uniqueid.as_str());
            }
            Request::Records {
                user,
                uniqueid,
                from,
            } => {
                enc.sp().string(user).sp().string(uniqueid.as_str());
                if *from > 1 {
                    enc.sp().number(u64::from(*from));
                }
            }
            Request::Message { guid, size } => {
                enc.sp().atom(&guid.to_hex()).sp().number(*size);
            }
            Request::Capability
            | Request::Noop
            | Request::Logout
            | Request::StartTls
            | Request::Users
            | Request::Update(_)
            | Request::User(_) => {}
        }
        enc.crlf();
    }
}

fn ids_list(enc: &mut Encoder, ids: &[UniqueId]) {
    enc.open();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            enc.sp();
        }
        enc.string(id.as_str());
    }
    enc.close();
}
