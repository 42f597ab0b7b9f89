//! Statements through the connection's statement cache.
//!
//! rusqlite's `Connection::execute` and `query_row` parse their SQL at every call.
//! Parsing was a fifth of the CPU of a busy IMAP server (profiled under imaptest's
//! steady-state load), so the store's statements go through `prepare_cached` instead:
//! each connection parses each statement once.

use std::sync::OnceLock;

use rusqlite::{Connection, Params, Row};

/// `execute` and `query_row` with cached statements.
pub(crate) trait Cached {
    /// [`Connection::execute`], the statement cached.
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    /// [`Connection::query_row`], the statement cached.
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// `sql` built once per process: for statements whose text is computed (a list of
/// `flag_runs::uid_params`, a columns constant) but the same on every call, so that
/// finding the prepared statement does not first format its text.
pub(crate) fn built_once(
    cell: &'static OnceLock<String>,
    sql: impl FnOnce() -> String,
) -> &'static str {
    cell.get_or_init(sql).as_str()
}
