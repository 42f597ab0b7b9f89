//! The index schema and its versioning.
//!
//! The index is one SQLite database (`<data_dir>/index.sqlite3`) in WAL mode with
//! `synchronous=FULL`: a commit returns only after its WAL frames are fsynced, and
//! readers see a consistent snapshot without blocking the writer.

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// The schema version this build writes. Bump it with a migration step below.
pub const SCHEMA_VERSION: i64 = 15;

const SCHEMA_V1: &str = r#"
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    password_hash   TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    -- the per-user modseq counter: every change takes the next value
    modseq          INTEGER NOT NULL DEFAULT 0,
    last_uidvalidity INTEGER NOT NULL DEFAULT 0,
    quota_storage   INTEGER,
    quota_messages  INTEGER,
    used_storage    INTEGER NOT NULL DEFAULT 0,
    used_messages   INTEGER NOT NULL DEFAULT 0,
    created         INTEGER NOT NULL
);

CREATE TABLE mailboxes (
    id              INTEGER PRIMARY KEY,
    uniqueid        TEXT NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    name            TEXT NOT NULL,
    partition       TEXT NOT NULL,
    uidvalidity     INTEGER NOT NULL,
    last_uid        INTEGER NOT NULL DEFAULT 0,
    highest_modseq  INTEGER NOT NULL DEFAULT 0,
    -- oldest modseq from which changes can still be computed; raised by purges
    deleted_modseq  INTEGER NOT NULL DEFAULT 0,
    recent_uid      INTEGER NOT NULL DEFAULT 0,
    recent_time     INTEGER NOT NULL DEFAULT 0,
    -- messages not expunged, and their total size (kept in step by every write)
    messages        INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    special_use     TEXT,
    acl             TEXT NOT NULL DEFAULT '',
    created_modseq  INTEGER NOT NULL,
    -- set when deleted: the row stays as a tombstone carrying its unique id
    tombstone_modseq INTEGER
);
CREATE UNIQUE INDEX mailboxes_live_name ON mailboxes(user_id, name)
    WHERE tombstone_modseq IS NULL;

CREATE TABLE annotations (
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes(id),
    key             TEXT NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, key)
);

CREATE TABLE records (
    mailbox_id      INTEGER NOT NULL,
    uid             INTEGER NOT NULL,
    modseq          INTEGER NOT NULL,
    flags           TEXT NOT NULL DEFAULT '',
    internaldate    INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    guid            BLOB NOT NULL,
    expunged_modseq INTEGER,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX records_by_modseq ON records(mailbox_id, modseq);
CREATE INDEX records_by_guid ON records(guid);

CREATE TABLE subscriptions (
    user_id         INTEGER NOT NULL REFERENCES users(id),
    name            TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- duplicate suppression: one row per (Message-ID, mailbox) delivered recently
CREATE TABLE deliveries (
    message_id      TEXT NOT NULL,
    mailbox_uniqueid TEXT NOT NULL,
    delivered_at    INTEGER NOT NULL,
    PRIMARY KEY (message_id, mailbox_uniqueid)
);

-- the change log consumed by `tern sync --rolling`
CREATE TABLE changelog (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name       TEXT NOT NULL,
    mailbox_uniqueid TEXT,
    at              INTEGER NOT NULL
);
CREATE TABLE changelog_acks (
    consumer        TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL
);
"#;

/// Version 2: what protocols learned from a message's content, per GUID: an opaque
/// summary (for IMAP: ENVELOPE, BODYSTRUCTURE, sort keys), and the queue of messages
/// waiting for the full-text index (which lives in its own database, see
/// [`TEXT_SCHEMA`]).
const SCHEMA_V2: &str = r#"
CREATE TABLE summaries (
    guid            BLOB PRIMARY KEY,
    summary         BLOB NOT NULL
) WITHOUT ROWID;
-- messages waiting for the full-text index, which reads them from their blobs
CREATE TABLE pending_texts (
    guid            BLOB PRIMARY KEY,
    partition       TEXT NOT NULL,
    size            INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 3: replication bookkeeping on the master: users and mailboxes whose sync
/// kept failing, set aside by the rolling client so the change log can move on without
/// forgetting them.
const SCHEMA_V3: &str = r#"
CREATE TABLE sync_deferred (
    consumer        TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    -- '' for the user-level state (and every mailbox of the user)
    mailbox_uniqueid TEXT NOT NULL DEFAULT '',
    since           INTEGER NOT NULL,
    PRIMARY KEY (consumer, user_name, mailbox_uniqueid)
) WITHOUT ROWID;
"#;

/// Version 4: each mailbox's records digest (`digest.rs`), kept by triggers in the same
/// transaction as every record change, whatever code path writes the record. The
/// column is filled for existing mailboxes by the migration.
const SCHEMA_V4: &str = r#"
ALTER TABLE mailboxes ADD COLUMN records_digest BLOB NOT NULL
    DEFAULT x'00000000000000000000000000000000';
CREATE TRIGGER records_digest_insert AFTER INSERT ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags))
    WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER records_digest_delete AFTER DELETE ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags))
    WHERE id = OLD.mailbox_id;
