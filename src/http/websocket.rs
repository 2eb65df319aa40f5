//! Sans-IO WebSocket (RFC 6455) for the OpAMP transport: the upgrade handshake
//! ([`upgrade_key`], [`accept_value`], [`switching_protocols`]), an incremental frame decoder that
//! reassembles fragmented messages under a size cap ([`FrameDecoder`]), and server frame encoding
//! ([`encode_frame`]). No extensions are negotiated (permessage-deflate is optional for a server),
//! so any RSV bit is a protocol error. Bytes in, events out; the event loop owns the socket.

use super::{Method, Request, Response};

/// The GUID of RFC 6455 §1.3.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// Text message.
    pub const TEXT: u8 = 0x1;
    /// Binary message.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// Close codes this server sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
}

/// Why a stream of frames is refused; the connection answers with a close frame and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A framing rule was broken (unmasked client frame, RSV bits, bad control frame, ...).
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    /// A message above the cap.
    #[error("websocket message too big")]
    TooBig,
}

impl WsError {
    /// The close code that answers this error.
    pub fn close_code(self) -> u16 {
        match self {
            WsError::Protocol(_) => close_code::PROTOCOL,
            WsError::TooBig => close_code::TOO_BIG,
        }
    }
}

/// One complete thing the peer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A complete text message (OpAMP has none; the caller ignores it).
    Text(Vec<u8>),
    /// A ping: answer with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong,
    /// A close frame, with its code when it has one.
    Close(Option<u16>),
}

/// Incremental decoder of client frames.
#[derive(Debug)]
pub struct FrameDecoder {
    max_message: usize,
    /// Opcode and payload of a fragmented message in progress.
    partial: Option<(u8, Vec<u8>)>,
}

impl FrameDecoder {
    /// A decoder refusing messages above `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            partial: None,
        }
    }

    /// True when no fragmented message is in progress.
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Consumes whole frames from the front of `buf` until one completes an event (`Some`), or
    /// more bytes are needed (`None`: the incomplete frame stays in `buf`). A frame declaring more
    /// than the cap is refused before its payload arrives.
    pub fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<WsEvent>, WsError> {
        loop {
            let Some(frame) = parse_frame(buf, self.max_message)? else {
                return Ok(None);
            };
            let Frame {
                fin,
                op,
                payload_at,
                len,
                mask,
            } = frame;
            let mut payload = buf
                .get(payload_at..payload_at + len)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            buf.drain(..payload_at + len);
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            match op {
                opcode::PING => return Ok(Some(WsEvent::Ping(payload))),
                opcode::PONG => return Ok(Some(WsEvent::Pong)),
                opcode::CLOSE => {
                    if payload.len() == 1 {
                        return Err(WsError::Protocol("close frame with a one-byte payload"));
                    }
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    return Ok(Some(WsEvent::Close(code)));
                }
                opcode::TEXT | opcode::BINARY => {
                    if self.partial.is_some() {
                        return Err(WsError::Protocol("new message inside a fragmented one"));
                    }
                    if fin {
                        return Ok(Some(message(op, payload)));
                    }
                    self.partial = Some((op, payload));
                }
                opcode::CONTINUATION => {
                    let Some((first, mut data)) = self.partial.take() else {
                        return Err(WsError::Protocol("continuation without a message"));
                    };
                    if data.len() + payload.len() > self.max_message {
                        return Err(WsError::TooBig);
                    }
                    data.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some(message(first, data)));
                    }
                    self.partial = Some((first, data));
                }
                _ => return Err(WsError::Protocol("reserved opcode")),
            }
        }
    }
}

fn message(op: u8, payload: Vec<u8>) -> WsEvent {
    if op == opcode::TEXT {
        WsEvent::Text(payload)
    } else {
        WsEvent::Binary(payload)
    }
}

struct Frame {
    fin: bool,
    op: u8,
    payload_at: usize,
    len: usize,
    mask: [u8; 4],
}

/// The header of the frame at the front of `buf`, once its whole payload is there.
fn parse_frame(buf: &[u8], max: usize) -> Result<Option<Frame>, WsError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let op = b0 & 0x0f;
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol("reserved bits set"));
    }
    if b1 & 0x80 == 0 {
        return Err(WsError::Protocol("client frame not masked"));
    }
    let control = op & 0x8 != 0;
    let short = usize::from(b1 & 0x7f);
    let (len, mut at) = match short {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (usize::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut eight = [0u8; 8];
            eight.copy_from_slice(b);
            let n = u64::from_be_bytes(eight);
            if n >> 63 != 0 {
                return Err(WsError::Protocol("64-bit length with the top bit set"));
            }
            (usize::try_from(n).unwrap_or(usize::MAX), 10)
        }
        n => (n, 2),
    };
    if control && (!fin || len > 125) {
        return Err(WsError::Protocol("fragmented or long control frame"));
    }
    if len > max {
        return Err(WsError::TooBig);
    }
    let Some(m) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [m[0], m[1], m[2], m[3]];
    at += 4;
    if buf.len() < at + len {
        return Ok(None);
    }
    Ok(Some(Frame {
        fin,
        op,
        payload_at: at,
        len,
        mask,
    }))
}

