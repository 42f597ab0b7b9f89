//! The index writer: one connection, one writer at a time, group commit.
//!
//! Every change to the index runs as a job on the one write connection. Jobs wait in a
//! queue. A caller waiting for its job's result that finds the connection free takes
//! it and becomes the leader: it takes every job waiting (up to [`MAX_BATCH`]), opens
//! one `BEGIN IMMEDIATE` transaction, runs each job in a savepoint of its own (a job
//! that fails is rolled back alone), commits once, and only then reports each job's
//! result. It then puts the connection back and, if jobs came meanwhile, tells the
//! owner of the oldest to lead next. One fsync of the WAL thus covers every change in
//! a batch, and a caller never learns of success before its change is durable.
//!
//! Why no writer thread of its own: handing each job to a thread and its answer back
//! cost every write two thread wake-ups, which on a VM's idle vCPUs take tens of
//! microseconds each. A caller that finds the connection free now commits on its own
//! thread, and one that finds it busy is woken once, by its result or by its turn to
//! lead.
//!
//! Serialising the commit is what makes each job atomic and isolated; all the slow
//! work (network, parsing, writing and fsyncing blobs) happens before the job is
//! submitted, in parallel across connections, and holds no lock.

use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// A unit of work for the writer: runs inside a savepoint and says whether it
/// succeeded (its savepoint is then released, else rolled back), and returns a
/// completion to be called with the outcome of the batch commit.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;
type Completion = Box<dyn FnOnce(Result<()>) + Send>;

/// A job waiting, with the means to tell its owner to lead.
struct Queued {
    job: Job,
    lead: Box<dyn Fn() + Send>,
}

/// What a job's owner is told: its result, or that the connection is free and its
/// job still waits.
enum Message<T> {
    Done(Result<T>),
    Lead,
}

/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 256;

/// A handle to submit jobs to the index writer; cloning shares the connection.
#[derive(Clone)]
pub(crate) struct Writer {
    shared: Arc<Mutex<State>>,
}

struct State {
    /// The write connection; `None` while a leader holds it.
    conn: Option<Connection>,
    /// Jobs submitted and not yet taken into a batch, in submission order.
    queue: Vec<Queued>,
}

impl Writer {
    /// Makes `conn` the index's one write connection.
    pub(crate) fn start(conn: Connection) -> Result<Writer> {
        Ok(Writer {
            shared: Arc::new(Mutex::new(State {
                conn: Some(conn),
                queue: Vec::new(),
            })),
        })
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
    /// one commit. The job runs at the latest when its [`Pending`] is waited for or
    /// dropped.
    pub(crate) fn submit<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let lead = tx.clone();
        let job: Job = Box::new(move |conn| {
            let outcome = f(conn);
            let ok = outcome.is_ok();
            let completion: Completion = Box::new(move |commit: Result<()>| {
                let result = match commit {
                    Ok(()) => outcome,
                    Err(e) => Err(e),
                };
                let _ = tx.send(Message::Done(result));
            });
            (ok, completion)
        });
        let lead = Box::new(move || {
            let _ = lead.send(Message::Lead);
        });
        self.lock().queue.push(Queued { job, lead });
        Pending {
            rx,
            writer: self.clone(),
            done: false,
        }
    }

    /// Runs `f` on the write connection unless a batch holds it (none does at open,
    /// before the first write); `None` if one does.
    pub(crate) fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> T) -> Option<T> {
        self.lock().conn.as_ref().map(f)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so a panic elsewhere cannot have left the queue
        // or the connection half-changed.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leads one batch if the connection is free and jobs wait.
    fn lead_if_free(&self) {
        let mut state = self.lock();
        if state.queue.is_empty() {
            return;
        }
        let Some(mut conn) = state.conn.take() else {
            return;
        };
        let take = state.queue.len().min(MAX_BATCH);
        let batch: Vec<Job> = state.queue.drain(..take).map(|q| q.job).collect();
        drop(state);
        // A job that panics fails its batch (the transaction is rolled back as it
        // unwinds, and the completions not yet called are dropped, so their callers
        // see `WriterGone`), not the writer: the connection goes back.
        let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_batch(&mut conn, batch)
        }));
        if committed.is_err() {
            tracing::error!("an index write panicked; its batch was rolled back");
        }
        let mut state = self.lock();
        state.conn = Some(conn);
        // Jobs that came meanwhile: their oldest owner leads next, so that this
        // caller can go back to its own client.
        if let Some(next) = state.queue.first() {
            (next.lead)();
        }
    }
}