END;
CREATE TRIGGER records_digest_update AFTER UPDATE ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags))
    WHERE id = OLD.mailbox_id;
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags))
    WHERE id = NEW.mailbox_id;
END;
"#;

/// Version 5: each mailbox's keyword table (`keywords.rs`): every keyword any of its
/// records was ever given, kept when no record has it any more (as Cyrus does), gone
/// only with the mailbox. IMAP lists it in FLAGS and PERMANENTFLAGS. The migration
/// fills it from the flags of the records present (expunged ones included), without
/// the cap that later writes obey: a mailbox may start above it and then takes no new
/// keyword.
///
/// The split walks each record's stored flags (space-separated, canonical, system
/// flags starting with a backslash) with a recursive CTE, so the migration is one
/// statement however many records there are.
const SCHEMA_V5: &str = r#"
CREATE TABLE mailbox_keywords (
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes(id),
    keyword         TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, keyword)
) WITHOUT ROWID;
INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword)
WITH RECURSIVE split(mailbox_id, word, rest) AS (
    SELECT mailbox_id, '', flags || ' ' FROM records WHERE flags <> ''
    UNION ALL
    SELECT mailbox_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
    FROM split WHERE rest <> ''
)
SELECT DISTINCT mailbox_id, word FROM split WHERE word <> '' AND substr(word, 1, 1) <> '\';
"#;

/// The layout of the full-text database; a database with another `user_version` is
/// rebuilt (it holds nothing that cannot be derived from the messages).
pub(crate) const TEXT_VERSION: i64 = 2;

/// The full-text index database (`texts.sqlite3`): a trigram FTS5 table that keeps,
/// per row, only which trigrams occur (`detail=none`: no positions, no columns), and
/// which GUID each row belongs to. A row is one field of one message: rowid
/// `2 * text_id` is the header text, `2 * text_id + 1` the body text. Kept apart from
/// the main index so its bulk writes never hold the main index's write lock.
///
/// `text_guids.complete` is 0 when the message's text was longer than the per-message
/// cap and only its beginning was indexed; `text_usage` counts the text bytes indexed
/// for each user (main index `users.id`), to hold the per-user cap.
pub(crate) const TEXT_SCHEMA: &str = r#"
CREATE VIRTUAL TABLE IF NOT EXISTS texts USING fts5(
    text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram'
);
CREATE TABLE IF NOT EXISTS text_guids (
    guid            BLOB PRIMARY KEY,
    text_id         INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    complete        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS text_usage (
    user_id         INTEGER PRIMARY KEY,
    bytes           INTEGER NOT NULL
);
"#;

/// The tables of earlier full-text layouts, dropped when the database is rebuilt.
pub(crate) const TEXT_DROP: &str = r#"
DROP TABLE IF EXISTS texts;
DROP TABLE IF EXISTS text_guids;
DROP TABLE IF EXISTS text_usage;
"#;

/// Applies connection settings shared by the writer and readers.
pub(crate) fn configure(conn: &Connection) -> Result<()> {
    // Room for every statement the store uses (about 200 distinct ones): rusqlite's
    // default of 16 made a busy server parse the same statements over and over.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    persist_wal(conn, "main");
    crate::digest::register_functions(conn)?;
    Ok(())
}

/// Statements each connection keeps prepared (see `configure`).
const STATEMENT_CACHE: usize = 512;

/// The size a WAL is cut back to after a checkpoint restarts it (`journal_size_limit`);
/// and at a clean close the kept WAL is truncated to nothing.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Sets SQLite's process-wide configuration, once, before SQLite starts (the first
/// connection opened in the process); later it changes nothing, which is harmless.
///
/// - Allocation statistics off. With them on (the default), every allocation SQLite
///   makes takes one global mutex to count it. tern never reads the counts, and under
///   imaptest's steady-state load the waits on that mutex were about a tenth of the
///   server's CPU.
/// - A statement's journal (the pages it changed, kept so that the statement alone can
///   be undone) stays in memory, whatever its size ([`STATEMENT_JOURNAL_IN_MEMORY`]).
///   At SQLite's default of 64 KiB an EXPUNGE spilled it to a temporary file: opened,
///   unlinked and written with about 310 KiB on every EXPUNGE of 148 messages, for a
///   file nobody reads unless a statement fails (and a full temporary directory
///   failed it).
pub(crate) fn configure_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let off: std::ffi::c_int = 0;
        let spill = STATEMENT_JOURNAL_IN_MEMORY;
        // SAFETY: both options take one int; sqlite3_config touches only SQLite's
        // global configuration, and refuses (SQLITE_MISUSE) once SQLite is initialised
        // instead of changing anything.
        let rc =
            unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, off) };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(rc, "SQLite allocation statistics stay on");
        }
        // SAFETY: as above.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_STMTJRNL_SPILL, spill)
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(rc, "SQLite statement journals spill at the default size");
        }
    });
}

