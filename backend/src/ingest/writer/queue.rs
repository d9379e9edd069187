//! The writers' queue, fair between tenants.
//!
//! Requests wait in one queue per tenant, and tenants take turns: a writer takes the next
//! tenant in turn that it may write and batches that tenant's waiting requests alone. Two
//! rules keep one tenant's flood from slowing the others down:
//!
//! - a batch holds one tenant's requests, so a small request never waits for the commit of
//!   another tenant's large batch (under a flood those take ten times as long);
//! - a tenant is written by at most half the writers at once (rounded up), so that the others
//!   always find writers free: under a flood, a tenant's small batches commit in a few
//!   milliseconds even when the machine is busy, but a tenant with a single writer queues
//!   behind its own batches. A tenant whose writers are busy keeps queueing, and its next
//!   batch is the larger for it.
//!
//! The bound on waiting requests is shared by all tenants, as it protects the process.

use crate::domain::TenantId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// A queue shared by the writer tasks and every request.
pub struct FairQueue<J> {
    pending: Mutex<Pending<J>>,
    /// Woken when a request arrives, a batch is done or the queue closes.
    changed: Notify,
    capacity: usize,
    max_batch_size: usize,
    writers_per_tenant: usize,
}

struct Pending<J> {
    jobs: HashMap<TenantId, VecDeque<(J, usize)>>,
    /// Tenants with waiting requests, in the order they get their turn.
    turns: VecDeque<TenantId>,
    /// Batches being written, per tenant.
    writing: HashMap<TenantId, usize>,
    waiting: usize,
    closed: bool,
}

/// One tenant's requests, to be written together. Dropping it gives the tenant's writer
/// back, so hold it until the batch is written.
pub struct Batch<J> {
    pub tenant: TenantId,
    pub jobs: Vec<J>,
    queue: Arc<FairQueue<J>>,
}

/// Why a request was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Full,
    Closed,
}

impl<J> FairQueue<J> {
    /// `capacity`: requests that may wait (over all tenants); `max_batch_size`: a batch
    /// stops growing at this total size (a single request may exceed it alone); `writers`:
    /// how many writers take from the queue.
    pub fn new(capacity: usize, max_batch_size: usize, writers: usize) -> Self {
        Self {
            pending: Mutex::new(Pending {
                jobs: HashMap::new(),
                turns: VecDeque::new(),
                writing: HashMap::new(),
                waiting: 0,
                closed: false,
            }),
            changed: Notify::new(),
            capacity: capacity.max(1),
            max_batch_size,
            writers_per_tenant: writers.div_ceil(2).max(1),
        }
    }

    /// The lock guards plain bookkeeping that no panic leaves half-done, so a poisoned lock
    /// is still sound to use.
    fn pending(&self) -> MutexGuard<'_, Pending<J>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues one request of the tenant's, of `size` rows; refused at once when the queue is
    /// full or closed, with nothing queued.
    pub fn push(&self, tenant: TenantId, job: J, size: usize) -> Result<(), (Refused, J)> {
        {
            let mut pending = self.pending();
            if pending.closed {
                return Err((Refused::Closed, job));
            }
            if pending.waiting >= self.capacity {
                return Err((Refused::Full, job));
            }
            let queue = pending.jobs.entry(tenant).or_default();
            queue.push_back((job, size));
            if queue.len() == 1 {
                pending.turns.push_back(tenant);
            }
            pending.waiting += 1;
        }
        self.changed.notify_waiters();
        Ok(())
    }

    /// No more requests are taken; the writers write what waits and then stop.
    pub fn close(&self) {
        self.pending().closed = true;
        self.changed.notify_waiters();
    }

