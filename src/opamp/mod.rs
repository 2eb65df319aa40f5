//! OpAMP for OpenTelemetry collectors (fleet-protocol.md §8 "OpAMP"; the OpenTelemetry OpAMP
//! specification): the protobuf messages (`proto`), what a message becomes in `.fleet-agents`
//! (`document`, `redact`), and the wire helpers shared by both transports (instance uids, the
//! one-byte WebSocket message header). Sans-IO: no clock, no sockets. The store part runs in
//! `backend::ops::opamp`; the HTTP and WebSocket transports live in `api` / `http::websocket`
//! and the event loop.

pub mod document;
pub mod proto;
pub mod redact;
pub mod remote_config;

use prost::Message;

/// Why bytes are not an OpAMP message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a valid protobuf `AgentToServer`.
    #[error("cannot decode AgentToServer: {0}")]
    Protobuf(String),
    /// A WebSocket message whose header is not the varint 0 of the specification.
    #[error("unsupported OpAMP WebSocket message header")]
    Header,
}

/// Decodes a plain-HTTP request body.
pub fn decode(bytes: &[u8]) -> Result<proto::AgentToServer, DecodeError> {
    proto::AgentToServer::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Decodes a WebSocket binary message: a varint header that must be 0, then the protobuf.
pub fn decode_ws(bytes: &[u8]) -> Result<proto::AgentToServer, DecodeError> {
    let mut rest = bytes;
    let header = prost::encoding::decode_varint(&mut rest).map_err(|_| DecodeError::Header)?;
    if header != 0 {
        return Err(DecodeError::Header);
    }
    decode(rest)
}

/// Encodes a `ServerToAgent` for a WebSocket binary message (header 0, then the protobuf).
pub fn encode_ws(message: &proto::ServerToAgent) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.encoded_len());
    out.push(0);
    message.encode_raw(&mut out);
    out
}

/// The canonical text of a 16-byte instance uid; `None` when it is not 16 bytes (Go's
/// `uuid.FromBytes` accepts any 16 bytes).
pub fn uid_text(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The 16 bytes of a canonical uuid text.
pub fn uid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then `random`.
pub fn uuid_v7(unix_millis: u64, random: [u8; 10]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&random);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_round_trip_and_reject_other_lengths() {
        let text = uid_text(&[0xab; 16]).unwrap();
        assert_eq!(text, "abababab-abab-abab-abab-abababababab");
        assert_eq!(uid_bytes(&text), Some([0xab; 16]));
        assert_eq!(uid_text(&[1; 15]), None);
        assert_eq!(uid_text(&[1; 17]), None);
    }

    #[test]
    fn uuid_v7_carries_time_version_and_variant() {
        let u = uuid_v7(0x0123_4567_89ab, [0xff; 10]);
        assert_eq!(&u[..6], &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab]);
        assert_eq!(u[6] >> 4, 7);
        assert_eq!(u[8] >> 6, 0b10);
    }

    #[test]
    fn websocket_header_must_be_zero() {
        let msg = proto::AgentToServer {
            instance_uid: vec![7; 16],
            sequence_num: 3,
            ..Default::default()
        };
        let mut framed = vec![0u8];
        framed.extend(msg.encode_to_vec());
        assert_eq!(decode_ws(&framed), Ok(msg.clone()));
        framed[0] = 1;
        assert_eq!(decode_ws(&framed), Err(DecodeError::Header));
        assert_eq!(decode_ws(&[]), Err(DecodeError::Header));
        assert!(matches!(
            decode(&[0xff, 0xff]),
            Err(DecodeError::Protobuf(_))
        ));
        let reply = proto::ServerToAgent {
            instance_uid: vec![7; 16],
            ..Default::default()
        };
        let encoded = encode_ws(&reply);
        assert_eq!(encoded[0], 0);
        assert_eq!(proto::ServerToAgent::decode(&encoded[1..]).unwrap(), reply);
    }
}