/// SQLite's threshold for moving a statement's journal to a temporary file (see
/// [`configure_process`]): -1, never. The journal holds the original of each page one
/// statement changes, once, and is freed when the statement ends; tern's largest
/// statements (a flag change folded over a whole mailbox, an expunge of thousands)
/// change a few megabytes of the index. It grows in 1 KiB pieces, allocated as needed.
///
/// Not a threshold in between: a journal that spills is written to its file in one
/// piece as large as the threshold, and SQLite's Unix layer cuts every write to
/// under 128 KiB and takes the shortfall for a full disk. At 512 KiB every statement
/// that journalled more than that (one \Seen on each of 10,000 messages) failed with
/// "database or disk is full", and since every read folds logged changes first, the
/// mailbox could then not be read (`tests/large_statements.rs`). Nor SQLite's 64 KiB:
/// see above. A threshold also allocates its whole size for every statement that
/// journals (a flag store does, through its modseq update): at 4 MiB, each `STORE`
/// mapped, faulted in and unmapped 4 MiB.
const STATEMENT_JOURNAL_IN_MEMORY: std::ffi::c_int = -1;

/// Keeps the database's `-wal` and `-shm` files when its last connection closes
/// (`SQLITE_FCNTL_PERSIST_WAL`) instead of deleting them, the WAL truncated to zero
/// bytes (so a large WAL does not stay on disk after it was checkpointed).
///
/// Why: opening a WAL database whose `-shm` file is missing must allocate it (32 KiB),
/// which fails on a full disk (`SQLITE_IOERR_SHMSIZE`), so a server stopped cleanly
/// could not start again, not even to serve reads, until space was freed. Kept, the
/// files are reused. `schema` is `main` or an attached database's name.
pub(crate) fn persist_wal(conn: &Connection, schema: &str) {
    let Ok(name) = std::ffi::CString::new(schema) else {
        return;
    };
    let mut on: std::ffi::c_int = 1;
    // SAFETY: the handle is valid while `conn` lives; PERSIST_WAL reads and writes one
    // int through the pointer, which outlives the call.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            name.as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::ffi::c_int).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        tracing::debug!(rc, schema, "cannot keep the WAL files of the index");
    }
    if let Err(e) = conn.pragma_update(Some(schema), "journal_size_limit", WAL_SIZE_LIMIT) {
        tracing::debug!(error = %e, schema, "cannot limit the WAL size");
    }
}