/// Appends one unmasked, unfragmented server frame.
pub fn encode_frame(op: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | (op & 0x0f));
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code`.
pub fn encode_close(code: u16, out: &mut Vec<u8>) {
    encode_frame(opcode::CLOSE, &code.to_be_bytes(), out);
}

/// Why a request is not a WebSocket upgrade, answered as gorilla/websocket answers it.
pub fn upgrade_key(req: &Request) -> Result<&str, Response> {
    let has_token = |name: &str, token: &str| {
        req.header_values(name).any(|v| {
            std::str::from_utf8(v)
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let bad = |text: &str| Err(Response::text(400, text));
    if !has_token("connection", "upgrade") {
        return bad("Bad Request\nwebsocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header");
    }
    if !has_token("upgrade", "websocket") {
        return bad("Bad Request\nwebsocket: the client is not using the websocket protocol: 'websocket' token not found in 'Upgrade' header");
    }
    if req.method != Method::Get {
        return Err(Response::text(
            405,
            "Method Not Allowed\nwebsocket: the client is not using the websocket protocol: request method is not GET",
        ));
    }
    if req.header_str("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(
            Response::text(400, "Bad Request\nwebsocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header")
                .with_header("Sec-WebSocket-Version", "13"),
        );
    }
    match req.header_str("sec-websocket-key").map(str::trim) {
        Some(key) if is_valid_key(key) => Ok(key),
        _ => bad("Bad Request\nwebsocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte length"),
    }
}

fn is_valid_key(key: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|k| k.len() == 16)
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
pub fn accept_value(key: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{ACCEPT_GUID}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The raw `101 Switching Protocols` answer.
pub fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = Vec::new();
        encode_frame(op, payload, &mut out);
        if !fin {
            out[0] &= 0x7f;
        }
        out[1] |= 0x80;
        let at = out.len() - payload.len();
        out.splice(at..at, mask);
        for (i, b) in out[at + 4..].iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        out
    }

    #[test]
    fn rfc_sample_accept_value() {
        assert_eq!(
            accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_decode_whole_split_and_fragmented() {
        let big = vec![7u8; 70_000];
        let mut stream = client_frame(true, opcode::BINARY, b"abc");
        stream.extend(client_frame(true, opcode::PING, b"p"));
        stream.extend(client_frame(false, opcode::BINARY, b"he"));
        stream.extend(client_frame(true, opcode::PONG, b""));
        stream.extend(client_frame(true, opcode::CONTINUATION, b"llo"));
        stream.extend(client_frame(true, opcode::BINARY, &big));
        stream.extend(client_frame(true, opcode::CLOSE, &1000u16.to_be_bytes()));
        let expected = vec![
            WsEvent::Binary(b"abc".to_vec()),
            WsEvent::Ping(b"p".to_vec()),
            WsEvent::Pong,
            WsEvent::Binary(b"hello".to_vec()),
            WsEvent::Binary(big.clone()),
            WsEvent::Close(Some(1000)),
        ];
        for split in [1usize, 3, 7, 4096, stream.len()] {
            let mut dec = FrameDecoder::new(1 << 20);
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(split) {
                buf.extend_from_slice(chunk);
                while let Some(ev) = dec.decode(&mut buf).unwrap() {
                    got.push(ev);
                }
            }
            assert_eq!(got, expected, "split {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn protocol_errors_and_size_cap() {
        let mut dec = FrameDecoder::new(10);
        let mut unmasked = Vec::new();
        encode_frame(opcode::BINARY, b"x", &mut unmasked);
        assert!(matches!(
            dec.decode(&mut unmasked),
            Err(WsError::Protocol(_))
        ));
        let mut big = client_frame(true, opcode::BINARY, &[0; 11]);
        big.truncate(4);
        assert_eq!(FrameDecoder::new(10).decode(&mut big), Err(WsError::TooBig));
        let mut parts = client_frame(false, opcode::BINARY, &[0; 6]);
        parts.extend(client_frame(true, opcode::CONTINUATION, &[0; 6]));
        assert_eq!(
            FrameDecoder::new(10).decode(&mut parts),
            Err(WsError::TooBig)
        );
        let mut orphan = client_frame(true, opcode::CONTINUATION, b"x");
        assert!(FrameDecoder::new(10).decode(&mut orphan).is_err());
        let mut rsv = client_frame(true, opcode::BINARY, b"x");
        rsv[0] |= 0x40;
        assert!(FrameDecoder::new(10).decode(&mut rsv).is_err());
        let mut long_ping = client_frame(true, opcode::PING, &[0; 126]);
        assert!(FrameDecoder::new(1000).decode(&mut long_ping).is_err());
        assert_eq!(WsError::TooBig.close_code(), 1009);
    }

    #[test]
    fn server_frames_use_the_three_length_forms() {
        for (len, header) in [(5usize, 2usize), (300, 4), (70_000, 10)] {
            let mut out = Vec::new();
            encode_frame(opcode::BINARY, &vec![1; len], &mut out);
            assert_eq!(out.len(), header + len);
            assert_eq!(out[0], 0x82);
        }
    }
}
