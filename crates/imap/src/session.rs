//! One IMAP session's state and its command dispatch: what `connection.rs` runs for
//! each command, and what the command modules share (`Outcome`, the untagged
//! response buffer, the enabled extensions).

use std::sync::Arc;
use std::time::Duration;

use tern_net::{AuthThrottle, MemoryBudget, Peer, Reservation};
use tern_store::{Actor, Store, StoreError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::mime::MessageCaches;
use crate::selected::Selected;
use crate::types::{Command, CommandBody};
use crate::ImapConfig;

/// Read and write buffer size per connection. Small, because an idle connection is
/// mostly its buffers (10,000 IDLE clients must fit easily); large responses bypass
/// the write buffer and large literals go to the command reader's own storage.
pub(crate) const IO_BUFFER: usize = 4 * 1024;

/// Capabilities before login, less those that depend on TLS. LITERAL- rather than
/// LITERAL+ (RFC 7888): before login only small literals are read (see
/// `reader::limits`); LITERAL+ comes with the capabilities after login.
const CAPS_PREAUTH: &str = "IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ID ENABLE IDLE";

/// Most bytes of a streamed answer (FETCH) produced before they are written to the
/// connection; with one literal chunk on top, the bound on a session's output buffer.
pub(crate) const OUT_LIMIT: usize = 256 * 1024;

/// What a FETCH may read whole (a message and a section of it) outside the memory
/// budget.
const SMALL_READ: usize = 2 * 1024 * 1024;

/// The output buffer of a FETCH when the process's memory budget cannot cover
/// [`OUT_LIMIT`]: slower for the client, but the memory stays within the budget.
const OUT_MIN: usize = 16 * 1024;

/// How long a client has to complete the TLS handshake after STARTTLS.
pub(crate) const STARTTLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A change of the byte stream, made after the tagged OK of the command that asked
/// for it has been flushed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// STARTTLS: a TLS handshake, then a fresh session state.
    Tls,
    /// COMPRESS DEFLATE: both directions compressed from the next byte.
    Deflate,
}

/// What the client enabled with ENABLE (or implicitly, for CONDSTORE).
#[derive(Default, Clone, Copy)]
pub(crate) struct Enabled {
    pub(crate) condstore: bool,
    pub(crate) qresync: bool,
    pub(crate) utf8: bool,
    /// IMAP4rev2 (RFC 9051): UTF-8 names, ESEARCH answers, no \Recent.
    pub(crate) rev2: bool,
    /// UIDONLY (RFC 9586): no message sequence numbers, either way ([`crate::uidonly`]).
    pub(crate) uidonly: bool,
}

/// The tagged completion of a command.
pub(crate) struct Outcome {
    pub(crate) status: &'static str,
    pub(crate) text: String,
    pub(crate) close: bool,
}

impl Outcome {
    pub(crate) fn ok(text: &str) -> Outcome {
        Outcome {
            status: "OK",
            text: text.to_owned(),
            close: false,
        }
    }
    pub(crate) fn ok_code(code: &str, text: &str) -> Outcome {
        Outcome {
            status: "OK",
            text: format!("{code} {text}"),
            close: false,
        }
    }
    pub(crate) fn no(text: &str) -> Outcome {
        Outcome {
            status: "NO",
            text: text.to_owned(),
            close: false,
        }
    }
    pub(crate) fn bad(text: &str) -> Outcome {
        Outcome {
            status: "BAD",
            text: text.to_owned(),
            close: false,
        }
    }
    /// Maps a store refusal to the response code a client understands.
    pub(crate) fn store_error(e: &StoreError) -> Outcome {
        match e {
            StoreError::NoSuchMailbox { .. } => Outcome::no("[NONEXISTENT] No such mailbox"),
            StoreError::MailboxExists { .. } => {
                Outcome::no("[ALREADYEXISTS] Mailbox already exists")
            }
            StoreError::InvalidMailboxName { reason, .. } => {
                Outcome::no(&format!("[CANNOT] Invalid mailbox name: {reason}"))
            }
            StoreError::NotPermitted { reason, .. } => Outcome::no(&format!("[CANNOT] {reason}")),
            StoreError::OverQuota { .. } => Outcome::no("[OVERQUOTA] Over quota"),
            StoreError::PermissionDenied { needed, .. } => Outcome::no(&format!(
                "[NOPERM] Permission denied (needs rights {needed})"
            )),
            StoreError::InvalidFlag(f) => Outcome::bad(&format!("Invalid flag {f}")),
            StoreError::TooManyKeywords { limit, .. } => Outcome::no(&format!(
                "[LIMIT] This mailbox already has {limit} keywords, no more can be created"
            )),
            e => {
                tracing::warn!(error = %e, "imap command failed in the store");
                Outcome::no("[UNAVAILABLE] Temporary failure, try again")
            }
        }
    }
}

