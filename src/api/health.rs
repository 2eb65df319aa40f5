//! The server's self-monitor state, as reported by `GET /api/status` (fleet-protocol.md §7):
//! the upper-case name goes on the wire, and only `HEALTHY` answers 200.

/// Self-monitor state of this Fleet Server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Listeners are not ready yet, or the store is not reachable yet.
    Starting,
    /// Serving, but something needs attention (for example bootstrap without an agent id).
    Degraded,
    /// Serving normally.
    Healthy,
    /// Cannot serve agents.
    Failed,
    /// Draining after SIGTERM/SIGINT.
    Stopping,
}

impl Health {
    /// The wire name used in the status body.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "STARTING",
            Health::Degraded => "DEGRADED",
            Health::Healthy => "HEALTHY",
            Health::Failed => "FAILED",
            Health::Stopping => "STOPPING",
        }
    }

    /// HTTP status of `GET /api/status`: 200 only when healthy.
    pub fn http_status(self) -> u16 {
        if self == Health::Healthy {
            200
        } else {
            503
        }
    }
}

/// A [`Health`] shared between the thread that decides it (the agent-mode self-monitor) and
/// the event loop that answers `GET /api/status` with it.
#[derive(Debug)]
pub struct HealthCell(std::sync::atomic::AtomicU8);

impl HealthCell {
    /// A cell holding `health`.
    pub fn new(health: Health) -> Self {
        Self(std::sync::atomic::AtomicU8::new(health as u8))
    }

    /// The current state.
    pub fn get(&self) -> Health {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => Health::Starting,
            1 => Health::Degraded,
            2 => Health::Healthy,
            3 => Health::Failed,
            _ => Health::Stopping,
        }
    }

    /// Replaces the state; returns the previous one.
    pub fn set(&self, health: Health) -> Health {
        let previous = self.get();
        self.0
            .store(health as u8, std::sync::atomic::Ordering::Relaxed);
        previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cell_round_trips_every_state() {
        let cell = HealthCell::new(Health::Starting);
        for h in [
            Health::Starting,
            Health::Degraded,
            Health::Healthy,
            Health::Failed,
            Health::Stopping,
        ] {
            cell.set(h);
            assert_eq!(cell.get(), h);
        }
    }
}
