//! The index writer: one thread, group commit.
//!
//! Every change to the index runs as a job on one writer thread. The thread takes
//! all jobs waiting, opens one `BEGIN IMMEDIATE` transaction, runs each job in a
//! savepoint of its own (a job that fails is rolled back alone), commits once, and
//! only then reports each job's result. One fsync of the WAL thus covers every change
//! in the batch, and a caller never learns of success before its change is durable.
//!
//! Serialising the commit is what makes each job atomic and isolated; all the slow
//! work (network, parsing, writing and fsyncing blobs) happens before the job is
//! submitted, in parallel across connections, and holds no lock.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// A unit of work for the writer: runs inside a savepoint and says whether it
/// succeeded (its savepoint is then released, else rolled back), and returns a
/// completion to be called with the outcome of the batch commit.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;
type Completion = Box<dyn FnOnce(Result<()>) + Send>;

/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 256;

/// A handle to submit jobs to the writer thread; cloning shares the thread.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection) -> Result<Writer> {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("tern-index-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::io("spawn writer thread", "", e))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in a write transaction and returns its result once the transaction is
    /// durably committed. If `f` fails, its changes are rolled back and nothing else is.
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f).wait()
    }

    /// Submits `f` without waiting, so a caller can submit several jobs that then share
    /// one commit.
    pub(crate) fn submit<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let outcome = f(conn);
            let ok = outcome.is_ok();
            let completion: Completion = Box::new(move |commit: Result<()>| {
                let result = match commit {
                    Ok(()) => outcome,
                    Err(e) => Err(e),
                };
                let _ = tx.send(result);
            });
            (ok, completion)
        });
        if self.jobs.send(job).is_err() {
            let (tx, rx) = mpsc::sync_channel(1);
            let _ = tx.send(Err(StoreError::WriterGone));
            return Pending { rx };
        }
        Pending { rx }
    }
}

/// The result of a submitted job, available once its batch has committed.
pub(crate) struct Pending<T> {
    rx: mpsc::Receiver<Result<T>>,
}

impl<T> Pending<T> {
    /// Blocks until the job's batch has committed (or failed).
    pub(crate) fn wait(self) -> Result<T> {
        self.rx.recv().unwrap_or(Err(StoreError::WriterGone))
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
}

fn commit_batch(conn: &mut Connection, batch: Vec<Job>) {
    // A job dropped without running drops its reply channel: its caller sees
    // `WriterGone`, which is the honest answer when the index cannot be written.
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "index writer cannot begin a transaction");
            return;
        }
    };
    if batch.len() == 1 {
        // One job needs no savepoint: a failure rolls the transaction back instead. A
        // savepoint makes SQLite copy every page the job changes to a sub-journal,
        // which is most of a large replicated UPDATE's time in the writer.
        let Some(job) = batch.into_iter().next() else {
            return;
        };
        let (ok, completion) = job(&tx);
        if !ok {
            // The job's own error is its answer; a failed rollback is logged only.
            if let Err(e) = tx.rollback() {
                tracing::error!(error = %e, "index writer cannot roll back");
            }
            return completion(Ok(()));
        }
        return match tx.commit() {
            Ok(()) => completion(Ok(())),
            Err(e) => {
                tracing::error!(error = %e, "index commit failed");
                fail(completion, &e)
            }
        };
    }
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "index writer cannot open a savepoint");
            return;
        }
        let (ok, completion) = job(&tx);
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = tx.execute_batch(end) {
            tracing::error!(error = %e, "index writer cannot close a savepoint");
            for c in completions {
                fail(c, &e);
            }
            fail(completion, &e);
            return;
        }
        completions.push(completion);
    }
    match tx.commit() {
        Ok(()) => completions.into_iter().for_each(|c| c(Ok(()))),
        Err(e) => {
            tracing::error!(error = %e, "index commit failed");
            completions.into_iter().for_each(|c| fail(c, &e));
        }
    }
}

fn fail(completion: Completion, cause: &rusqlite::Error) {
    // A full disk is named as such, so callers can say it and retry later; the
    // connection stays usable (the transaction was rolled back), so the next batch
    // after space is freed commits normally.
    let error = if cause.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        StoreError::DiskFull(format!("index commit: {cause}"))
    } else {
        StoreError::CommitFailed(cause.to_string())
    };
    completion(Err(error));
}
