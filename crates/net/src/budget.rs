//! One process-wide allowance for bytes that clients make the server hold: LMTP DATA
//! bodies, IMAP literals, replication literals. Each connection's bounds (the largest
//! message, the largest literal) say how much one client may send; the budget says how
//! much all of them together may make the server keep, so twenty stalled 64 MiB
//! uploads cannot add a gigabyte of memory. A body that cannot get its next piece of
//! the budget is read to its end and refused with the protocol's "try again later".

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget's unit: reservations are rounded up to whole KiB.
const UNIT: usize = 1024;

/// Bytes the server may hold for clients, shared by every listener.
#[derive(Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total: usize,
}

/// Part of a [`MemoryBudget`], given back when dropped.
pub struct Reservation {
    budget: MemoryBudget,
    permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> MemoryBudget {
        let units = bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS);
        MemoryBudget {
            units: Arc::new(Semaphore::new(units)),
            total: units * UNIT,
        }
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not reserved at the moment.
    pub fn available(&self) -> usize {
        self.units.available_permits() * UNIT
    }

    /// An empty reservation, to grow as bytes arrive.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            permit: None,
        }
    }
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }

    /// Makes the reservation cover at least `bytes`; false (and unchanged) when the
    /// budget has not that much left. Never waits: a client that cannot be held now is
    /// told to come back, rather than holding others up.
    pub fn cover(&mut self, bytes: usize) -> bool {
        let want = bytes.div_ceil(UNIT);
        let have = self.permit.as_ref().map_or(0, |p| p.num_permits());
        if want <= have {
            return true;
        }
        let Ok(more) = u32::try_from(want - have) else {
            return false;
        };
        match self.budget.units.clone().try_acquire_many_owned(more) {
            Ok(p) => {
                match &mut self.permit {
                    Some(held) => held.merge(p),
                    None => self.permit = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget() {
        let budget = MemoryBudget::new(10 * 1024);
        let mut a = budget.reservation();
        let mut b = budget.reservation();
        assert!(a.cover(6000));
        assert!(!b.cover(6000));
        assert!(b.cover(4000));
        assert_eq!(budget.available(), 0);
        drop(a);
        assert!(b.cover(9000));
        assert_eq!(b.bytes(), 9 * 1024);
        assert!(b.cover(100));
    }
}
