//! Sans-IO building blocks the event loop drives: the deadline heap, the server's health state,
//! and request-id generation. Nothing here reads the clock, the environment or a socket: time
//! and randomness come in as parameters, so every behaviour is testable with a virtual clock.

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
