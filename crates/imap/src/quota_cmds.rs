//! QUOTA (RFC 9208): one quota root per user, named "", covering all their mailboxes.

use crate::response::push_mailbox;
use crate::session::{Outcome, Session};

impl<W> Session<W> {
    /// `* QUOTA "" (STORAGE used limit MESSAGE used limit)` for the user's root;
    /// resources without a limit are left out.
    fn quota_line(&mut self) -> Result<(), Outcome> {
        let user = match self.store.user(self.user_name()) {
            Ok(Some(u)) => u,
            Ok(None) => return Err(Outcome::no("No such user")),
            Err(e) => return Err(Outcome::store_error(&e)),
        };
        let mut resources = Vec::new();
        if let Some(limit) = user.quota.storage {
            // STORAGE is counted in units of 1024 octets (RFC 9208 5.1).
            resources.push(format!(
                "STORAGE {} {}",
                user.used_storage.div_ceil(1024),
                limit / 1024
            ));
        }
        if let Some(limit) = user.quota.messages {
            resources.push(format!("MESSAGE {} {}", user.used_messages, limit));
        }
        self.untagged(&format!("QUOTA \"\" ({})", resources.join(" ")));
        Ok(())
    }

    pub(crate) fn getquota(&mut self, root: &str) -> Outcome {
        if !root.is_empty() {
            return Outcome::no("[NONEXISTENT] No such quota root");
        }
        match self.quota_line() {
            Ok(()) => Outcome::ok("GETQUOTA completed"),
            Err(o) => o,
        }
    }

    pub(crate) fn getquotaroot(&mut self, mailbox: &str) -> Outcome {
        let user = self.user_name().to_owned();
        match self.store.mailbox(&user, mailbox) {
            Ok(Some(_)) => {}
            Ok(None) => return Outcome::no("[NONEXISTENT] No such mailbox"),
            Err(e) => return Outcome::store_error(&e),
        }
        let mut line = b"QUOTAROOT ".to_vec();
        push_mailbox(&mut line, mailbox, self.enabled.utf8);
        line.extend_from_slice(b" \"\"");
        self.untagged_bytes(&line);
        match self.quota_line() {
            Ok(()) => Outcome::ok("GETQUOTAROOT completed"),
            Err(o) => o,
        }
    }

    pub(crate) fn setquota(&mut self, root: &str, limits: &[(String, u64)]) -> Outcome {
        let user = match self.store.user(self.user_name()) {
            Ok(Some(u)) => u,
            Ok(_) => return Outcome::no("No such user"),
            Err(e) => return Outcome::store_error(&e),
        };
        if !user.is_admin {
            return Outcome::no("[NOPERM] Only administrators may set quotas");
        }
        if !root.is_empty() {
            return Outcome::no("[NONEXISTENT] No such quota root");
        }
        let mut quota = tern_store::Quota::default();
        for (resource, limit) in limits {
            match resource.as_str() {
                "STORAGE" => quota.storage = Some(limit.saturating_mul(1024)),
                "MESSAGE" => quota.messages = Some(*limit),
                _ => return Outcome::no("[UNSUPPORTED] Unknown quota resource"),
            }
        }
        match self.store.set_quota(&user.name, quota) {
            Ok(()) => {
                let _ = self.quota_line();
                Outcome::ok("SETQUOTA completed")
            }
            Err(e) => Outcome::store_error(&e),
        }
    }
}