/// Version 6: the times expire needs (`tern expire`), kept by triggers so that every
/// code path records them: when this store expunged each record (`expunged_at`, Unix
/// seconds) and when each mailbox became a tombstone (`tombstone_at`), and when each
/// change-log consumer last acknowledged (`changelog_acks.at`). Existing expunged
/// records and tombstones count from the migration. The digest trigger on updates now
/// fires only for the columns the digest covers.
/// Version 7: IMAP METADATA (RFC 5464) entries that are not a mailbox's shared
/// annotations: private entries (per user, on a mailbox or the server) and shared
/// server entries. `user_id` 0 means shared, `mailbox_id` 0 means the server; rows of a
/// deleted user or mailbox are removed with it. Local to this server (not replicated).
/// Version 8: the durable Message-ID index (NNTP ARTICLE <id>, Xref, NEWNEWS, and
/// duplicate checks of POST and IHAVE): each content summary keeps its message's
/// Message-ID, written in the same transaction. NULL: not examined yet (rows from
/// before version 8, filled in the background by `message_ids::fill`); '': none.
const SCHEMA_V8: &str = r#"
ALTER TABLE summaries ADD COLUMN message_id TEXT;
CREATE INDEX summaries_by_message_id ON summaries(message_id) WHERE message_id != '';
CREATE INDEX summaries_unexamined ON summaries(guid) WHERE message_id IS NULL;
"#;

const SCHEMA_V7: &str = r#"
CREATE TABLE metadata (
    user_id         INTEGER NOT NULL,
    mailbox_id      INTEGER NOT NULL,
    entry           TEXT NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, entry)
) WITHOUT ROWID;
CREATE INDEX metadata_by_mailbox ON metadata(mailbox_id);
"#;

/// Version 10:
/// - URLAUTH keys (RFC 4467), one per mailbox (by unique id), created when the first
///   URL is signed and deleted by RESETKEY. Local to this server: not part of any
///   digest, not replicated.
/// - `records.saved_at`: when a record was stored in its mailbox (IMAP SAVEDATE, RFC
///   8514), set by every local append, copy and move; NULL for older records and for
///   replicated ones. Not in the records digest (each server keeps its own).
/// - `records_live`, a partial index of the live records, so that reading a mailbox's
///   live records (SELECT, SEARCH, STATUS counts, EXPUNGE) costs what the live records
///   cost, not the expunged ones that pile up until `tern expire`.
const SCHEMA_V10: &str = r#"
CREATE TABLE urlauth_keys (
    mailbox TEXT PRIMARY KEY,
    key     BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX records_live ON records(mailbox_id, uid) WHERE expunged_modseq IS NULL;
ALTER TABLE records ADD COLUMN saved_at INTEGER;
"#;

/// Version 11: the update trigger of the records digest stood aside while a flag store
/// kept the digest itself (a guard made `tern_digest_by_caller()` true), folding
/// every changed record's old and new hash into one delta applied to the mailbox row
/// once. Replaced by version 12, which codes no trigger into a flag store at all.
const SCHEMA_V11: &str = r#"
DROP TRIGGER records_digest_update;
CREATE TRIGGER records_digest_update
    AFTER UPDATE OF uid, modseq, internaldate, size, guid, expunged_modseq, flags, mailbox_id,
                    pop3_uidl
    ON records WHEN NOT tern_digest_by_caller() BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags, OLD.pop3_uidl))
    WHERE id = OLD.mailbox_id;
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags, NEW.pop3_uidl))
    WHERE id = NEW.mailbox_id;
END;
"#;

/// Version 14:
/// - a partial index of the live records flagged \Deleted, so that EXPUNGE finds them
///   without reading every live record of the mailbox (0.4 ms of a 3,000 message
///   INBOX, 13 ms of 100,000). Its condition is spelled exactly as in
///   `flagging::deleted_in`, which names it;
/// - the update trigger of the records digest no longer fires for an expunge (a change
///   of `expunged_modseq` and `modseq`): it cost each expunged record two updates of
///   the mailbox row. Every expunge keeps the digest itself, in the same transaction
///   (`flagging::expunge_where` with one delta per expunge, the replication paths
///   through `digest::expunge_record`), as flag stores have since version 12.
const SCHEMA_V14: &str = r#"
CREATE INDEX records_deleted ON records(mailbox_id, uid)
    WHERE expunged_modseq IS NULL AND instr(flags, '\Deleted') > 0;
