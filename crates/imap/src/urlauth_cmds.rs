//! URLAUTH (RFC 4467): GENURLAUTH signs a URL to one of the user's messages with the
//! mailbox's key, URLFETCH gives what a signed URL names to whoever its access
//! identifier admits, and RESETKEY invalidates every URL signed so far.
//!
//! A signed URL is fetched with its owner's rights, not the fetcher's: that is the
//! point of it. Every failure of URLFETCH (a bad signature, an expired URL, a reset
//! key, a fetcher the URL does not admit, a message gone) answers NIL for that URL,
//! without saying which, so that a URL cannot be probed.

use tern_store::{Actor, ANONYMOUS};

use crate::imap_url::{Access, MessageUrl};
use crate::mime::{mask_nul, part_structure, write_nstring, write_string};
use crate::session::{Outcome, Session};
use crate::types::{UrlFetchParam, UrlFetchWants};

impl<W> Session<W> {
    /// GENURLAUTH: for each rump (an absolute URL to a message of the logged-in
    /// user, ending in `;URLAUTH=access`), the full URL with its INTERNAL token.
    pub(crate) fn genurlauth(&mut self, pairs: &[(String, String)]) -> Outcome {
        let actor = self.actor();
        let mut full = Vec::with_capacity(pairs.len());
        for (rump, mechanism) in pairs {
            if mechanism != "INTERNAL" {
                return Outcome::no(&format!("Unknown URLAUTH mechanism {mechanism}"));
            }
            let url = match MessageUrl::parse(rump) {
                Ok(u) => u,
                Err(e) => return Outcome::bad(&format!("Bad URL: {e}")),
            };
            let Some(auth) = url.auth.as_ref().filter(|a| a.verifier.is_none()) else {
                return Outcome::bad("The URL must end in ;URLAUTH=access, without a token");
            };
            if url.host.is_none() || url.user.as_deref() != Some(actor.name.as_str()) {
                return Outcome::bad("The URL must be absolute and name the logged-in user");
            }
            let mailbox = match self.store.resolve(&actor, &url.mailbox) {
                Ok(Some((m, _))) => m,
                Ok(None) => return Outcome::no("[TRYCREATE] No such mailbox"),
                Err(e) => return Outcome::store_error(&e),
            };
            if url.uidvalidity.is_some_and(|v| v != mailbox.uidvalidity) {
                return Outcome::no("UIDVALIDITY has changed");
            }
            match self
                .store
                .urlauth_sign(&actor, &mailbox.uniqueid, &auth.rump)
            {
                Ok(token) => full.push(format!("{}:INTERNAL:{token}", auth.rump)),
                Err(e) => return Outcome::store_error(&e),
            }
        }
        let mut line = b"GENURLAUTH".to_vec();
        for u in &full {
            line.push(b' ');
            crate::mime::write_string(&mut line, u.as_bytes());
        }
        self.untagged(&String::from_utf8_lossy(&line));
        Outcome::ok("GENURLAUTH completed")
    }

    /// RESETKEY: new keys for one mailbox, or for every mailbox of the user.
    pub(crate) fn resetkey(&mut self, mailbox: Option<&str>, mechanisms: &[String]) -> Outcome {
        if let Some(m) = mechanisms.iter().find(|m| *m != "INTERNAL") {
            return Outcome::no(&format!("Unknown URLAUTH mechanism {m}"));
        }
        let actor = self.actor();
        let target = match mailbox {
            None => None,
            Some(name) => match self.store.resolve(&actor, name) {
                Ok(Some((m, _))) => Some(m.uniqueid),
                Ok(None) => return Outcome::no("[TRYCREATE] No such mailbox"),
                Err(e) => return Outcome::store_error(&e),
            },
        };
        match self.store.urlauth_reset(&actor, target.as_ref()) {
            Ok(()) => Outcome::ok("RESETKEY completed"),
            Err(e) => Outcome::store_error(&e),
        }
    }

