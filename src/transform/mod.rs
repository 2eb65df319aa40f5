//! Stateless Fleet transforms shared by the store side and the event loop: the events of an ack
//! body read the way Go reads them (`ack_event`), a policy revision
//! prepared for delivery (`prepared_policy`: outputs, permissions hash, secrets resolved), an
//! action shaped for the wire (`actions`), secret references (`secrets`), the settings of a
//! remote Elasticsearch output (`remote`), Go-compatible JSON (`gojson`) and a policy's output
//! problems (`output_check`). Pure functions over `model` documents: no store, no clock, no
//! socket, so `backend`, `core`, `api` and `mgmt` can all use them without depending on each
//! other.

pub mod ack_event;
pub mod actions;
pub mod gojson;
pub mod output_check;
pub mod prepared_policy;
pub mod remote;
pub mod secrets;
