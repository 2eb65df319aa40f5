//! Sans-IO Fleet logic. [`fleet::Fleet`] is the engine the event loop drives: it owns every
//! piece of Fleet state and composes the building blocks beside it (the long-poll registry and
//! rules, the deadline heap, route limits, rollout pacing, health, request ids). `LIFECYCLE.md`
//! follows one checkin through them. Nothing here reads the clock, the environment or a socket:
//! time and randomness come in as parameters, so every behaviour is testable with a virtual
//! clock (`fleet::testing`).

pub mod actions;
pub mod deadlines;
pub mod fleet;
pub mod gojson;
pub mod health;
pub mod ids;
pub mod limits;
pub mod longpoll;
pub mod output_check;
pub mod pacing;
pub mod policy;
pub mod remote;
pub mod secrets;

pub use deadlines::Deadlines;
pub use health::{Health, HealthCell};
pub use ids::RequestIds;
