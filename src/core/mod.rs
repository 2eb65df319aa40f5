//! Sans-IO Fleet logic. [`fleet::Fleet`] is the engine the event loop drives: it owns every
//! piece of Fleet state and composes the building blocks beside it (the long-poll registry and
//! rules, the deadline heap, rollout pacing) with the request pipeline's pieces in `api` (route
//! limits, health, request ids). `LIFECYCLE.md` follows one checkin through them. Nothing here
//! reads the clock, the environment or a socket: time and randomness come in as parameters, so
//! every behaviour is testable with a virtual clock (`fleet::testing`).

pub mod deadlines;
pub mod fleet;
pub mod longpoll;
pub mod pacing;

pub use deadlines::Deadlines;
