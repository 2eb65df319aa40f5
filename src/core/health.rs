//! The server's self-monitor state, as reported by `GET /api/status` (fleet-protocol.md §7):
//! the upper-case name goes on the wire, and only `HEALTHY` answers 200.

/// Self-monitor state of this Fleet Server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
