//! ACL (RFC 4314): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS. The rights
//! themselves are checked by the store in every operation; these commands only read
//! and change the lists.

use tern_store::{Acl, Mailbox, Rights};

use crate::response::push_mailbox;
use crate::session::{Outcome, Session};

impl<W> Session<W> {
    fn acl_target(&self, name: &str) -> Result<(Mailbox, Rights), Outcome> {
        match self.store.resolve(&self.actor(), name) {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(Outcome::no("[NONEXISTENT] No such mailbox")),
            Err(e) => Err(Outcome::store_error(&e)),
        }
    }

    fn named(&self, prefix: &str, name: &str) -> Vec<u8> {
        let mut line = format!("{prefix} ").into_bytes();
        push_mailbox(&mut line, name, self.enabled.utf8);
        line
    }

    pub(crate) fn setacl(&mut self, name: &str, identifier: &str, rights: &str) -> Outcome {
        let (mailbox, _) = match self.acl_target(name) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let identifier = canonical_identifier(identifier);
        let (mode, letters) = match rights.as_bytes().first() {
            Some(b'+') => (1, &rights[1..]),
            Some(b'-') => (-1, &rights[1..]),
            _ => (0, rights),
        };
        let change = match Rights::parse(letters) {
            Ok(r) => r,
            Err(_) => return Outcome::bad("Invalid rights"),
        };
        let current = Acl::parse(&mailbox.acl).get(&identifier);
        let new = match mode {
            1 => current | change,
            -1 => current.without(change),
            _ => change,
        };
        let new = (!new.is_empty()).then_some(new);
        match self
            .store
            .set_acl(&self.actor(), &mailbox.uniqueid, &identifier, new)
        {
            Ok(_) => Outcome::ok("SETACL completed"),
            Err(e) => Outcome::store_error(&e),
        }
    }

    pub(crate) fn deleteacl(&mut self, name: &str, identifier: &str) -> Outcome {
        let (mailbox, _) = match self.acl_target(name) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let identifier = canonical_identifier(identifier);
        match self
            .store
            .set_acl(&self.actor(), &mailbox.uniqueid, &identifier, None)
        {
            Ok(_) => Outcome::ok("DELETEACL completed"),
            Err(e) => Outcome::store_error(&e),
        }
    }

    pub(crate) fn getacl(&mut self, name: &str) -> Outcome {
        let (mailbox, rights) = match self.acl_target(name) {
            Ok(t) => t,
            Err(o) => return o,
        };
        if !rights.contains(Rights::ADMIN) {
            return Outcome::no("[NOPERM] Needs the a right");
        }
        let mut line = self.named("ACL", name);
        // The owner's rights are implicit and complete; show them first.
        let mut entries = vec![(mailbox.user.clone(), Rights::ALL)];
        entries.extend(
            Acl::parse(&mailbox.acl)
                .entries()
                .iter()
                .filter(|(id, _)| *id != mailbox.user)
                .cloned(),
        );
        for (id, r) in entries {
            line.push(b' ');
            crate::mime::write_astring(&mut line, id.as_bytes());
            line.push(b' ');
            crate::mime::write_astring(&mut line, r.to_string().as_bytes());
        }
        self.untagged_bytes(&line);
        Outcome::ok("GETACL completed")
    }

    pub(crate) fn listrights(&mut self, name: &str, identifier: &str) -> Outcome {
        let (mailbox, rights) = match self.acl_target(name) {
            Ok(t) => t,
            Err(o) => return o,
        };
        if !rights.contains(Rights::ADMIN) {
            return Outcome::no("[NOPERM] Needs the a right");
        }
        let identifier = canonical_identifier(identifier);
        let mut line = self.named("LISTRIGHTS", name);
        line.push(b' ');
        crate::mime::write_astring(&mut line, identifier.as_bytes());
        if identifier == mailbox.user {
            line.extend_from_slice(format!(" \"{}\"", Rights::ALL).as_bytes());
        } else {
            line.extend_from_slice(b" \"\" l r s w i p k x t e a");
        }
        self.untagged_bytes(&line);
        Outcome::ok("LISTRIGHTS completed")
    }

    pub(crate) fn myrights(&mut self, name: &str) -> Outcome {
        let (_, rights) = match self.acl_target(name) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let mut line = self.named("MYRIGHTS", name);
        line.push(b' ');
        crate::mime::write_astring(&mut line, rights.to_string().as_bytes());
        self.untagged_bytes(&line);
        Outcome::ok("MYRIGHTS completed")
    }
}

/// User names are case-insensitive and stored lower-case; `anyone` and negative
/// entries keep their form.
fn canonical_identifier(identifier: &str) -> String {
    identifier.to_ascii_lowercase()
}
