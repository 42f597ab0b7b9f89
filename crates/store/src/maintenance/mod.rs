//! The store's life cycle and its self-checks: what `tern expire` removes (expired
//! messages, expunged records and tombstones past their age, blobs no record refers to,
//! the duplicate-delivery table, the text index and the change log past their use) and
//! what `tern check` verifies and repairs. Only this module removes blobs.

mod check;
mod collect;
mod expire;
pub(crate) mod policy;

pub use check::{
    check, repair_index, CheckOptions, CheckReport, Finding, Place, Problem, RepairOptions,
    RepairOutcome, RepairReport, ORPHAN_GRACE_SECS, RECOVERED_MAILBOX,
};
pub use expire::{ExpireOptions, ExpireReport, UserExpireReport};

#[cfg(test)]
mod expire_tests;
