//! The documents Fleet keeps, as typed values shared by both stores and the protocol code. Field
//! names and shapes follow Elastic's `model/schema.json` and fleet-protocol.md §11; fields this
//! server does not interpret are kept in `other` so a read-modify-write never drops what Kibana or
//! another Fleet Server wrote.

pub mod action;
pub mod agent;
mod agent_de;
pub mod agent_status;
pub mod agent_summary;
pub mod artifact;
pub mod enrollment;
pub mod output_health;
pub mod policy;
pub mod status_history;
pub mod time;

pub use action::{Action, ActionResult};
pub use agent::{Agent, AgentInfo, OutputKey, RetiredKey};
pub use agent_status::{agent_status, AgentStatus};
pub use artifact::Artifact;
pub use enrollment::EnrollmentKey;
pub use output_health::OutputHealth;
pub use policy::PolicyDoc;
