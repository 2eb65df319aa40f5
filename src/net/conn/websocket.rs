//! The WebSocket half of a connection (OpAMP collectors): after the upgrade the connection reads
//! frames instead of HTTP requests, hands each binary message to the engine (one at a time, like
//! opamp-go's read loop), answers pings, and writes `ServerToAgent` replies
//! as binary frames. A protocol error or an oversized message is answered with its close code and
//! the connection ends; a parked collector costs a connection and this small session.

use super::{Awaiting, Conn, DriveCtx};
use crate::api;
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

/// What one step of frame decoding did.
pub(super) enum WsStep {
    /// More bytes are needed.
    NeedMore,
    /// A frame was handled here (ping, close, an error's close); step again.
    Progress,
    /// A binary message for the engine, with the token the upgrade checked.
    Message(ApiKey, Vec<u8>),
}

impl Conn {
    /// Completes an accepted upgrade: the `101` answer, then WebSocket framing from here on.
    pub fn upgrade_websocket(&mut self, accept: &str, key: ApiKey, pool: &mut BufPool) {
        self.awaiting = None;
        self.queue_raw(&switching_protocols(accept), pool);
        self.ws = Some(Box::new(WsSession {
            decoder: FrameDecoder::new(api::opamp::MAX_MESSAGE),
            key,
            sent_custom_capabilities: false,
        }));
    }

    /// Finishes the message in flight: sends `reply` (none for a message that was dropped).
    pub fn websocket_reply(&mut self, reply: Option<ServerToAgent>, pool: &mut BufPool) {
        self.awaiting = None;
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

    /// Decodes the next frame event from the read buffer and acts on it.
    pub(super) fn websocket_step(&mut self, ctx: &mut DriveCtx<'_>) -> WsStep {
        let Some(ws) = self.ws.as_mut() else {
            return WsStep::NeedMore;
        };
        let event = match ws.decoder.decode(&mut self.rbuf) {
            Ok(Some(event)) => event,
            Ok(None) => return WsStep::NeedMore,
            Err(err) => {
                log::debug!("closing OpAMP WebSocket: {err}");
                self.rbuf.clear();
                self.close_websocket(err.close_code(), ctx.pool);
                return WsStep::Progress;
            }
        };
        match event {
            WsEvent::Binary(body) => {
                self.awaiting = Some(Awaiting {
                    keep_alive: true,
                    accepts_gzip: false,
                    head: false,
                });
                return WsStep::Message(ws.key.clone(), body);
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
        WsStep::Progress
    }

    fn close_websocket(&mut self, code: u16, pool: &mut BufPool) {
        let mut frame = Vec::new();
        encode_close(code, &mut frame);
        self.queue_raw(&frame, pool);
        self.close_after_flush = true;
    }
}
