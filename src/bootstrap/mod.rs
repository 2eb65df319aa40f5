//! Agent mode against Elasticsearch: what Elastic Agent and Fleet Server do together when an
//! agent is installed with `--fleet-server-es` (the seeds' seven-step flow).
//!
//! * `overrides`: what the Fleet Server policy may change in the bootstrap configuration.
pub mod overrides;