/// A session's state, shared by the command modules.
pub(crate) struct Session<W> {
    pub(crate) store: Store,
    pub(crate) config: Arc<ImapConfig>,
    pub(crate) cache: Arc<MessageCaches>,
    /// The logged-in user; `None` before authentication.
    pub(crate) actor: Option<Actor>,
    pub(crate) selected: Option<Selected>,
    pub(crate) enabled: Enabled,
    /// Untagged responses of the command being executed. A FETCH answer does not
    /// collect here whole: it is produced into this buffer [`OUT_LIMIT`] bytes at a
    /// time and written out in between (see `fetch::FetchStream`).
    pub(crate) out: Vec<u8>,
    /// The FETCH answer still to produce, set by `fetch` and written by `handle`.
    pub(crate) fetching: Option<crate::fetch::FetchStream>,
    pub(crate) writer: BufWriter<W>,
    pub(crate) auth_failures: u32,
    /// Who is on the other end.
    pub(crate) peer: Peer,
    /// Penalties for failed logins, shared by every listener of the process.
    pub(crate) throttle: Arc<AuthThrottle>,
    /// Turns true when the server shuts down (a throttled login stops waiting).
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
    /// The process's allowance for bytes in transit, and this command's share of it.
    pub(crate) budget: MemoryBudget,
    pub(crate) hold: Reservation,
    /// The commands running in the server's sessions, this one's included.
    pub(crate) running: crate::placement::Running,
    /// The connection is TLS (implicit or after STARTTLS).
    pub(crate) tls: bool,
    /// COMPRESS DEFLATE is active.
    pub(crate) compressed: bool,
    /// Set by STARTTLS or COMPRESS; carried out by `run` after the tagged OK.
    pub(crate) upgrade: Option<Upgrade>,
    /// When a connection that has not logged in by then is closed
    /// ([`ImapConfig::preauth_timeout`] after it was accepted).
    pub(crate) preauth_deadline: tokio::time::Instant,
    /// NOTIFY (RFC 5465): what the client asked to be told of as it happens.
    pub(crate) notifying: Option<crate::notify::Notifying>,
    /// The command being answered reported expunges (EXPUNGE or VANISHED responses).
    pub(crate) expunges_reported: bool,
}

impl<W> Session<W> {
    /// Queues `* line\r\n`.
    /// Turns CONDSTORE on from a command that implies it (FETCH MODSEQ or CHANGEDSINCE,
    /// STORE UNCHANGEDSINCE, SEARCH MODSEQ): with a mailbox selected, the client is
    /// first told its HIGHESTMODSEQ (RFC 7162 3.1), as SELECT (CONDSTORE) would have.
    pub(crate) fn enable_condstore(&mut self) {
        if self.enabled.condstore {
            return;
        }
        self.enabled.condstore = true;
        if let Some(modseq) = self.selected.as_ref().map(|v| v.seen_modseq) {
            self.untagged(&format!("OK [HIGHESTMODSEQ {modseq}] CONDSTORE enabled"));
        }
    }

    pub(crate) fn untagged(&mut self, line: &str) {
        self.untagged_bytes(line.as_bytes());
    }