DROP TRIGGER records_digest_update;
CREATE TRIGGER records_digest_update
    AFTER UPDATE OF uid, internaldate, size, guid, mailbox_id, pop3_uidl
    ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags, OLD.pop3_uidl))
    WHERE id = OLD.mailbox_id;
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags, NEW.pop3_uidl))
    WHERE id = NEW.mailbox_id;
END;
"#;

/// Version 13: the log of changed UID ranges (`record_changes.rs`) replaces the index
/// `records_by_modseq`, which cost every flag change a delete and an insert per record.
/// Inserted records are logged by a trigger; every update that sets a modseq logs its
/// own ranges. `mailboxes.changes_from`: the log is complete for modseqs above it, so
/// existing mailboxes start at their highest modseq and older questions scan.
const SCHEMA_V13: &str = r#"
CREATE TABLE record_changes (
    mailbox_id  INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    uid_lo      INTEGER NOT NULL,
    uid_hi      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, modseq, uid_lo)
) WITHOUT ROWID;
ALTER TABLE mailboxes ADD COLUMN changes_from INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET changes_from = max(highest_modseq,
    coalesce((SELECT max(modseq) FROM records r WHERE r.mailbox_id = mailboxes.id), 0));
DROP INDEX records_by_modseq;
CREATE TRIGGER records_changes_insert AFTER INSERT ON records BEGIN
    INSERT OR IGNORE INTO record_changes (mailbox_id, modseq, uid_lo, uid_hi)
    VALUES (NEW.mailbox_id, NEW.modseq, NEW.uid, NEW.uid);
END;
"#;

/// Version 12: the update trigger of the records digest no longer fires for a change
/// of flags and modseq alone. A trigger on `records`, even one whose WHEN clause
/// declines, costs every updated row a trigger frame and the statement a journal;
/// for `STORE 1:* +FLAGS` that was a third of the work. Every statement that sets only
/// `flags` and `modseq` therefore keeps the digest itself, in the same transaction:
/// `Store::store_flags` with one delta per store, the replication paths through
/// `digest::set_flags`. Any other column change still fires it, with OLD and NEW
/// whole. Tests (`digest::tests::set_flags_keeps_the_digest`, the flag store tests) recompute the
/// digest after each path.
const SCHEMA_V12: &str = r#"
DROP TRIGGER records_digest_update;
CREATE TRIGGER records_digest_update
    AFTER UPDATE OF uid, internaldate, size, guid, expunged_modseq, mailbox_id, pop3_uidl
    ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags, OLD.pop3_uidl))
    WHERE id = OLD.mailbox_id;
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags, NEW.pop3_uidl))
    WHERE id = NEW.mailbox_id;
END;
"#;

/// Version 9: a record's stored POP3 UIDL
/// override (`records.pop3_uidl`, RFC 1939: 1-70 characters 0x21-0x7E), set when the
/// record is created (`tern admin import`, or a replicated APPEND carrying it) and never
/// changed afterwards. It is part of the record's hash in the records digest, so a
/// replica missing it (or holding another) fails the digest check; a record without
/// one hashes exactly as before, so existing digests stay valid. Uniqueness among a
/// mailbox's live records is checked by the store on local appends, not by an index
/// (a replica applies a batch's APPENDs before its EXPUNGEs, which an index would
/// refuse in between); the index makes that check one lookup.
const SCHEMA_V9: &str = r#"
ALTER TABLE records ADD COLUMN pop3_uidl TEXT;
CREATE INDEX records_by_pop3_uidl ON records(mailbox_id, pop3_uidl)
    WHERE pop3_uidl IS NOT NULL;
DROP TRIGGER records_digest_insert;
DROP TRIGGER records_digest_delete;
DROP TRIGGER records_digest_update;
CREATE TRIGGER records_digest_insert AFTER INSERT ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags, NEW.pop3_uidl))
    WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER records_digest_delete AFTER DELETE ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags, OLD.pop3_uidl))
    WHERE id = OLD.mailbox_id;
END;
CREATE TRIGGER records_digest_update
    AFTER UPDATE OF uid, modseq, internaldate, size, guid, expunged_modseq, flags, mailbox_id,
                    pop3_uidl
    ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags, OLD.pop3_uidl))
    WHERE id = OLD.mailbox_id;
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags, NEW.pop3_uidl))
    WHERE id = NEW.mailbox_id;
