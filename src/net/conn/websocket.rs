//! The WebSocket half of a connection (OpAMP collectors): after the upgrade the connection reads
//! frames instead of HTTP requests, hands each binary message to the backend as one OpAMP job
//! (one at a time, like opamp-go's read loop), answers pings, and writes `ServerToAgent` replies
//! as binary frames. A protocol error or an oversized message is answered with its close code and
//! the connection ends; a parked collector costs a connection and this small session.

use super::{Conn, DriveCtx, Inflight};
use crate::api::{self, Pending, PendingKind};
use crate::backend::ops::opamp::OpAmpInput;
use crate::backend::workers::Job;
use crate::backend::ApiKey;
use crate::http::websocket::{
    close_code, encode_close, encode_frame, opcode, switching_protocols, FrameDecoder, WsEvent,
};
use crate::net::pool::BufPool;
use crate::opamp::proto::{CustomCapabilities, ServerToAgent};

/// What a WebSocket connection keeps besides the connection itself.
#[derive(Debug)]
pub(super) struct WsSession {
    decoder: FrameDecoder,
    /// The enrollment token checked at the upgrade (enrollments look its record up).
    key: ApiKey,
    /// opamp-go sends (empty) custom capabilities in the first reply of a connection only.
    sent_custom_capabilities: bool,
}

impl Conn {
    /// Completes an accepted upgrade: the `101` answer, then WebSocket framing from here on.
    pub fn upgrade_websocket(&mut self, accept: &str, key: ApiKey, pool: &mut BufPool) {
        self.inflight = None;
        self.queue_raw(&switching_protocols(accept), pool);
        self.ws = Some(Box::new(WsSession {
            decoder: FrameDecoder::new(api::opamp::MAX_MESSAGE),
            key,
            sent_custom_capabilities: false,
        }));
    }

    /// Finishes the message in flight: sends `reply` (none for a message that was dropped).
    pub fn websocket_reply(&mut self, reply: Option<ServerToAgent>, pool: &mut BufPool) {
        self.inflight = None;
        let (Some(mut reply), Some(ws)) = (reply, self.ws.as_mut()) else {
            return;
        };
        if !ws.sent_custom_capabilities {
            reply.custom_capabilities = Some(CustomCapabilities::default());
            ws.sent_custom_capabilities = true;
        }
        let mut frame = Vec::new();
        encode_frame(opcode::BINARY, &crate::opamp::encode_ws(&reply), &mut frame);
        self.queue_raw(&frame, pool);
    }

    /// Decodes the next frame event from the read buffer and acts on it. True when something
    /// happened (the caller loops), false when more bytes are needed.
    pub(super) fn websocket_step(&mut self, ctx: &mut DriveCtx<'_>) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        let event = match ws.decoder.decode(&mut self.rbuf) {
            Ok(Some(event)) => event,
            Ok(None) => return false,
            Err(err) => {
                log::debug!("closing OpAMP WebSocket: {err}");
                self.rbuf.clear();
                self.close_websocket(err.close_code(), ctx.pool);
                return true;
            }
        };
        match event {
            WsEvent::Binary(body) => {
                let key = ws.key.clone();
                self.inflight = Some(Inflight {
                    pending: Pending {
                        kind: PendingKind::OpAmpMessage,
                        request_id: String::new(),
                        api_version: api::version::DEFAULT,
                        limited: None,
                        server_version: ctx.server_version,
                        refused_agent_version: None,
                    },
                    keep_alive: true,
                    accepts_gzip: false,
                    started: ctx.now,
                    deadline: None,
                    checkin: None,
                });
                ctx.jobs.push(Job::OpAmp(OpAmpInput {
                    key,
                    authenticate: false,
                    body,
                    websocket: true,
                    remote_configs: Vec::new(),
                }));
            }
            // opamp-go logs a non-binary message and reads on.
            WsEvent::Text(_) | WsEvent::Pong => {}
            WsEvent::Ping(payload) => {
                let mut frame = Vec::new();
                encode_frame(opcode::PONG, &payload, &mut frame);
                self.queue_raw(&frame, ctx.pool);
            }
            WsEvent::Close(_) => {
                self.rbuf.clear();
                self.close_websocket(close_code::NORMAL, ctx.pool);
            }
        }
        true
    }

    fn close_websocket(&mut self, code: u16, pool: &mut BufPool) {
        let mut frame = Vec::new();
        encode_close(code, &mut frame);
        self.queue_raw(&frame, pool);
        self.close_after_flush = true;
    }
}