    /// Queues `* line\r\n` for a line that may hold literals.
    pub(crate) fn untagged_bytes(&mut self, line: &[u8]) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(line);
        self.out.extend_from_slice(b"\r\n");
    }

    /// Who is acting: the logged-in user (before login, a nameless actor that has no
    /// right on any mailbox, so a missed state check still cannot leak mail).
    pub(crate) fn actor(&self) -> Actor {
        self.actor.clone().unwrap_or(Actor {
            name: String::new(),
            is_admin: false,
        })
    }

    /// The logged-in user (only called in the authenticated states).
    pub(crate) fn user_name(&self) -> &str {
        self.actor.as_ref().map_or("", |a| a.name.as_str())
    }

    /// Whether a password may be sent on this connection (LOGIN, AUTHENTICATE): over
    /// TLS, or in clear text from this machine when the configuration allows it. From
    /// another host, never without TLS: the password would cross the network readable.
    pub(crate) fn plaintext_auth_allowed(&self) -> bool {
        self.tls || (self.config.plaintext_auth && self.peer.is_local())
    }

    pub(crate) fn capabilities(&self) -> String {
        if self.actor.is_none() {
            let mut caps = CAPS_PREAUTH.to_owned();
            if self.config.tls.is_some() && !self.tls {
                caps.push_str(" STARTTLS");
            }
            if self.plaintext_auth_allowed() {
                for m in tern_net::sasl::MECHANISMS {
                    caps.push_str(" AUTH=");
                    caps.push_str(m);
                }
            } else {
                caps.push_str(" LOGINDISABLED");
            }
            return caps;
        }
        format!(
            "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE COMPRESS=DEFLATE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN \
             SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES PARTIAL CONTEXT=SEARCH CONTEXT=SORT CONDSTORE QRESYNC UTF8=ACCEPT \
             STATUS=SIZE BINARY WITHIN ACL RIGHTS=kxte QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE METADATA METADATA-SERVER MULTIAPPEND CATENATE URLAUTH URLAUTH=BINARY NOTIFY REPLACE UNAUTHENTICATE LIST-MYRIGHTS OBJECTID PREVIEW SAVEDATE UIDONLY SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES APPENDLIMIT={}",
            self.config.max_literal
        )
    }
}

impl<W: AsyncWrite + Unpin + Send> Session<W> {
    /// Executes one command and writes its responses; returns true to close.
    pub(crate) async fn handle<R: AsyncRead + Unpin>(
        &mut self,
        command: Command,
        reader: &mut BufReader<R>,
    ) -> bool {
        let Command { tag, body } = command;
        let outcome = match body {
            CommandBody::Idle => match self.idle(&tag, reader).await {
                Some(o) => o,
                None => return true,
            },
            CommandBody::Authenticate { mechanism, initial } => {
                match self.authenticate(&mechanism, initial, reader).await {
                    Some(o) => o,
                    None => return true,
                }
            }
            CommandBody::Login { user, password } => self.login(&user, &password).await,
            body => {
                let expunges_ok = !matches!(
                    body,
                    CommandBody::Fetch { uid: false, .. }
                        | CommandBody::Store { uid: false, .. }
                        | CommandBody::Search { uid: false, .. }
                        | CommandBody::Sort { uid: false, .. }
                        | CommandBody::Thread { uid: false, .. }
                        | CommandBody::Copy { uid: false, .. }
                        | CommandBody::Move { uid: false, .. }
                );
                let logout = matches!(body, CommandBody::Logout);
                // A SELECT's view is from a snapshot taken this instant: reading the
                // changes since would read nothing (what comes later, the next command
                // reports).
                let fresh_view = matches!(body, CommandBody::Select { .. });
                // Messages this command's report announces get NOTIFY's MessageNew
                // FETCH items too, not only those the notifier announces between
                // commands.
                let new_after = (!fresh_view).then(|| self.message_new_mark()).flatten();
                // One turn for the command, the first part of a FETCH answer and the
                // changes to report, in place or handed off (`placement.rs`).
                let running = self.running.start();
                let messages = self.selected.as_ref().map_or(0, |v| v.exists());
                let rule = crate::placement::rule(&body, messages);
                let step = crate::placement::run(running.in_place(rule), || {
                    let outcome = self.execute(&tag, body);
                    let step = match self.fetching.take() {
                        Some(mut stream) => {
                            let limit = self.fetch_buffer();
                            match self.fetch_step(&mut stream, limit) {
                                Ok(true) => FirstStep::Done(outcome),
                                Ok(false) => FirstStep::More(Box::new(stream), limit, outcome),
                                Err(crate::fetch::FetchError::Broken) => FirstStep::Broken,
                                Err(e) => FirstStep::Done(e.outcome()),
                            }
                        }
                        None => FirstStep::Done(outcome),
                    };
                    // A FETCH answer goes out before changes are reported: its
                    // sequence numbers were taken before any EXPUNGE the report may
                    // announce. Only the whole answer in the buffer is reported after.
                    if let FirstStep::Done(_) = step {
                        if !fresh_view {
                            self.report_changes(expunges_ok);
                        }
                        self.notify_changes();
                    }
                    step
                });
                let outcome = match step {
                    FirstStep::Done(outcome) => outcome,
                    FirstStep::Broken => return true,
                    FirstStep::More(stream, limit, outcome) => {
                        let in_place = || running.in_place(rule);
                        let rest = self.stream_rest(*stream, limit, outcome, &in_place);
                        let Some(outcome) = rest.await else {
                            return true;
                        };
                        crate::placement::run(in_place(), || {
                            self.report_changes(expunges_ok);
                            self.notify_changes();
                        });
                        outcome
                    }
                };
                if let Some(mark) = new_after {
                    if !self.fetch_new_messages(mark).await {
                        return true;
                    }
                }
                // Pending EXPUNGE and FETCH responses go before the BYE: nothing may
                // follow it but the tagged OK (RFC 3501 7.1.5).
                if logout {
                    self.untagged("BYE tern logging out");
                }
                outcome
            }
        };
        let outcome = self.with_highestmodseq(outcome);
        // The untagged responses and the tagged one leave in one write: one system
        // call, and one segment for a short answer instead of two.
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(format!("{tag} {} {}\r\n", outcome.status, outcome.text).as_bytes());
        if self.writer.write_all(&out).await.is_err() {
            return true;
        }
        outcome.close
    }

