//! Sans-IO building blocks the event loop drives: the deadline heap, the long-poll registry and
//! rules, rollout pacing. Nothing here reads the clock, the environment or a socket: time
//! and randomness come in as parameters, so every behaviour is testable with a virtual clock.

pub mod deadlines;
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
