//! The events of an ack body, decoded the way Fleet Server decodes them (fleet-protocol.md §4.1).
//! Go keeps each event as raw JSON and later fills a `GenericEvent`, `DiagnosticsEvent`,
//! `InputEvent` or `UpgradeEvent` from it, ignoring the decode error. So any JSON value is an
//! acceptable event; a member of the wrong type keeps its zero value; `null` leaves a string
//! zero and a pointer nil; and a timestamp that does not parse stops the decoding there: it and
//! every member after it (in the order of the text) keep their zero values.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::model::time::GoTime;

/// One event as sent: its members in text order (empty when the event is not an object).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEvent(Vec<(String, Value)>);

/// Which Go struct the event is read into (by the action's stored type).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum View {
    /// `GenericEvent`: the ids, `error`, `timestamp`.
    Generic,
    /// `DiagnosticsEvent`: generic plus `data`.
    Diagnostics,
    /// `InputEvent`: generic plus the input-action members.
    Input,
    /// `UpgradeEvent`: generic plus `payload`.
    Upgrade,
}

/// An event read through one [`View`].
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub agent_id: String,
    pub action_id: String,
    /// `None` when absent or `null`; `Some("")` counts as an error, as in Go.
    pub error: Option<String>,
    pub timestamp: GoTime,
    /// Upgrade retry information (`UpgradeEvent.payload`).
    pub payload: Option<Value>,
    /// Diagnostics data: `{"upload_id": ...}` as Go re-marshals it, `None` for absent/null.
    pub data: Option<Value>,
    pub action_input_type: String,
    /// Raw `action_data` (`Some(Null)` when sent as `null`, as a Go `json.RawMessage` keeps it).
    pub action_data: Option<Value>,
    /// Raw `action_response`, like `action_data`.
    pub action_response: Option<Value>,
    pub started_at: GoTime,
    pub completed_at: GoTime,
}

impl RawEvent {
    /// Fills the view's Go struct from the members, in order, with Go's rules.
    pub fn view(&self, view: View) -> Event {
        let mut event = Event {
            timestamp: GoTime::ZERO,
            started_at: GoTime::ZERO,
            completed_at: GoTime::ZERO,
            ..Event::default()
        };
        for (key, value) in &self.0 {
            // Go matches member names case-insensitively.
            let name = key.to_ascii_lowercase();
            let time = |slot: &mut GoTime| -> bool {
                match value {
                    Value::Null => true,
                    Value::String(s) => match GoTime::parse(s) {
                        Ok(t) => {
                            *slot = t;
                            true
                        }
                        Err(_) => false,
                    },
                    _ => false,
                }
            };
            let string = |slot: &mut String| {
                if let Value::String(s) = value {
                    slot.clone_from(s);
                }
            };
            let decoded = match (name.as_str(), view) {
                ("agent_id", _) => {
                    string(&mut event.agent_id);
                    true
                }
                ("action_id", _) => {
                    string(&mut event.action_id);
                    true
                }
                ("error", _) => {
                    match value {
                        Value::Null => event.error = None,
                        Value::String(s) => event.error = Some(s.clone()),
                        _ => {}
                    }
                    true
                }
                ("timestamp", _) => time(&mut event.timestamp),
                ("payload", View::Upgrade) => {
                    match value {
                        Value::Null => event.payload = None,
                        Value::Object(_) => event.payload = Some(value.clone()),
                        _ => {}
                    }
                    true
                }
                ("data", View::Diagnostics) => {
                    match value {
                        Value::Null => event.data = None,
                        Value::Object(members) => {
                            let upload_id = members
                                .iter()
                                .filter(|(k, _)| k.eq_ignore_ascii_case("upload_id"))
                                .filter_map(|(_, v)| v.as_str())
                                .next_back()
                                .unwrap_or_default();
                            event.data = Some(serde_json::json!({ "upload_id": upload_id }));
                        }
                        _ => {}
                    }
                    true
                }
                ("action_input_type", View::Input) => {
                    string(&mut event.action_input_type);
                    true
                }
                ("action_data", View::Input) => {
                    event.action_data = Some(value.clone());
                    true
                }
                ("action_response", View::Input) => {
                    event.action_response = Some(value.clone());
                    true
                }
                ("started_at", View::Input) => time(&mut event.started_at),
                ("completed_at", View::Input) => time(&mut event.completed_at),
                _ => true,
            };
            if !decoded {
                break;
            }
        }
        event
    }
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawEventVisitor)
    }
}