END;
"#;

const SCHEMA_V6: &str = r#"
ALTER TABLE records ADD COLUMN expunged_at INTEGER;
UPDATE records SET expunged_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE expunged_modseq IS NOT NULL;
CREATE INDEX records_by_expunged_at ON records(expunged_at) WHERE expunged_at IS NOT NULL;
CREATE TRIGGER records_expunged_at_insert AFTER INSERT ON records
    WHEN NEW.expunged_modseq IS NOT NULL AND NEW.expunged_at IS NULL BEGIN
    UPDATE records SET expunged_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid;
END;
CREATE TRIGGER records_expunged_at_update AFTER UPDATE OF expunged_modseq ON records
    WHEN NEW.expunged_modseq IS NOT NULL AND OLD.expunged_modseq IS NULL
         AND NEW.expunged_at IS NULL BEGIN
    UPDATE records SET expunged_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid;
END;
ALTER TABLE mailboxes ADD COLUMN tombstone_at INTEGER;
UPDATE mailboxes SET tombstone_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE tombstone_modseq IS NOT NULL;
CREATE TRIGGER mailboxes_tombstone_at AFTER UPDATE OF tombstone_modseq ON mailboxes
    WHEN (NEW.tombstone_modseq IS NULL) != (OLD.tombstone_modseq IS NULL) BEGIN
    UPDATE mailboxes SET tombstone_at = CASE WHEN NEW.tombstone_modseq IS NULL THEN NULL
        ELSE CAST(strftime('%s', 'now') AS INTEGER) END
    WHERE id = NEW.id;
END;
ALTER TABLE changelog_acks ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
UPDATE changelog_acks SET at = CAST(strftime('%s', 'now') AS INTEGER);
DROP TRIGGER records_digest_update;
CREATE TRIGGER records_digest_update
    AFTER UPDATE OF uid, modseq, internaldate, size, guid, expunged_modseq, flags, mailbox_id
    ON records BEGIN
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(OLD.uid, OLD.modseq, OLD.internaldate, OLD.size, OLD.guid,
                         OLD.expunged_modseq, OLD.flags))
    WHERE id = OLD.mailbox_id;
    UPDATE mailboxes SET records_digest = tern_xor(records_digest,
        tern_record_hash(NEW.uid, NEW.modseq, NEW.internaldate, NEW.size, NEW.guid,
                         NEW.expunged_modseq, NEW.flags))
    WHERE id = NEW.mailbox_id;
END;
"#;

/// Version 15: changes to records logged before their rows are written
/// (`pending.rs`). A flag store or an expunge decided from a kept read appends one row
/// (`kind` 0 a flag change `op flags`, 1 an expunge at `at`; `uids` the records
/// changed, as runs of little-endian 32-bit UIDs); the fold writes the records' rows
/// in `id` order and deletes it. No index: the table holds a few rows at a time (the
/// changes of the last 100 ms, at most 64 a mailbox), and an index would be one more
/// page written by every logged change.
const SCHEMA_V15: &str = r#"
CREATE TABLE pending_changes (
    id INTEGER PRIMARY KEY,
    mailbox_id INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    op INTEGER NOT NULL,
    flags TEXT NOT NULL,
    uids BLOB NOT NULL
);
"#;