    /// Under QRESYNC, a command completes with `OK [HIGHESTMODSEQ n]`, `n` being the
    /// modseq through which the session has told the client everything:
    /// - after expunges were reported: RFC 7162 3.2.7 and 3.2.9 ask it of EXPUNGE and
    ///   UID EXPUNGE, and after another session's expunges (a NOOP, a UID FETCH) it is
    ///   the only way the client can move its modseq past them, since VANISHED carries
    ///   none;
    /// - while an expunge is held back (a FETCH, STORE or SEARCH by number may not
    ///   report it): `n` is then below the expunge, whatever MODSEQ the FETCH responses
    ///   showed, so a client that loses the connection asks for it again (RFC 7162 3.2).
    ///
    /// An OK that already carries a code is left as it is.
    fn with_highestmodseq(&mut self, mut outcome: Outcome) -> Outcome {
        let reported = std::mem::take(&mut self.expunges_reported);
        if !self.enabled.qresync || outcome.status != "OK" || outcome.text.starts_with('[') {
            return outcome;
        }
        let Some(view) = self.selected.as_ref() else {
            return outcome;
        };
        if !reported && !view.holds_expunges() {
            return outcome;
        }
        if let Some(modseq) = view.told_through() {
            outcome.text = format!("[HIGHESTMODSEQ {modseq}] {}", outcome.text);
        }
        outcome
    }

    /// Produces a FETCH answer into `out` and writes it to the connection, at most
    /// [`OUT_LIMIT`] bytes (and one literal chunk) at a time. The rendering (blob
    /// reads, MIME) runs under `block_in_place`; the writing is async, so a client that
    /// reads slowly holds no thread. Returns the tagged outcome (`done`, or the refusal
    /// of the message that could not be read), or `None` when the connection failed.
    pub(crate) async fn stream_fetch(
        &mut self,
        mut stream: crate::fetch::FetchStream,
        done: Outcome,
    ) -> Option<Outcome> {
        let limit = self.fetch_buffer();
        match tokio::task::block_in_place(|| self.fetch_step(&mut stream, limit)) {
            Ok(true) => Some(done),
            Ok(false) => self.stream_rest(stream, limit, done, &|| false).await,
            Err(crate::fetch::FetchError::Broken) => None,
            Err(e) => Some(e.outcome()),
        }
    }

    /// [`Session::stream_fetch`] after its first step: writes what the buffer holds,
    /// then goes on producing and writing until the answer is complete. Each step runs
    /// in place when `in_place` says so at that moment (`placement.rs`).
    async fn stream_rest(
        &mut self,
        mut stream: crate::fetch::FetchStream,
        limit: usize,
        done: Outcome,
        in_place: &(dyn Fn() -> bool + Sync),
    ) -> Option<Outcome> {
        loop {
            if !self.out.is_empty() {
                self.writer.write_all(&self.out).await.ok()?;
                self.out.clear();
            }
            match crate::placement::run(in_place(), || self.fetch_step(&mut stream, limit)) {
                Ok(true) => return Some(done),
                Ok(false) => {}
                // Part of a literal is out: the response cannot be completed.
                Err(crate::fetch::FetchError::Broken) => return None,
                Err(e) => return Some(e.outcome()),
            }
        }
    }

