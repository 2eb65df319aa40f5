//! The backend's job queue: bounded, but allocated as work arrives. A bounded std channel
//! (`sync_channel(4096)`) allocates and writes every slot when it is made: 4,096 slots of about
//! 190 bytes, 768 KiB of an idle server's RSS. This is an unbounded channel (blocks of 31 slots,
//! made and freed as the queue grows and shrinks) with the bound kept by a counter.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvError, Sender, TryRecvError};
use std::sync::Arc;

/// The sending side: [`JobsTx::try_send`] refuses when `cap` items wait.
pub(super) struct JobsTx<W> {
    tx: Sender<W>,
    queued: Arc<AtomicUsize>,
    cap: usize,
    /// Most items that waited at once.
    peak: AtomicUsize,
    /// Items queued since the start.
    sent: AtomicU64,
}

/// The receiving side (shared by the workers behind a mutex).
pub(super) struct JobsRx<W> {
    rx: Receiver<W>,
    queued: Arc<AtomicUsize>,
}

/// A queue holding at most `cap` items.
pub(super) fn job_queue<W>(cap: usize) -> (JobsTx<W>, JobsRx<W>) {
    let (tx, rx) = mpsc::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        JobsTx {
            tx,
            queued: Arc::clone(&queued),
            cap,
            peak: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
        },
        JobsRx { rx, queued },
    )
}

impl<W> JobsTx<W> {
    /// Queues `item`; gives it back when the queue is full or the receiver is gone.
    pub(super) fn try_send(&self, item: W) -> Result<(), W> {
        let ahead = self.queued.fetch_add(1, Ordering::AcqRel);
        if ahead >= self.cap {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(item);
        }
        self.tx.send(item).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            e.0
        })?;
        self.peak.fetch_max(ahead + 1, Ordering::Relaxed);
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// (items waiting now, most that waited at once, items queued since the start).
    pub(super) fn figures(&self) -> (usize, usize, u64) {
        (
            self.queued.load(Ordering::Relaxed),
            self.peak.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
        )
    }
}

impl<W> JobsRx<W> {
    /// The next item, waiting for one; an error once every sender is gone and the queue empty.
    pub(super) fn recv(&self) -> Result<W, RecvError> {
        let item = self.rx.recv()?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Ok(item)
    }

    /// The next item if one is queued.
    pub(super) fn try_recv(&self) -> Result<W, TryRecvError> {
        let item = self.rx.try_recv()?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_its_bound_and_takes_again_once_drained() {
        let (tx, rx) = job_queue::<u32>(2);
        assert!(tx.try_send(1).is_ok() && tx.try_send(2).is_ok());
        assert_eq!(tx.try_send(3), Err(3), "full");
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(tx.try_send(3).is_ok(), "room again");
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            tx.figures(),
            (0, 2, 3),
            "none waits; two did at once; three queued"
        );
        drop(rx);
        assert_eq!(tx.try_send(4), Err(4), "receiver gone");
        assert!(tx.try_send(5).is_err());
    }
}
