//! Isolation: which commits a querier sees.
//!
//! Commits are published one at a time, in write-id order (the commit lock
//! serialises them, see [`super::appender`]), and the id of the last fully
//! published commit is stored after its publication. A querier reads that id
//! when it is created — its *read id* — and sees exactly the commits with an
//! id no greater. Samples carry no ids of their own: a series remembers, for
//! each recent commit, how many in-order samples it had before that commit
//! ([`super::series::CommitMarks`]), so a reader with read id `r` sees the
//! prefix of the series up to the first commit newer than `r`.
//! Out-of-order samples carry their write id while they are in memory.
//!
//! Those marks are only needed while a querier that could be hiding the
//! commit exists. [`Isolation::low_watermark`] is the smallest read id of any
//! open querier (or the last published id when there is none); a commit
//! prunes the marks of the series it touches up to it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The isolation bookkeeping of one head.
#[derive(Debug, Default)]
pub(crate) struct Isolation {
    /// Id of the last commit that is completely published.
    last_published: AtomicU64,
    /// Read ids of open queriers, with how many queriers hold each.
    readers: Mutex<BTreeMap<u64, usize>>,
}

impl Isolation {
    /// The id the next commit gets. Only the committer (holding the commit
    /// lock) calls this, so the value cannot change under it.
    pub(crate) fn next_write_id(&self) -> u64 {
        self.last_published.load(Ordering::Acquire) + 1
    }

    /// Makes commit `id` visible to queriers created from now on.
    pub(crate) fn publish(&self, id: u64) {
        self.last_published.store(id, Ordering::Release);
    }

    /// Registers a new reader and returns its guard.
    pub(crate) fn reader(self: &Arc<Self>) -> ReadGuard {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        // Read under the lock, so a committer computing the low watermark
        // either sees this reader or published before it read the id.
        let read_id = self.last_published.load(Ordering::Acquire);
        *readers.entry(read_id).or_insert(0) += 1;
        ReadGuard {
            isolation: Arc::clone(self),
            read_id,
        }
    }

    /// The smallest read id any open or future querier can have.
    pub(crate) fn low_watermark(&self) -> u64 {
        let readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        readers
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.last_published.load(Ordering::Acquire))
    }
}

/// A registered reader; deregisters on drop.
#[derive(Debug)]
pub(crate) struct ReadGuard {
    isolation: Arc<Isolation>,
    read_id: u64,
}

impl ReadGuard {
    /// The id of the newest commit this reader sees.
    pub(crate) fn read_id(&self) -> u64 {
        self.read_id
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut readers = self
            .isolation
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = readers.get_mut(&self.read_id) {
            *count -= 1;
            if *count == 0 {
                readers.remove(&self.read_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_watermark_follows_the_oldest_reader() {
        let isolation = Arc::new(Isolation::default());
        assert_eq!(isolation.low_watermark(), 0);
        isolation.publish(1);
        let old = isolation.reader();
        assert_eq!(old.read_id(), 1);
        isolation.publish(2);
        isolation.publish(3);
        let new = isolation.reader();
        assert_eq!(new.read_id(), 3);
        assert_eq!(isolation.low_watermark(), 1);
        drop(old);
        assert_eq!(isolation.low_watermark(), 3);
        drop(new);
        isolation.publish(4);
        assert_eq!(isolation.low_watermark(), 4);
        assert_eq!(isolation.next_write_id(), 5);
    }
}
