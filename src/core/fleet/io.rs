//! What crosses the engine's boundary: the names it gives connections ([`ConnKey`]) and reply
//! destinations ([`ReplyTo`]), where a request came from ([`Origin`]), and the [`Output`]s the
//! event loop carries out for it.

use std::time::Instant;

use crate::backend::interface::Job;
use crate::backend::ApiKey;
use crate::http::Response;
use crate::opamp::proto::ServerToAgent;

/// A connection as the engine names it: the event loop's slot and that slot's generation, so a
/// reply for a connection that has gone (slot reused) is told apart and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    slot: usize,
    generation: u64,
}

impl ConnKey {
    /// The key of the connection in `slot` at `generation`.
    pub fn new(slot: usize, generation: u64) -> Self {
        Self { slot, generation }
    }

    /// The slot the event loop keeps the connection in.
    pub fn slot(self) -> usize {
        self.slot
    }

    /// The generation of that slot.
    pub fn generation(self) -> u64 {
        self.generation
    }
}

/// Where a backend reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyTo {
    /// A connection's in-flight request.
    Conn(ConnKey),
    /// The checkin bulk writer.
    Writer,
    /// A part of a streamed body on a connection, announced as this many bytes.
    Part(ConnKey, u64),
}

/// Which listener, and which side of the connection gate, a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The agent listener, under `max_connections`.
    Agent,
    /// The agent listener, over `max_connections`: answered 429.
    OverCapacity,
    /// A descriptor drawn from the reserve: `GET /api/status` is answered, the rest 429.
    Reserve,
    /// The management listener.
    Management,
}

/// Something the event loop must do for the engine.
#[derive(Debug)]
pub enum Output {
    /// Write `response` (headers complete) as the answer to the connection's request.
    Respond {
        /// The connection.
        conn: ConnKey,
        /// The answer.
        response: Response,
        /// Close the connection after this answer (`Connection: close`): the request's job may
        /// still reply, and its late reply must not meet a next request of this connection.
        close: bool,
    },
    /// Finish a WebSocket message: send `reply` as a binary frame (`None`: the message was
    /// dropped and nothing is sent).
    Message {
        /// The connection.
        conn: ConnKey,
        /// The `ServerToAgent` reply.
        reply: Option<ServerToAgent>,
    },
    /// Answer `101 Switching Protocols` and read WebSocket frames from here on.
    Upgrade {
        /// The connection.
        conn: ConnKey,
        /// The `Sec-WebSocket-Accept` value.
        accept: String,
        /// The enrollment token checked for the upgrade (its messages carry it).
        token: ApiKey,
    },
    /// Hand the connection the next part of the body it is streaming (or why there is none:
    /// the connection then closes, its `Content-Length` unmet).
    Part {
        /// The connection.
        conn: ConnKey,
        /// The bytes announced for the part.
        expected: u64,
        /// The part's bytes.
        bytes: Result<Vec<u8>, String>,
    },
    /// Hand `job` to the backend, to be answered by `deadline`; a refusal (queue full, the
    /// queue ahead cannot drain by the deadline, no store) comes back through
    /// [`super::Fleet::handle_refused`].
    Submit {
        /// Where the reply goes.
        to: ReplyTo,
        /// The work.
        job: Job,
        /// By when the backend must reply (its store calls are bounded by it).
        deadline: Instant,
    },
}
