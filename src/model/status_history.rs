//! Agents by status over the last 24 hours: one sample per 5-minute slot of the wall clock
//! (288 at most), for the console's overview chart. Pure: the caller passes the time and the
//! counts, and keeps the bytes ([`StatusHistory::to_bytes`]) where a restart finds them.
//!
//! A sample is due when the clock has entered a slot no sample has (a restart within a slot
//! takes none, a stopped server leaves a gap). Samples older than 24 hours are dropped; a clock
//! set back drops the samples "from the future" so that sampling resumes at once.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::AgentStatus;

/// Seconds between samples.
pub const INTERVAL_SECS: u64 = 300;
/// Seconds kept.
pub const WINDOW_SECS: u64 = 24 * 3600;
/// The most samples kept (24 h of 5-minute slots).
pub const SAMPLES: usize = (WINDOW_SECS / INTERVAL_SECS) as usize;

/// One sample: when (unix seconds) and the count of each status, in [`AgentStatus::ALL`]'s order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix seconds.
    pub t: u64,
    /// Agents of each status, [`AgentStatus::ALL`]'s order.
    pub c: Vec<u64>,
}

/// The samples of the last 24 hours, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusHistory {
    samples: VecDeque<Sample>,
}

impl StatusHistory {
    /// The history in `bytes` (as [`Self::to_bytes`] wrote them): `None` when they are not one,
    /// or hold more or other samples than this version keeps.
    pub fn from_bytes(bytes: &[u8]) -> Option<StatusHistory> {
        let history: StatusHistory = serde_json::from_slice(bytes).ok()?;
        let ordered = history
            .samples
            .iter()
            .zip(history.samples.iter().skip(1))
            .all(|(a, b)| a.t / INTERVAL_SECS < b.t / INTERVAL_SECS);
        let shaped = history
            .samples
            .iter()
            .all(|s| s.c.len() == AgentStatus::ALL.len());
        (history.samples.len() <= SAMPLES && ordered && shaped).then_some(history)
    }

    /// The bytes to keep (JSON, a few tens of kilobytes at most).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether a sample is due at `now` (unix seconds): no sample in its 5-minute slot yet.
    pub fn due(&self, now: u64) -> bool {
        self.samples
            .back()
            .is_none_or(|last| now / INTERVAL_SECS != last.t / INTERVAL_SECS)
    }

    /// Records the counts at `now` if a sample is due (true), dropping what is older than 24
    /// hours or later than `now`.
    pub fn record(&mut self, now: u64, counts: &BTreeMap<&'static str, usize>) -> bool {
        self.samples.retain(|s| s.t <= now);
        if !self.due(now) {
            return false;
        }
        while self
            .samples
            .front()
            .is_some_and(|s| s.t + WINDOW_SECS <= now)
            || self.samples.len() >= SAMPLES
        {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            t: now,
            c: AgentStatus::ALL
                .iter()
                .map(|s| counts.get(s.as_str()).copied().unwrap_or(0) as u64)
                .collect(),
        });
        true
    }

    /// The samples of the 24 hours up to `now`, oldest first.
    pub fn window(&self, now: u64) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.t <= now && s.t + WINDOW_SECS > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(online: usize) -> BTreeMap<&'static str, usize> {
        [("online", online), ("offline", 2)].into_iter().collect()
    }

    /// A driven clock: a sample per 5-minute slot however often it is asked, 288 at most,
    /// nothing older than a day, a gap where the server was stopped, and a clock set back.
    #[test]
    fn one_sample_per_slot_for_a_day() {
        let start = 1_800_000_000 - 1_800_000_000 % INTERVAL_SECS + 10;
        let mut h = StatusHistory::default();
        // Asked every minute for two days.
        let mut taken = 0;
        for minute in 0..2 * 24 * 60 {
            let now = start + minute * 60;
            let due = h.due(now);
            assert_eq!(h.record(now, &counts(minute as usize)), due);
            taken += usize::from(due);
        }
        assert_eq!(taken, 2 * SAMPLES);
        assert_eq!(h.samples.len(), SAMPLES);
        let now = start + (2 * 24 * 60 - 1) * 60;
        let window: Vec<&Sample> = h.window(now).collect();
        assert_eq!(window.len(), SAMPLES);
        assert!(window[0].t + WINDOW_SECS > now);
        assert!(window.windows(2).all(|w| w[1].t - w[0].t == INTERVAL_SECS));
        let last = window[SAMPLES - 1];
        assert_eq!(
            last.c[0],
            (2 * 24 * 60 - 5) as u64,
            "online, first of its slot"
        );
        assert_eq!(last.c[3], 2, "offline");
        assert_eq!(last.c.len(), AgentStatus::ALL.len());

        // Stopped for 3 hours: a gap, and the day's window loses the oldest 36 slots.
        let later = now + 3 * 3600;
        assert!(h.record(later, &counts(1)));
        assert_eq!(h.window(later).count(), SAMPLES - 36 + 1);
        assert!(!h.record(later + 1, &counts(1)), "same slot");

        // The clock set back an hour: the samples after it go, sampling goes on.
        let back = later - 3600;
        assert!(h.record(back, &counts(7)));
        assert!(h.samples.iter().all(|s| s.t <= back));
        assert_eq!(h.samples.back().map(|s| s.c[0]), Some(7));
    }

    #[test]
    fn bytes_round_trip_and_foreign_bytes_are_refused() {
        let mut h = StatusHistory::default();
        for i in 0..5 {
            h.record(1_000_000 + i * INTERVAL_SECS, &counts(i as usize));
        }
        assert_eq!(StatusHistory::from_bytes(&h.to_bytes()), Some(h.clone()));
        assert_eq!(StatusHistory::from_bytes(b"not json"), None);
        assert_eq!(
            StatusHistory::from_bytes(br#"{"samples":[{"t":1,"c":[1]}]}"#),
            None
        );
        let mut twice = h.to_bytes();
        twice = String::from_utf8(twice)
            .unwrap()
            .replace("1001200", "1000000")
            .into_bytes();
        assert_eq!(StatusHistory::from_bytes(&twice), None, "two in one slot");
    }
}
