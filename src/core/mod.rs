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

// The stateless Fleet transforms moved to `transform` (issue 14 item 4); these paths stay until
// the branches developed alongside that move have merged. To be removed: import `transform`.
pub use crate::transform::prepared_policy as policy;
pub use crate::transform::{actions, gojson, output_check, remote, secrets};
// The request pipeline's building blocks moved to `api` (issue 14 item 4: `core` sits above
// `api`); these paths stay until the branches developed alongside have merged. To be removed.
pub use crate::api::{health, ids, limits};

pub use deadlines::Deadlines;
pub use health::{Health, HealthCell};
pub use ids::RequestIds;
