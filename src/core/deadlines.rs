//! One min-heap of deadlines for every timer the server has: TLS handshake, request header,
//! request body, keep-alive idle, write stall, long-poll expiry and the drain deadline.
//!
//! Entries are never removed from the middle of the heap. Each owner remembers the ticket of its
//! current deadline; re-arming issues a new ticket, and a popped entry whose ticket is no longer
//! the owner's current one is stale and skipped by the caller (`Deadlines::expired` hands back the
//! ticket so the caller can compare). When stale entries outnumber live ones the heap is rebuilt,
//! so churn on keep-alive connections cannot grow it without bound.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Identifies one arming of a deadline; compare it with the owner's current ticket when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry<K: Ord> {
    /// Nanoseconds from [`Deadlines::base`]: 8 bytes where an `Instant` takes 16 (a parked
    /// agent's long poll holds an entry, times the heap's slack; issue 21). Same order, same
    /// instant back ([`Deadlines::instant`]).
    at: i64,
    ticket: Ticket,
    key: K,
}

/// A heap of `(instant, key)` deadlines with lazy cancellation.
#[derive(Debug)]
pub struct Deadlines<K: Ord> {
    heap: BinaryHeap<Reverse<Entry<K>>>,
    next_ticket: u64,
    /// Entries known to be superseded or cancelled; drives compaction.
    stale: usize,
    /// The instant entries count from: the first one armed.
    base: Option<Instant>,
}

impl<K: Ord + Copy> Default for Deadlines<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Copy> Deadlines<K> {
    /// An empty heap.
    pub fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_ticket: 0,
            stale: 0,
            base: None,
        }
    }

    /// `at` as nanoseconds from the base (saturating ~292 years either side of it).
    fn offset(base: Instant, at: Instant) -> i64 {
        match at.checked_duration_since(base) {
            Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            None => i64::try_from(base.duration_since(at).as_nanos()).map_or(i64::MIN, |n| -n),
        }
    }

    /// The instant of an entry's `at`.
    fn instant(&self, at: i64) -> Option<Instant> {
        let base = self.base?;
        let magnitude = Duration::from_nanos(at.unsigned_abs());
        if at >= 0 {
            base.checked_add(magnitude)
        } else {
            base.checked_sub(magnitude)
        }
    }

    /// Arms a deadline for `key` at `at` and returns its ticket.
    pub fn arm(&mut self, key: K, at: Instant) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket = self.next_ticket.wrapping_add(1);
        let base = *self.base.get_or_insert(at);
        let at = Self::offset(base, at);
        self.heap.push(Reverse(Entry { at, ticket, key }));
        ticket
    }

    /// Records that an armed ticket will be ignored when it fires (re-armed or cancelled), and
    /// compacts the heap once stale entries dominate. `is_live` tells which entries still count.
    pub fn note_stale(&mut self, is_live: impl Fn(K, Ticket) -> bool) {
        self.stale += 1;
        if self.stale > 64 && self.stale > self.heap.len() / 2 {
            let entries = std::mem::take(&mut self.heap).into_vec();
            self.heap = entries
                .into_iter()
                .filter(|Reverse(e)| is_live(e.key, e.ticket))
                .collect();
            self.stale = 0;
        }
    }

    /// Time from `now` until the earliest deadline (zero if already due), or `None` when empty.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_at().map(|at| at.saturating_duration_since(now))
    }

    /// The earliest deadline (stale ones included), or `None` when empty.
    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().and_then(|Reverse(e)| self.instant(e.at))
    }

    /// Pops one deadline that is due at `now`, oldest first.
    pub fn expired(&mut self, now: Instant) -> Option<(K, Ticket)> {
        let now = Self::offset(self.base?, now);
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => {}
            _ => return None,
        }
        self.heap.pop().map(|Reverse(e)| (e.key, e.ticket))
    }

    /// Number of entries held, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        d.arm(2u32, t0 + Duration::from_secs(2));
        d.arm(1u32, t0 + Duration::from_secs(1));
        assert_eq!(d.next_timeout(t0), Some(Duration::from_secs(1)));
        assert_eq!(d.expired(t0), None);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(d.expired(later).map(|(k, _)| k), Some(1));
        assert_eq!(d.expired(later).map(|(k, _)| k), Some(2));
        assert_eq!(d.expired(later), None);
        assert_eq!(d.next_timeout(later), None);
    }

    #[test]
    fn instants_before_the_first_one_armed_keep_their_order_and_value() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut d = Deadlines::new();
        d.arm(1u32, t0);
        let earlier = t0 - Duration::from_nanos(1_500_000_001);
        d.arm(2u32, earlier);
        d.arm(3u32, t0 + Duration::from_nanos(7));
        assert_eq!(d.next_at(), Some(earlier), "the same instant back");
        assert_eq!(d.expired(earlier - Duration::from_nanos(1)), None);
        assert_eq!(d.expired(earlier).map(|(k, _)| k), Some(2));
        assert_eq!(d.next_at(), Some(t0));
        assert_eq!(
            d.expired(t0 + Duration::from_nanos(6)).map(|(k, _)| k),
            Some(1)
        );
        assert_eq!(d.expired(t0 + Duration::from_nanos(6)), None);
        assert_eq!(d.next_at(), Some(t0 + Duration::from_nanos(7)));
    }

    #[test]
    fn rearming_yields_a_new_ticket_and_old_one_is_recognisably_stale() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        let first = d.arm(7u32, t0);
        let second = d.arm(7u32, t0 + Duration::from_secs(1));
        assert_ne!(first, second);
        let (k, t) = d.expired(t0).unwrap();
        assert_eq!((k, t), (7, first));
        assert_ne!(
            t, second,
            "caller compares with its current ticket and skips"
        );
    }

    #[test]
    fn compaction_bounds_the_heap_under_churn() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        let mut current = d.arm(0u32, t0 + Duration::from_secs(60));
        for i in 0..10_000u64 {
            let next = d.arm(0u32, t0 + Duration::from_secs(60 + i));
            let live = next;
            d.note_stale(|_, t| t == live);
            current = next;
        }
        assert!(d.len() < 200, "heap kept {} entries", d.len());
        let mut fired = Vec::new();
        while let Some((_, t)) = d.expired(t0 + Duration::from_secs(100_000)) {
            fired.push(t);
        }
        assert_eq!(
            fired.last(),
            Some(&current),
            "the live deadline survives compaction"
        );
    }
}

#[cfg(test)]
mod sizes {
    #[test]
    fn an_entry_stays_small() {
        // A long poll's entry (the engine's connection key is 16 bytes), printed for the
        // README's per-agent budget (`cargo test --lib -- sizes --nocapture`).
        let entry = std::mem::size_of::<super::Entry<(usize, u64)>>();
        println!("deadline heap entry {entry} bytes (with a 16-byte key)");
        assert!(entry <= 32, "{entry}");
    }
}