    /// The output buffer a FETCH answer is produced into, reserved once: how many
    /// bytes one step may add.
    fn fetch_buffer(&mut self) -> usize {
        // The buffer is a share of the process's memory budget while the FETCH runs.
        let limit = if self.hold.cover(2 * OUT_LIMIT) {
            OUT_LIMIT
        } else {
            OUT_MIN
        };
        // Sized once: growing by doubling could take twice what the budget covers.
        self.out
            .reserve_exact((limit + 8 * 1024).saturating_sub(self.out.len()));
        limit
    }

    /// Adds up to `limit` bytes (and one literal chunk) of a FETCH answer to the output
    /// buffer; true once the answer is complete. Blocks on the store: call it off the
    /// runtime.
    fn fetch_step(
        &mut self,
        stream: &mut crate::fetch::FetchStream,
        limit: usize,
    ) -> Result<bool, crate::fetch::FetchError> {
        let (store, cache, out, hold) = (&self.store, &self.cache, &mut self.out, &mut self.hold);
        // A large message read whole is held beside the output buffer, within the
        // budget. Small ones (most mail) are read whatever the budget says, so
        // clients of another protocol that spend it (stalled LMTP bodies) cannot
        // stop a FETCH BODY[HEADER]: they cost at most 2 MiB a session.
        let mut cover = |bytes: usize| bytes <= SMALL_READ || hold.cover(2 * OUT_LIMIT + bytes);
        stream.fill(store, cache, out, limit, &mut cover)
    }

    /// Tells the client what other sessions changed in the selected mailbox.
    pub(crate) fn report_changes(&mut self, expunges: bool) {
        let how = self.reporting(expunges);
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        // Kept searches report removals in the numbers the client knew.
        let before = view.has_contexts().then(|| view.uids.clone());
        match view.refresh(&self.store, how) {
            Ok(updates) => {
                self.expunges_reported |= updates.expunged;
                let (leaving, entering) = match &before {
                    Some(before) => self.update_contexts(before),
                    None => Default::default(),
                };
                for line in leaving.iter().chain(&updates.lines).chain(&entering) {
                    self.untagged(line);
                }
            }
            Err(StoreError::NoSuchMailbox { .. }) => {
                // Deleted under us: the client must select again.
                self.selected = None;
                self.untagged("OK [CLOSED] Mailbox was deleted");
            }
            Err(e) => tracing::warn!(error = %e, "imap refresh failed"),
        }
    }