    /// Waits for the next batch; `None` once the queue is closed and empty.
    pub async fn next_batch(self: &Arc<Self>) -> Option<Batch<J>> {
        loop {
            // Registered before looking, so that a change made after the look still wakes
            // this writer.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut pending = self.pending();
                if let Some(batch) = self.take(&mut pending) {
                    return Some(batch);
                }
                if pending.closed && pending.waiting == 0 {
                    return None;
                }
            }
            changed.await;
        }
    }

    /// The next tenant in turn that may be written, and as many of its requests as fit.
    fn take(self: &Arc<Self>, pending: &mut Pending<J>) -> Option<Batch<J>> {
        let position = pending.turns.iter().position(|tenant| {
            pending.writing.get(tenant).copied().unwrap_or(0) < self.writers_per_tenant
        })?;
        let tenant = pending.turns.remove(position)?;
        let queue = pending.jobs.get_mut(&tenant)?;
        let mut jobs = Vec::new();
        let mut size = 0;
        while let Some((_, next_size)) = queue.front() {
            if !jobs.is_empty() && size + next_size > self.max_batch_size {
                break;
            }
            size += next_size;
            jobs.extend(queue.pop_front().map(|(job, _)| job));
        }
        if queue.is_empty() {
            pending.jobs.remove(&tenant);
        } else {
            // What is left waits for the tenant's next turn, after the other tenants'.
            pending.turns.push_back(tenant);
        }
        pending.waiting -= jobs.len();
        *pending.writing.entry(tenant).or_default() += 1;
        Some(Batch {
            tenant,
            jobs,
            queue: Arc::clone(self),
        })
    }

    fn finished(&self, tenant: TenantId) {
        {
            let mut pending = self.pending();
            if let Some(count) = pending.writing.get_mut(&tenant) {
                *count -= 1;
                if *count == 0 {
                    pending.writing.remove(&tenant);
                }
            }
        }
        self.changed.notify_waiters();
    }
}

