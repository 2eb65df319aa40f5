//! The `fleet-edge` binary: load configuration, start logging, run the server.
fn main() {}