    /// The synchronous commands. Runs on a blocking-capable thread.
    fn execute(&mut self, tag: &str, body: CommandBody) -> Outcome {
        let authenticated = self.actor.is_some();
        let selected = self.selected.is_some();
        if self.enabled.uidonly {
            if let Some(refused) = crate::uidonly::refusal(&body) {
                return refused;
            }
        }
        match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.untagged(&format!("CAPABILITY {caps}"));
                Outcome::ok("CAPABILITY completed")
            }
            CommandBody::Noop | CommandBody::Check => Outcome::ok("Done"),
            // The BYE follows the changes still to report (see `command`).
            CommandBody::Logout => Outcome {
                status: "OK",
                text: "LOGOUT completed".into(),
                close: true,
            },
            CommandBody::Id(_) => {
                self.untagged(&format!(
                    "ID (\"name\" \"tern\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                Outcome::ok("ID completed")
            }
            CommandBody::StartTls => self.starttls(),
            CommandBody::Compress(mechanism) => self.compress(&mechanism),
            _ if !authenticated => Outcome::no("Log in first"),
            CommandBody::Enable(caps) => {
                let mut on = Vec::new();
                for c in caps {
                    match c.to_ascii_uppercase().as_str() {
                        "CONDSTORE" => self.enabled.condstore = true,
                        "QRESYNC" => {
                            self.enabled.qresync = true;
                            self.enabled.condstore = true;
                        }
                        "UTF8=ACCEPT" => self.enabled.utf8 = true,
                        "UIDONLY" => {
                            self.enabled.uidonly = true;
                            self.stop_numbered_contexts();
                        }
                        "IMAP4REV2" => {
                            // RFC 9051 5.1: mailbox names are UTF-8 from now on.
                            self.enabled.rev2 = true;
                            self.enabled.utf8 = true;
                        }
                        _ => continue,
                    }
                    on.push(if c.eq_ignore_ascii_case("IMAP4rev2") {
                        "IMAP4rev2".to_owned()
                    } else {
                        c.to_ascii_uppercase()
                    });
                }
                self.untagged(format!("ENABLED {}", on.join(" ")).trim_end());
                Outcome::ok("ENABLE completed")
            }
            CommandBody::Namespace => {
                self.untagged("NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared Folders/\" \"/\"))");
                Outcome::ok("NAMESPACE completed")
            }
            CommandBody::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => self.select(&mailbox, read_only, condstore, qresync),
            CommandBody::Create {
                mailbox,
                special_use,
            } => self.create(&mailbox, &special_use),
            CommandBody::Delete(m) => self.delete(&m),
            CommandBody::Rename { from, to } => self.rename(&from, &to),
            CommandBody::Subscribe(m) => self.subscribe(&m, true),
            CommandBody::Unsubscribe(m) => self.subscribe(&m, false),
            CommandBody::List {
                lsub,
                reference,
                patterns,
                select,
                return_opts,
                status,
            } => self.list(
                lsub,
                &reference,
                &patterns,
                &select,
                &return_opts,
                status.as_deref(),
            ),
            CommandBody::Status { mailbox, items } => self.status(&mailbox, &items),
            CommandBody::Append { mailbox, messages } => self.append(&mailbox, &messages),
            CommandBody::GenUrlAuth(pairs) => self.genurlauth(&pairs),
            CommandBody::Unauthenticate => self.unauthenticate(),
            CommandBody::Notify(set) => self.notify_cmd(set),
            CommandBody::ResetKey {
                mailbox,
                mechanisms,
            } => self.resetkey(mailbox.as_deref(), &mechanisms),
            CommandBody::UrlFetch(urls) => self.urlfetch(&urls),
            CommandBody::GetMetadata {
                mailbox,
                entries,
                maxsize,
                depth,
            } => self.getmetadata(&mailbox, &entries, maxsize, depth),
            CommandBody::SetMetadata { mailbox, entries } => self.setmetadata(&mailbox, &entries),
            CommandBody::GetQuota(root) => self.getquota(&root),
            CommandBody::GetQuotaRoot(m) => self.getquotaroot(&m),
            CommandBody::SetQuota { root, limits } => self.setquota(&root, &limits),
            CommandBody::SetAcl {
                mailbox,
                identifier,
                rights,
            } => self.setacl(&mailbox, &identifier, &rights),
            CommandBody::DeleteAcl {
                mailbox,
                identifier,
            } => self.deleteacl(&mailbox, &identifier),
            CommandBody::GetAcl(m) => self.getacl(&m),
            CommandBody::ListRights {
                mailbox,
                identifier,
            } => self.listrights(&mailbox, &identifier),
            CommandBody::MyRights(m) => self.myrights(&m),
            _ if !selected => Outcome::bad("No mailbox selected"),
            CommandBody::Close => self.close(),
            CommandBody::CancelUpdate(tags) => self.cancel_update(&tags),
            CommandBody::Replace {
                uid,
                number,
                mailbox,
                message,
            } => self.replace(uid, number, &mailbox, &message),
            CommandBody::Unselect => {
                self.selected = None;
                Outcome::ok("UNSELECT completed")
            }
            CommandBody::Expunge { uids } => self.expunge_cmd(uids.as_ref()),
            CommandBody::Search {
                uid,
                criteria,
                return_opts,
                ..
            } => self.search_cmd(uid, &criteria, return_opts.as_deref(), tag),
            CommandBody::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
                partial,
            } => self.fetch(uid, &set, &items, changed_since, vanished, partial),
            CommandBody::Store {
                uid,
                set,
                op,
                silent,
                flags,
                unchanged_since,
            } => self.store_cmd(uid, &set, op, silent, &flags, unchanged_since),
            CommandBody::Sort {
                uid,
                criteria,
                search,
                return_opts,
                ..
            } => self.sort_cmd(uid, &criteria, &search, return_opts.as_deref(), tag),
            CommandBody::Thread {
                uid,
                algorithm,
                search,
                ..
            } => self.thread_cmd(uid, algorithm, &search),
            CommandBody::Copy { uid, set, mailbox } => {
                self.copy_or_move(uid, &set, &mailbox, false)
            }
            CommandBody::Move { uid, set, mailbox } => self.copy_or_move(uid, &set, &mailbox, true),
            CommandBody::Idle | CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                Outcome::bad("Unexpected")
            }
        }
    }
}

/// Where a command stands after its first turn off the runtime.
enum FirstStep {
    /// Its answer is in the output buffer, changes reported after it.
    Done(Outcome),
    /// A FETCH answer larger than one buffer: the rest is streamed.
    More(Box<crate::fetch::FetchStream>, usize, Outcome),
    /// The connection cannot go on (part of a literal is out).
    Broken,
}
