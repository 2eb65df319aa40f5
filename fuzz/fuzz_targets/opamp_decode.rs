//! Fuzz target `opamp_decode`: the OpAMP decoding path from bytes to the stored document.
//! Byte 0 picks the mode and a chunk size; the rest is the input:
//! * mode 0: a stream of client WebSocket frames fed in chunks to the frame decoder; every binary
//!   message goes through the OpAMP header and protobuf decoding and the document builders;
//! * mode 1: a plain-HTTP `AgentToServer` body (and the same bytes as a WebSocket message);
//! * mode 2: an effective-configuration YAML body (parse, redact, JSON).
//!
//! Must never panic; decoded messages must re-encode and decode to themselves.
#![no_main]

use std::collections::BTreeMap;

use fleet_edge::http::websocket::{FrameDecoder, WsEvent};
use fleet_edge::opamp::document::{checkin_state, effective_config_json, enroll_document};
use fleet_edge::opamp::proto::{AgentConfigFile, AgentConfigMap, AgentToServer, EffectiveConfig};
use fleet_edge::opamp::{decode, decode_ws};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn documents(message: &AgentToServer) {
    let again = AgentToServer::decode(message.encode_to_vec().as_slice());
    assert_eq!(again.as_ref().ok(), Some(message));
    let _ = checkin_state(message, "2026-01-01T00:00:00Z", false);
    let _ = enroll_document(
        "01890000-0000-7000-8000-000000000000",
        message.agent_description.as_ref(),
        "policy",
        &[],
        "2026-01-01T00:00:00Z",
    );
}

fuzz_target!(|data: &[u8]| {
    let [ctl, input @ ..] = data else {
        return;
    };
    match ctl % 3 {
        0 => {
            let chunk = usize::from(ctl / 3).max(1);
            let mut decoder = FrameDecoder::new(64 * 1024);
            let mut buf = Vec::new();
            for part in input.chunks(chunk) {
                buf.extend_from_slice(part);
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(WsEvent::Binary(message))) => {
                            assert!(message.len() <= 64 * 1024);
                            if let Ok(m) = decode_ws(&message) {
                                documents(&m);
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
        }
        1 => {
            if let Ok(m) = decode(input) {
                documents(&m);
            }
            if let Ok(m) = decode_ws(input) {
                documents(&m);
            }
        }
        _ => {
            let mut files = BTreeMap::new();
            files.insert(
                String::new(),
                AgentConfigFile {
                    body: input.to_vec(),
                    content_type: "text/yaml".into(),
                },
            );
            let config = EffectiveConfig {
                config_map: Some(AgentConfigMap { config_map: files }),
            };
            let _ = effective_config_json(&config);
        }
    }
});