/// Puts the database in WAL mode and creates or upgrades the schema.
///
/// An index already at [`SCHEMA_VERSION`] is only read, so that opening needs no free
/// space (a full disk must not stop `tern serve` from starting and serving reads).
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "index database is not in WAL mode");
        }
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2)?;
    }
    if version < 3 {
        tx.execute_batch(SCHEMA_V3)?;
    }
    if version < 4 {
        tx.execute_batch(SCHEMA_V4)?;
        let ids = {
            let mut stmt = tx.prepare("SELECT id FROM mailboxes")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            ids
        };
        for id in ids {
            let digest = crate::digest::recompute_records_digest_before_v9(&tx, id)?;
            tx.execute(
                "UPDATE mailboxes SET records_digest = ?2 WHERE id = ?1",
                rusqlite::params![id, &digest.0[..]],
            )?;
        }
    }
    if version < 5 {
        tx.execute_batch(SCHEMA_V5)?;
    }
    if version < 6 {
        tx.execute_batch(SCHEMA_V6)?;
    }
    if version < 7 {
        tx.execute_batch(SCHEMA_V7)?;
    }
    if version < 8 {
        tx.execute_batch(SCHEMA_V8)?;
    }
    if version < 9 {
        tx.execute_batch(SCHEMA_V9)?;
    }
    if version < 10 {
        tx.execute_batch(SCHEMA_V10)?;
    }
    if version < 11 {
        tx.execute_batch(SCHEMA_V11)?;
    }
    if version < 12 {
        tx.execute_batch(SCHEMA_V12)?;
    }
    if version < 13 {
        tx.execute_batch(SCHEMA_V13)?;
    }
    if version < 14 {
        tx.execute_batch(SCHEMA_V14)?;
    }
    if version < 15 {
        tx.execute_batch(SCHEMA_V15)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Undoes version 9: the triggers of versions 4 and 6 again, without the column.
#[cfg(test)]
fn downgrade_from_v9(conn: &Connection) {
    downgrade_to_v12(conn);
    let v6_update = SCHEMA_V6
        .split("CREATE TRIGGER records_digest_update")
        .nth(1)
        .and_then(|t| t.split("END;").next())
        .map(|t| format!("CREATE TRIGGER records_digest_update{t}END;"));
    let v4_insert_delete = SCHEMA_V4
        .split("CREATE TRIGGER records_digest_update")
        .next()
        .and_then(|t| t.split_once("CREATE TRIGGER"))
        .map(|(_, t)| format!("CREATE TRIGGER{t}"));
    let (Some(update), Some(insert_delete)) = (v6_update, v4_insert_delete) else {
        panic!("downgrade from version 9: triggers not found");
    };
    let undo = format!(
        "DROP TABLE IF EXISTS urlauth_keys; DROP INDEX IF EXISTS records_live;
         ALTER TABLE records DROP COLUMN saved_at;
         DROP TRIGGER records_digest_insert; DROP TRIGGER records_digest_delete;
         DROP TRIGGER records_digest_update; DROP INDEX records_by_pop3_uidl;
         ALTER TABLE records DROP COLUMN pop3_uidl; {insert_delete} {update}"
    );
    if let Err(e) = conn.execute_batch(&undo) {
        panic!("downgrade from version 9: {e}");
    }
}

/// Takes a version 13 index back to version 12, for migration tests: the modseq index
/// again, no log of changed ranges.
#[cfg(test)]
pub(crate) fn downgrade_to_v12(conn: &Connection) {
    if let Err(e) = conn.execute_batch(
        "DROP TABLE IF EXISTS pending_changes; DROP INDEX IF EXISTS records_deleted;
         DROP TRIGGER IF EXISTS records_changes_insert; DROP TABLE IF EXISTS record_changes;
         ALTER TABLE mailboxes DROP COLUMN changes_from;
         CREATE INDEX IF NOT EXISTS records_by_modseq ON records(mailbox_id, modseq);
         PRAGMA user_version = 12;",
    ) {
        panic!("downgrade from version 13: {e}");
    }
}

/// Takes a version 8 or 9 index back to version 7, for migration tests.
#[cfg(test)]
pub(crate) fn downgrade_to_v7(conn: &Connection) {
    downgrade_from_v9(conn);
    let undo = "DROP INDEX IF EXISTS summaries_by_message_id;
        DROP INDEX IF EXISTS summaries_unexamined;
        ALTER TABLE summaries DROP COLUMN message_id;
        PRAGMA user_version = 7;";
    if let Err(e) = conn.execute_batch(undo) {
        panic!("downgrade to version 7: {e}");
    }
}

/// Takes a version 7 (or later) index back to version 6, for migration tests.
#[cfg(test)]
pub(crate) fn downgrade_to_v6(conn: &Connection) {
    downgrade_to_v7(conn);
    if let Err(e) = conn.execute_batch("DROP TABLE metadata; PRAGMA user_version = 6;") {
        panic!("downgrade to version 6: {e}");
    }
}

/// Takes a version 6 (or later) index back to version 5, for migration tests.
#[cfg(test)]
pub(crate) fn downgrade_to_v5(conn: &Connection) {
    downgrade_to_v7(conn);
    let undo = "DROP TABLE IF EXISTS metadata;
        DROP TRIGGER records_expunged_at_insert;
        DROP TRIGGER records_expunged_at_update;
        DROP INDEX records_by_expunged_at;
        ALTER TABLE records DROP COLUMN expunged_at;
        DROP TRIGGER mailboxes_tombstone_at;
        ALTER TABLE mailboxes DROP COLUMN tombstone_at;
        ALTER TABLE changelog_acks DROP COLUMN at;
        PRAGMA user_version = 5;";
    if let Err(e) = conn.execute_batch(undo) {
        panic!("downgrade to version 5: {e}");
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::{Actor, Flags, Store, StoreConfig};

    fn times(dir: &std::path::Path) -> (Vec<(u32, Option<i64>)>, Option<i64>) {
        let conn = Connection::open(dir.join("index.sqlite3")).unwrap();
        let mut stmt = conn
            .prepare("SELECT uid, expunged_at FROM records ORDER BY uid")
            .unwrap();
        let records = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        let tombstone = conn
            .query_row(
                "SELECT max(tombstone_at) FROM mailboxes WHERE name = 'Old'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (records, tombstone)
    }

    /// Version 6 records when each record was expunged and each mailbox deleted,
    /// whatever wrote it; the migration dates what was there from itself.
    #[test]
    fn expunge_and_tombstone_times_are_kept_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        };
        let owner = Actor {
            name: "u".into(),
            is_admin: false,
        };
        let body = |n: u32| format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes();
        let before = now();
        let digest = {
            let store =
                Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
            store.create_user("u", Some("pw"), false).unwrap();
            for n in 1..=3 {
                store
                    .append_as_owner("u", "INBOX", &Flags::new(), 0, &body(n))
                    .unwrap();
            }
            let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
            store.expunge(&owner, &inbox.uniqueid, &[2]).unwrap();
            store.create_mailbox("u", "Old", None).unwrap();
            store.delete_mailbox("u", "Old").unwrap();
            let (records, tombstone) = times(dir.path());
            assert_eq!(records[0], (1, None));
            assert_eq!(records[2], (3, None));
            assert!(records[1].1.is_some_and(|t| t >= before && t <= now()));
            assert!(tombstone.is_some_and(|t| t >= before && t <= now()));
            let digest = store.mailbox("u", "INBOX").unwrap().unwrap().digest;
            assert_eq!(store.recompute_digest(&inbox.uniqueid).unwrap().1, digest);
            super::downgrade_to_v5(&Connection::open(dir.path().join("index.sqlite3")).unwrap());
            digest
        };
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        let (records, tombstone) = times(dir.path());
        assert_eq!(records[0], (1, None));
        assert!(records[1].1.is_some_and(|t| t >= before));
        assert!(tombstone.is_some());
        // Setting the time changed no digest.
        let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        assert_eq!(inbox.digest, digest);
        assert_eq!(store.recompute_digest(&inbox.uniqueid).unwrap().1, digest);
    }

    /// Version 7 adds the metadata table; an index of version 6 gains it on opening
    /// and keeps its annotations.
    #[test]
    fn version_7_migrates_from_6() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store =
                Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
            store.create_user("u", None, false).unwrap();
            store
                .set_annotation("u", "INBOX", "/comment", Some("kept"))
                .unwrap();
            super::downgrade_to_v6(&Connection::open(dir.path().join("index.sqlite3")).unwrap());
        }
        let conn = Connection::open(dir.path().join("index.sqlite3")).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 6);
        drop(conn);
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        let u = Actor {
            name: "u".into(),
            is_admin: false,
        };
        store
            .set_metadata(
                &u,
                crate::MetadataTarget::Server,
                &[("/private/x".into(), Some("y".into()))],
            )
            .unwrap();
        let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        assert_eq!(
            store
                .metadata(&u, crate::MetadataTarget::Mailbox(&inbox.uniqueid))
                .unwrap(),
            vec![("/shared/comment".to_owned(), "kept".to_owned())]
        );
        let conn = Connection::open(dir.path().join("index.sqlite3")).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::SCHEMA_VERSION);
    }
}
