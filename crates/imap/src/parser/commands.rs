//! The dispatch on the command name (and `UID` sub-command), and the grammar of the
//! commands that belong to no larger family: LOGIN, AUTHENTICATE (SASL-IR), ENABLE, ID,
//! COMPRESS, and the QUOTA and ACL commands.

use std::borrow::Cow;

use super::lexer::{fail, fail_with, shown, upper, utf8, Fail, P, R};
use super::ParseErrorKind;
use crate::types::CommandBody;

impl<'a> P<'a> {
    pub(super) fn command(&mut self) -> R<CommandBody> {
        let name = self.atom()?;
        let k = upper(name);
        let body = match k.as_str() {
            "CAPABILITY" => CommandBody::Capability,
            "NOOP" => CommandBody::Noop,
            "LOGOUT" => CommandBody::Logout,
            "STARTTLS" => CommandBody::StartTls,
            "NAMESPACE" => CommandBody::Namespace,
            "IDLE" => CommandBody::Idle,
            "CHECK" => CommandBody::Check,
            "CLOSE" => CommandBody::Close,
            "UNSELECT" => CommandBody::Unselect,
            "CANCELUPDATE" => {
                // RFC 5267 4.3: `"CANCELUPDATE" 1*(SP quoted)`.
                let mut tags = Vec::new();
                while self.eat(b' ') {
                    if tags.len() == 100 {
                        return fail("too many tags");
                    }
                    tags.push(String::from_utf8_lossy(&self.string()?).into_owned());
                }
                if tags.is_empty() {
                    return fail("CANCELUPDATE needs a tag");
                }
                CommandBody::CancelUpdate(tags)
            }
            "EXPUNGE" => CommandBody::Expunge { uids: None },
            "AUTHENTICATE" => self.authenticate()?,
            "LOGIN" => {
                self.sp()?;
                let user = self.text()?;
                self.sp()?;
                let password = self.text()?;
                CommandBody::Login { user, password }
            }
            "ENABLE" => {
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(self.keyword()?);
                }
                if caps.is_empty() {
                    return fail("ENABLE needs a capability");
                }
                CommandBody::Enable(caps)
            }
            "ID" => self.id()?,
            "SELECT" => self.select(false)?,
            "EXAMINE" => self.select(true)?,
            "CREATE" => self.create()?,
            "DELETE" => CommandBody::Delete(self.sp_mailbox()?),
            "RENAME" => {
                let from = self.sp_mailbox()?;
                let to = self.sp_mailbox()?;
                CommandBody::Rename { from, to }
            }
            "SUBSCRIBE" => CommandBody::Subscribe(self.sp_mailbox()?),
            "UNSUBSCRIBE" => CommandBody::Unsubscribe(self.sp_mailbox()?),
            "LIST" => self.list()?,
            "LSUB" => {
                let reference = self.sp_mailbox()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                CommandBody::List {
                    lsub: true,
                    reference,
                    patterns: vec![pattern],
                    select: Vec::new(),
                    return_opts: Vec::new(),
                    status: None,
                }
            }
            "STATUS" => {
                let mailbox = self.sp_mailbox()?;
                self.sp()?;
                let items = self.status_list()?;
                CommandBody::Status { mailbox, items }
            }
            "APPEND" => self.append()?,
            "GENURLAUTH" => self.genurlauth()?,
            "UNAUTHENTICATE" => CommandBody::Unauthenticate,
            "REPLACE" => self.replace(false)?,
            "NOTIFY" => self.notify()?,
            "RESETKEY" => self.resetkey()?,
            "URLFETCH" => self.urlfetch()?,
            "SEARCH" => self.search(false)?,
            "FETCH" => self.fetch(false)?,
            "STORE" => self.store(false)?,
            "COPY" => self.copy_move(false, false)?,
            "MOVE" => self.copy_move(false, true)?,
            "SORT" => self.sort(false)?,
            "THREAD" => self.thread(false)?,
            "UID" => {
                self.sp()?;
                let sub = self.keyword()?;
                match sub.as_str() {
                    "COPY" => self.copy_move(true, false)?,
                    "REPLACE" => self.replace(true)?,
                    "MOVE" => self.copy_move(true, true)?,
                    "FETCH" => self.fetch(true)?,
                    "SEARCH" => self.search(true)?,
                    "STORE" => self.store(true)?,
                    "SORT" => self.sort(true)?,
                    "THREAD" => self.thread(true)?,
                    "EXPUNGE" => {
                        self.sp()?;
                        CommandBody::Expunge {
                            uids: Some(self.sequence_set()?),
                        }
                    }
                    _ => return fail_with("unknown UID command", sub.as_bytes()),
                }
            }
            "GETMETADATA" => self.getmetadata()?,
            "SETMETADATA" => self.setmetadata()?,
            "GETQUOTA" => {
                self.sp()?;
                CommandBody::GetQuota(self.text()?)
            }
            "GETQUOTAROOT" => CommandBody::GetQuotaRoot(self.sp_mailbox()?),
            "SETQUOTA" => self.setquota()?,
            "SETACL" => {
                let mailbox = self.sp_mailbox()?;
                self.sp()?;
                let identifier = self.text()?;
                self.sp()?;
                let rights = self.text()?;
                CommandBody::SetAcl {
                    mailbox,
                    identifier,
                    rights,
                }
            }
            "DELETEACL" | "LISTRIGHTS" => {
                let mailbox = self.sp_mailbox()?;
                self.sp()?;
                let identifier = self.text()?;
                if k == "DELETEACL" {
                    CommandBody::DeleteAcl {
                        mailbox,
                        identifier,
                    }
                } else {
                    CommandBody::ListRights {
                        mailbox,
                        identifier,
                    }
                }
            }
            "GETACL" => CommandBody::GetAcl(self.sp_mailbox()?),
            "MYRIGHTS" => CommandBody::MyRights(self.sp_mailbox()?),
            "COMPRESS" => {
                self.sp()?;
                CommandBody::Compress(self.keyword()?)
            }
            _ => {
                return Err(Fail {
                    msg: Cow::Owned(format!("unknown command {}", shown(name))),
                    kind: ParseErrorKind::UnknownCommand,
                })
            }
        };
        Ok(body)
    }

    fn authenticate(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mechanism = self.keyword()?;
        let initial = if self.eat(b' ') {
            let r =
                self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
            if !valid_base64(r) {
                return fail("bad initial response");
            }
            Some(String::from_utf8_lossy(r).into_owned())
        } else {
            None
        };
        Ok(CommandBody::Authenticate { mechanism, initial })
    }

    fn id(&mut self) -> R<CommandBody> {
        self.sp()?;
        if self.next_is("NIL") {
            self.pos += 3;
            return Ok(CommandBody::Id(None));
        }
        self.open()?;
        let mut params = Vec::new();
        if !self.eat(b')') {
            loop {
                let k = utf8(self.string()?)?;
                self.sp()?;
                let v = match self.nstring()? {
                    Some(v) => Some(utf8(v)?),
                    None => None,
                };
                params.push((k, v));
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Id(Some(params)))
    }

    fn setquota(&mut self) -> R<CommandBody> {
        self.sp()?;
        let root = self.text()?;
        self.sp()?;
        self.open()?;
        let mut limits = Vec::new();
        if !self.eat(b')') {
            loop {
                let name = self.keyword()?;
                self.sp()?;
                limits.push((name, self.number64()?));
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::SetQuota { root, limits })
    }
}

/// `base64 / "="` as in SASL-IR: groups of four, `=` padding only at the end.
fn valid_base64(r: &[u8]) -> bool {
    if r == b"=" {
        return true;
    }
    if r.is_empty() || r.len() & 3 != 0 {
        return false;
    }
    let pad = r.iter().rev().take_while(|&&c| c == b'=').count();
    pad <= 2 && !r.iter().take(r.len() - pad).any(|&c| c == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_command;
    use crate::parser::test_util::*;

    #[test]
    fn simple_commands_any_case() {
        assert_eq!(ok("a CAPABILITY"), CommandBody::Capability);
        assert_eq!(ok("a noop"), CommandBody::Noop);
        assert_eq!(ok("a LogOut\r\n"), CommandBody::Logout);
        assert_eq!(ok("a STARTTLS"), CommandBody::StartTls);
        assert_eq!(ok("a namespace"), CommandBody::Namespace);
        assert_eq!(ok("a IDLE"), CommandBody::Idle);
        assert_eq!(ok("a CHECK"), CommandBody::Check);
        assert_eq!(ok("a close"), CommandBody::Close);
        assert_eq!(ok("a UNSELECT"), CommandBody::Unselect);
        assert_eq!(ok("a EXPUNGE"), CommandBody::Expunge { uids: None });
        assert_eq!(
            ok("A202 UID EXPUNGE 3000:3002"),
            CommandBody::Expunge {
                uids: Some(ranges(&[rng(v(3000), v(3002))]))
            }
        );
        let c = parse_command(b"x]y.1 NOOP", false).unwrap();
        assert_eq!(c.tag, "x]y.1");
    }

    #[test]
    fn login_and_strings() {
        assert_eq!(
            ok("a001 login SMITH SESAME"),
            CommandBody::Login {
                user: s("SMITH"),
                password: s("SESAME")
            }
        );
        assert_eq!(
            ok(r#"a LOGIN "fred \"the\" \\ man" "p w""#),
            CommandBody::Login {
                user: s(r#"fred "the" \ man"#),
                password: s("p w")
            }
        );
        assert_eq!(
            okb("a LOGIN {5}\r\nj\u{f6}rg ]x]".as_bytes()),
            CommandBody::Login {
                user: s("j\u{f6}rg"),
                password: s("]x]")
            }
        );
        bad(r#"a LOGIN "a\b" c"#);
        bad("a LOGIN \"a\rb\" c");
        bad("a LOGIN \"a\0b\" c");
        bad(r#"a LOGIN "abc"#);
        bad("a LOGIN {10}\r\nshort");
        bad("a LOGIN {5}\r\nabcdefg");
        bad("a LOGIN a");
        bad("a LOGIN a b c");
        bad("a LOGIN ~{1}\r\na b");
        assert!(parse_command(b"a LOGIN {1}\r\n\xff b", false).is_err());
    }

    #[test]
    fn authenticate() {
        assert_eq!(
            ok("a AUTHENTICATE plain"),
            CommandBody::Authenticate {
                mechanism: s("PLAIN"),
                initial: None
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0"),
            CommandBody::Authenticate {
                mechanism: s("PLAIN"),
                initial: Some(s("AGZyZWQAc2VjcmV0"))
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE EXTERNAL ="),
            CommandBody::Authenticate {
                mechanism: s("EXTERNAL"),
                initial: Some(s("="))
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlx"),
            CommandBody::Authenticate {
                mechanism: s("SCRAM-SHA-256"),
                initial: Some(s("biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlx"))
            }
        );
        ok("a AUTHENTICATE PLAIN AGE=");
        bad("a AUTHENTICATE PLAIN AGZ");
        bad("a AUTHENTICATE PLAIN A=ZA");
        bad("a AUTHENTICATE PLAIN A===");
        bad("a AUTHENTICATE PLAIN ");
        bad("a AUTHENTICATE");
    }

    #[test]
    fn enable_id_compress() {
        assert_eq!(
            ok("t ENABLE QRESYNC condstore UTF8=ACCEPT"),
            CommandBody::Enable(vec![s("QRESYNC"), s("CONDSTORE"), s("UTF8=ACCEPT")])
        );
        bad("t ENABLE");
        assert_eq!(ok("a023 ID NIL"), CommandBody::Id(None));
        assert_eq!(ok("a ID ()"), CommandBody::Id(Some(vec![])));
        assert_eq!(
            ok(
                r#"a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited" "os" NIL)"#
            ),
            CommandBody::Id(Some(vec![
                (s("name"), Some(s("sodr"))),
                (s("version"), Some(s("19.34"))),
                (s("vendor"), Some(s("Pink Floyd Music Limited"))),
                (s("os"), None),
            ]))
        );
        bad(r#"a ID ("name")"#);
        bad(r#"a ID (name "x")"#);
        bad("a ID");
        assert_eq!(
            ok("a COMPRESS deflate"),
            CommandBody::Compress(s("DEFLATE"))
        );
    }

    #[test]
    fn quota_and_acl() {
        assert_eq!(
            ok("G0001 GETQUOTA \"!partition/sda4\""),
            CommandBody::GetQuota(s("!partition/sda4"))
        );
        assert_eq!(ok("a GETQUOTA \"\""), CommandBody::GetQuota(s("")));
        assert_eq!(
            ok("A003 GETQUOTAROOT inbox"),
            CommandBody::GetQuotaRoot(s("INBOX"))
        );
        assert_eq!(
            ok("S0000 SETQUOTA \"User quota\" (STORAGE 512 message 1000)"),
            CommandBody::SetQuota {
                root: s("User quota"),
                limits: vec![(s("STORAGE"), 512), (s("MESSAGE"), 1000)]
            }
        );
        assert_eq!(
            ok("a SETQUOTA \"\" ()"),
            CommandBody::SetQuota {
                root: s(""),
                limits: vec![]
            }
        );
        bad("a SETQUOTA x (STORAGE)");
        bad("a SETQUOTA x STORAGE 1");
        assert_eq!(
            ok("A035 SETACL INBOX/Drafts John lrQswicda"),
            CommandBody::SetAcl {
                mailbox: s("INBOX/Drafts"),
                identifier: s("John"),
                rights: s("lrQswicda")
            }
        );
        assert_eq!(
            ok("A036 SETACL INBOX/Drafts anyone -w"),
            CommandBody::SetAcl {
                mailbox: s("INBOX/Drafts"),
                identifier: s("anyone"),
                rights: s("-w")
            }
        );
        assert_eq!(
            ok("A001 SETACL inbox \"Fred\" +rwipslxetad"),
            CommandBody::SetAcl {
                mailbox: s("INBOX"),
                identifier: s("Fred"),
                rights: s("+rwipslxetad")
            }
        );
        assert_eq!(
            ok("A001 DELETEACL INBOX/Drafts John"),
            CommandBody::DeleteAcl {
                mailbox: s("INBOX/Drafts"),
                identifier: s("John")
            }
        );
        assert_eq!(
            ok("a001 LISTRIGHTS ~/Mail/saved smith"),
            CommandBody::ListRights {
                mailbox: s("~/Mail/saved"),
                identifier: s("smith")
            }
        );
        assert_eq!(ok("A002 GETACL INBOX"), CommandBody::GetAcl(s("INBOX")));
        assert_eq!(ok("A003 MYRIGHTS INBOX"), CommandBody::MyRights(s("INBOX")));
        bad("a SETACL INBOX Fred");
        bad("a DELETEACL INBOX");
        bad("a GETACL");
    }
}