/// The result of a submitted job, available once its batch has committed.
pub(crate) struct Pending<T> {
    rx: mpsc::Receiver<Message<T>>,
    writer: Writer,
    done: bool,
}

impl<T> Pending<T> {
    /// Blocks until the job's batch has committed (or failed), leading the commit
    /// itself when the connection is free.
    pub(crate) fn wait(mut self) -> Result<T> {
        self.finish()
    }

    fn finish(&mut self) -> Result<T> {
        self.done = true;
        loop {
            self.writer.lead_if_free();
            match self.rx.recv() {
                Ok(Message::Done(result)) => return result,
                Ok(Message::Lead) => {}
                // Its completion was dropped unrun: the batch's leader panicked.
                Err(mpsc::RecvError) => return Err(StoreError::WriterGone),
            }
        }
    }
}

impl<T> Drop for Pending<T> {
    /// A job submitted is run even if no one waits for its result.
    fn drop(&mut self) {
        if !self.done {
            let _ = self.finish();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        Writer::start(conn).unwrap()
    }

    fn count(w: &Writer) -> i64 {
        w.write(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap()
    }

    /// Many threads writing at once, each leading or following: every job that
    /// succeeds is committed once, every one that fails leaves nothing, and each
    /// caller gets its own job's answer.
    #[test]
    fn concurrent_writes_each_get_their_own_outcome() {
        let w = writer();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..200i64 {
                        let k = t * 1000 + i;
                        let got = w.write(move |c| {
                            c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])?;
                            if k % 7 == 0 {
                                // Fails after writing: the row must not stay.
                                c.execute("INSERT INTO t (k, v) VALUES (?1, NULL)", [k + 500])?;
                            }
                            Ok(k)
                        });
                        match got {
                            Ok(v) => assert_eq!(v, k),
                            Err(_) => assert_eq!(k % 7, 0, "{k}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let want = (0..8)
            .flat_map(|t| (0..200).map(move |i| t * 1000 + i))
            .filter(|k| k % 7 != 0)
            .count() as i64;
        assert_eq!(count(&w), want);
    }

    /// A job that panics fails its own batch only: its caller is told the writer is
    /// gone, nothing of it is committed, and the next write works.
    #[test]
    fn a_panicking_job_fails_its_batch_not_the_writer() {
        let w = writer();
        let got: Result<()> = w.write(|c| {
            c.execute("INSERT INTO t (k, v) VALUES (1, 'x')", [])?;
            panic!("job panics on purpose");
        });
        assert!(matches!(got, Err(StoreError::WriterGone)));
        assert_eq!(count(&w), 0);
        w.write(|c| Ok(c.execute("INSERT INTO t (k, v) VALUES (2, 'y')", [])?))
            .unwrap();
        assert_eq!(count(&w), 1);
    }

    /// Jobs submitted together share a commit when waited for, and a job whose
    /// result no one waits for still runs.
    #[test]
    fn submitted_jobs_run_whether_or_not_waited_for() {
        let w = writer();
        let a = w.submit(|c| Ok(c.execute("INSERT INTO t (k, v) VALUES (1, 'a')", [])?));
        let b = w.submit(|c| Ok(c.execute("INSERT INTO t (k, v) VALUES (2, 'b')", [])?));
        drop(w.submit(|c| Ok(c.execute("INSERT INTO t (k, v) VALUES (3, 'c')", [])?)));
        assert_eq!(a.wait().unwrap(), 1);
        assert_eq!(b.wait().unwrap(), 1);
        assert_eq!(count(&w), 3);
    }
}
