//! `/v1/opamp` (fleet-protocol.md §8 "OpAMP", §1.8): what the request pipeline decides for an
//! OpAMP request, as Fleet Server's handler (on opamp-go's server) decides it. The enrollment
//! token is checked first (by the backend): 429 when Elasticsearch rate-limits the check, 401
//! for anything else, both with the protobuf content type and no body. Then a request with
//! `Content-Type: application/x-protobuf` is one plain-HTTP message (400 when it is not an
//! `AgentToServer`, 413 above the body cap); anything else must be a WebSocket upgrade.

use prost::Message;

use super::{auth, Decision, Pending, PendingKind};
use crate::backend::interface::Job;
use crate::backend::ops::opamp::{OpAmpInput, OpAmpOutcome, OpAmpRefusal};
use crate::http::{websocket, Body, Request, Response};
use crate::opamp::proto::{CustomCapabilities, ServerToAgent};

/// The endpoint.
pub const PATH: &str = "/v1/opamp";
/// The content type of both directions.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// The largest message accepted (§10.2 `opamp_limit` max body; WebSocket messages too).
pub const MAX_MESSAGE: usize = 3 * 1024 * 1024;

/// Decides an OpAMP request: a job (message or upgrade token check) or an answer now.
pub fn handle(req: &Request, pending: impl Fn(PendingKind) -> Pending) -> Decision {
    let Ok(key) = auth::api_key(req) else {
        return Decision::Respond(refusal(&OpAmpRefusal::Unauthorized));
    };
    if req.header_str("content-type").map(str::trim) == Some(CONTENT_TYPE) {
        return Decision::Job(
            Job::OpAmp(OpAmpInput {
                key,
                authenticate: true,
                body: req.body.clone(),
                websocket: false,
                remote_configs: Vec::new(),
            }),
            pending(PendingKind::OpAmp),
        );
    }
    match websocket::upgrade_key(req) {
        Ok(client_key) => Decision::Job(
            Job::OpAmpConnect {
                key,
                accept: websocket::accept_value(client_key),
            },
            pending(PendingKind::OpAmpUpgrade),
        ),
        Err(response) => Decision::Respond(response),
    }
}

/// The answer to a refused request: status, protobuf content type, no body.
pub fn refusal(refusal: &OpAmpRefusal) -> Response {
    let status = match refusal {
        OpAmpRefusal::AuthRateLimited => 429,
        OpAmpRefusal::Unauthorized => 401,
        OpAmpRefusal::BadMessage(_) => 400,
    };
    if let OpAmpRefusal::BadMessage(why) = refusal {
        log::debug!("opamp: {why}");
    }
    Response::new(status).with_header("Content-Type", CONTENT_TYPE)
}

/// The plain-HTTP answer to a handled message. Every HTTP response carries (empty) custom
/// capabilities, as opamp-go's server adds them.
pub fn http_answer(outcome: &OpAmpOutcome) -> Response {
    let reply = ServerToAgent {
        custom_capabilities: Some(CustomCapabilities::default()),
        ..outcome.reply.clone()
    };
    Response::new(200)
        .with_header("Content-Type", CONTENT_TYPE)
        .with_body(Body::Bytes(reply.encode_to_vec()))
}

/// The answer to a body above [`MAX_MESSAGE`] (opamp-go's size-limit error).
pub fn too_large() -> Response {
    Response::new(413)
}