    /// URLFETCH: `* URLFETCH url data ...`, data NIL for a URL that admits nothing.
    /// A URL in parentheses (RFC 5524) is answered with the items it asks for:
    /// BODYPARTSTRUCTURE, then BINARY (decoded, `~{n}` when it holds NUL) or BODY.
    pub(crate) fn urlfetch(&mut self, params: &[UrlFetchParam]) -> Outcome {
        let mut out = b"URLFETCH".to_vec();
        for p in params {
            let found = MessageUrl::parse(&p.url).ok().and_then(|url| {
                let raw = self.authorized_message(&url)?;
                // A section the message lacks makes the whole URL NIL.
                let named = url.cut(&raw)?;
                Some((url, raw, named))
            });
            out.push(b' ');
            write_string(&mut out, p.url.as_bytes());
            out.push(b' ');
            if out.len() > self.config.max_literal {
                // Up to 100 whole messages would otherwise be held at once.
                return Outcome::no(
                    "[LIMIT] URLFETCH answer larger than APPENDLIMIT; fetch fewer URLs at a time",
                );
            }
            match (p.extended, found) {
                (_, None) => out.extend_from_slice(b"NIL"),
                (None, Some((_, _, mut named))) => {
                    // As FETCH sends NUL; BINARY is the way to the exact bytes.
                    mask_nul(&mut named);
                    write_nstring(&mut out, Some(&named));
                }
                (Some(wants), Some((url, raw, named))) => {
                    write_wanted(&mut out, wants, &url, &raw, named)
                }
            }
        }
        self.untagged_bytes(&out);
        Outcome::ok("URLFETCH completed")
    }

    /// The whole message a URLAUTH URL names, if the URL admits the logged-in user
    /// and its signature holds under the mailbox's current key; read with the URL
    /// owner's rights. The caller cuts what the URL names ([`MessageUrl::cut`]).
    pub(crate) fn authorized_message(&self, url: &MessageUrl) -> Option<Vec<u8>> {
        let auth = url.auth.as_ref()?;
        let (mechanism, token) = auth.verifier.as_ref()?;
        if mechanism != "INTERNAL" {
            return None;
        }
        if url.expire.is_some_and(|t| t <= crate::response::unix_now()) {
            return None;
        }
        let fetcher = self.actor();
        let admitted = match &auth.access {
            Access::Anonymous => true,
            Access::AuthUser => !fetcher.name.is_empty() && fetcher.name != ANONYMOUS,
            Access::User(name) => *name == fetcher.name,
            // Only a submission server may fetch these, and tern has no way to know
            // one: refused rather than given to anyone who logs in as the user.
            Access::Submit(_) => false,
        };
        if !admitted {
            return None;
        }
        let owner = Actor {
            name: url.user.clone()?,
            is_admin: false,
        };
        self.read_url_message(&owner, url, |mailbox| {
            match self
                .store
                .urlauth_verify(&mailbox.uniqueid, &auth.rump, token)
            {
                Ok(true) => Ok(()),
                _ => Err("not signed with the mailbox's key".into()),
            }
        })
        .ok()
    }
}

/// `(BODYPARTSTRUCTURE body BINARY data)`: what an extended URLFETCH asked for of the
/// part `url` names in the message `raw` (`named`: the bytes it names, as stored).
/// For a HEADER, TEXT or MIME section (not a part) BODYPARTSTRUCTURE is left out and
/// BINARY is NIL, as it is for an encoding tern cannot undo.
fn write_wanted(
    out: &mut Vec<u8>,
    wants: UrlFetchWants,
    url: &MessageUrl,
    raw: &[u8],
    mut named: Vec<u8>,
) {
    let mut items: Vec<Vec<u8>> = Vec::new();
    // `(url)` alone asks for the data as stored, as a bare URL does (Dovecot reads it
    // so too).
    let wants = if wants == UrlFetchWants::default() {
        UrlFetchWants {
            body: true,
            ..wants
        }
    } else {
        wants
    };
    if wants.body_part_structure {
        // The grammar has no NIL for a structure: a HEADER, TEXT or MIME section,
        // which has none, leaves the item out.
        // With BINARY, the structure is that of the data BINARY sends: decoded sizes
        // and line counts (RFC 5524 3.2; the encodings named stay the stored ones).
        let decoded;
        let of = if wants.binary {
            decoded = tern_message::with_leaves_decoded(raw);
            &decoded[..]
        } else {
            raw
        };
        if let Some(structure) = url.part().and_then(|part| part_structure(of, part)) {
            let mut item = b"BODYPARTSTRUCTURE ".to_vec();
            item.extend_from_slice(&structure);
            items.push(item);
        }
    }
    if wants.binary {
        let mut item = b"BINARY ".to_vec();
        let decoded = url
            .part()
            .and_then(|part| tern_message::decoded_part(raw, part).ok().flatten())
            .map(|d| url.window(d));
        match decoded {
            Some(d) if d.contains(&0) => {
                item.extend_from_slice(format!("~{{{}}}\r\n", d.len()).as_bytes());
                item.extend_from_slice(&d);
            }
            Some(d) => write_nstring(&mut item, Some(&d)),
            None => item.extend_from_slice(b"NIL"),
        }
        items.push(item);
    }
    if wants.body {
        let mut item = b"BODY ".to_vec();
        mask_nul(&mut named);
        write_nstring(&mut item, Some(&named));
        items.push(item);
    }
    out.push(b'(');
    out.extend_from_slice(&items.join(&b' '));
    out.push(b')');
}