/// Accepts any JSON value; only an object has members.
struct RawEventVisitor;

impl<'de> Visitor<'de> for RawEventVisitor {
    type Value = RawEvent;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEvent, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            members.push((key, value));
        }
        Ok(RawEvent(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawEvent, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawEvent::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<RawEvent, E> {
        Ok(RawEvent::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<RawEvent, E> {
        Ok(RawEvent::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<RawEvent, E> {
        Ok(RawEvent::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<RawEvent, E> {
        Ok(RawEvent::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<RawEvent, E> {
        Ok(RawEvent::default())
    }

    fn visit_unit<E>(self) -> Result<RawEvent, E> {
        Ok(RawEvent::default())
    }

    fn visit_none<E>(self) -> Result<RawEvent, E> {
        Ok(RawEvent::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawEvent {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn any_json_value_is_an_event_and_nulls_are_zero() {
        for text in ["null", "1", "\"x\"", "[1,2]", "true", "{}"] {
            let e = raw(text).view(View::Input);
            assert_eq!(
                (e.action_id.as_str(), e.error.as_deref()),
                ("", None),
                "{text}"
            );
            assert_eq!(e.timestamp, GoTime::ZERO);
        }
        let e = raw(
            r#"{"action_id":null,"agent_id":null,"error":null,"timestamp":null,"message":null,
                "data":null,"payload":null,"action_input_type":null,"action_data":null,
                "action_response":null,"started_at":null,"completed_at":null}"#,
        );
        let input = e.view(View::Input);
        assert_eq!(input.error, None);
        assert_eq!(input.action_data, Some(Value::Null));
        assert_eq!(input.action_response, Some(Value::Null));
        assert_eq!(input.started_at, GoTime::ZERO);
        assert_eq!(e.view(View::Diagnostics).data, None);
        assert_eq!(e.view(View::Upgrade).payload, None);
    }

    #[test]
    fn wrong_types_stay_zero_and_a_bad_time_stops_the_decoding() {
        let e = raw(
            r#"{"action_id":5,"agent_id":"a","error":"","timestamp":"2026-05-01T12:00:00+02:00"}"#,
        )
        .view(View::Generic);
        assert_eq!(e.action_id, "");
        assert_eq!(e.agent_id, "a");
        assert_eq!(e.error.as_deref(), Some(""));
        assert_eq!(e.timestamp.rfc3339_nano(), "2026-05-01T12:00:00+02:00");
        // Go's decoder returns at the bad timestamp: members after it are never read.
        let e =
            raw(r#"{"action_id":"x","timestamp":"yesterday","error":"boom"}"#).view(View::Generic);
        assert_eq!((e.action_id.as_str(), e.error), ("x", None));
        assert_eq!(e.timestamp, GoTime::ZERO);
        // A bad started_at only matters to the InputEvent view.
        let text = r#"{"action_id":"x","started_at":"soon","timestamp":"2026-05-01T10:00:00Z"}"#;
        assert_eq!(
            raw(text).view(View::Generic).timestamp.rfc3339_nano(),
            "2026-05-01T10:00:00Z"
        );
        assert_eq!(raw(text).view(View::Input).timestamp, GoTime::ZERO);
    }

    #[test]
    fn member_names_match_case_insensitively_and_data_keeps_only_upload_id() {
        let e =
            raw(r#"{"Action_ID":"x","DATA":{"upload_id":"u","other":1}}"#).view(View::Diagnostics);
        assert_eq!(e.action_id, "x");
        assert_eq!(e.data, Some(serde_json::json!({"upload_id": "u"})));
    }
}