impl<J> Drop for Batch<J> {
    fn drop(&mut self) {
        self.queue.finished(self.tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tenant(n: u128) -> TenantId {
        TenantId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn now<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok()?
            .block_on(async { tokio::time::timeout(Duration::from_millis(50), future).await })
            .ok()
    }

    #[test]
    fn a_batch_holds_one_tenants_requests_in_order_up_to_the_size_bound() {
        let queue = Arc::new(FairQueue::new(100, 25, 2));
        for (who, job) in [(1, "a1"), (2, "b1"), (1, "a2"), (1, "a3")] {
            assert!(queue.push(tenant(who), job, 10).is_ok());
        }
        let first = now(queue.next_batch()).flatten().expect("a batch");
        assert_eq!(
            (first.tenant, first.jobs.clone()),
            (tenant(1), vec!["a1", "a2"])
        );
        let second = now(queue.next_batch()).flatten().expect("a batch");
        assert_eq!(
            (second.tenant, second.jobs.clone()),
            (tenant(2), vec!["b1"])
        );
    }

    #[test]
    fn a_request_over_the_size_bound_is_a_batch_of_its_own() {
        let queue = Arc::new(FairQueue::new(100, 25, 2));
        assert!(queue.push(tenant(1), "huge", 1000).is_ok());
        assert!(queue.push(tenant(1), "small", 1).is_ok());
        let batch = now(queue.next_batch()).flatten().expect("a batch");
        assert_eq!(batch.jobs, vec!["huge"]);
    }

    #[test]
    fn a_tenant_never_holds_every_writer() {
        let queue = Arc::new(FairQueue::new(100, 10, 2));
        for job in ["a1", "a2"] {
            assert!(queue.push(tenant(1), job, 10).is_ok());
        }
        let writing = now(queue.next_batch()).flatten().expect("a batch");
        assert_eq!(writing.jobs, vec!["a1"]);
        // The second writer does not take the flooding tenant's next request...
        assert!(now(queue.next_batch()).is_none());
        // ...so it is free for another tenant's at once.
        assert!(queue.push(tenant(2), "b1", 1).is_ok());
        let other = now(queue.next_batch()).flatten().expect("a batch");
        assert_eq!(other.jobs, vec!["b1"]);
        // Once the first batch is written, the tenant's next one goes.
        drop(writing);
        let next = now(queue.next_batch()).flatten().expect("a batch");
        assert_eq!(next.jobs, vec!["a2"]);
    }

    /// How many batches of a tenant with plenty waiting are written at once.
    fn concurrent_batches(writers: usize) -> usize {
        let queue = Arc::new(FairQueue::new(100, 10, writers));
        for _ in 0..10 {
            assert!(queue.push(tenant(1), "a", 10).is_ok());
        }
        let mut writing = Vec::new();
        while let Some(batch) = now(queue.next_batch()).flatten() {
            writing.push(batch);
        }
        writing.len()
    }

    #[test]
    fn a_tenant_takes_at_most_half_the_writers_rounded_up() {
        let taken: Vec<usize> = [1, 2, 3, 4, 5]
            .into_iter()
            .map(concurrent_batches)
            .collect();
        assert_eq!(taken, vec![1, 1, 2, 2, 3]);
    }

    #[test]
    fn a_single_writer_writes_every_tenant() {
        let queue = Arc::new(FairQueue::new(100, 10, 1));
        assert!(queue.push(tenant(1), "a1", 1).is_ok());
        let batch = now(queue.next_batch()).flatten().expect("a batch");
        assert_eq!(batch.jobs, vec!["a1"]);
    }

    #[test]
    fn tenants_take_turns() {
        let queue = Arc::new(FairQueue::new(100, 10, 3));
        for (who, job) in [(1, "a1"), (1, "a2"), (1, "a3"), (2, "b1"), (3, "c1")] {
            assert!(queue.push(tenant(who), job, 10).is_ok());
        }
        let mut order = Vec::new();
        while let Some(batch) = now(queue.next_batch()).flatten() {
            order.extend(batch.jobs.clone());
            // Each batch is written at once.
            drop(batch);
        }
        assert_eq!(order, vec!["a1", "b1", "c1", "a2", "a3"]);
    }

    #[test]
    fn a_full_queue_refuses_and_keeps_nothing_of_the_refused_request() {
        let queue = Arc::new(FairQueue::new(2, 10, 2));
        assert!(queue.push(tenant(1), "a1", 1).is_ok());
        assert!(queue.push(tenant(2), "b1", 1).is_ok());
        assert_eq!(
            queue.push(tenant(3), "c1", 1).err(),
            Some((Refused::Full, "c1"))
        );
        // Taking a batch makes room.
        let batch = now(queue.next_batch()).flatten().expect("a batch");
        assert!(queue.push(tenant(3), "c1", 1).is_ok());
        drop(batch);
    }

    #[test]
    fn a_closed_queue_is_drained_then_ends() {
        let queue = Arc::new(FairQueue::new(10, 10, 2));
        assert!(queue.push(tenant(1), "a1", 1).is_ok());
        queue.close();
        assert_eq!(
            queue.push(tenant(1), "a2", 1).err(),
            Some((Refused::Closed, "a2"))
        );
        let batch = now(queue.next_batch())
            .flatten()
            .expect("what waited is still written");
        assert_eq!(batch.jobs, vec!["a1"]);
        drop(batch);
        assert!(matches!(now(queue.next_batch()), Some(None)));
    }

    #[test]
    fn a_waiting_writer_wakes_for_a_new_request() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let queue = Arc::new(FairQueue::new(10, 10, 2));
        let taken = runtime.block_on(async {
            let waiting = tokio::spawn({
                let queue = Arc::clone(&queue);
                async move { queue.next_batch().await.map(|batch| batch.jobs.clone()) }
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(queue.push(tenant(1), "a1", 1).is_ok());
            tokio::time::timeout(Duration::from_secs(1), waiting).await
        });
        assert!(matches!(taken, Ok(Ok(Some(jobs))) if jobs == vec!["a1"]));
    }
}
