//! Reading an [`Agent`] document by hand instead of serde's derived reader (which, for a struct
//! with a flattened map, buffers the whole document first): known names go to their fields, any
//! other member to `other`, exactly as the derived reader did (missing members take their
//! defaults, a repeated known member is an error, a repeated unknown one keeps the last value;
//! `id` is not a member of the source and lands in `other` like any unknown name). A full read
//! costs what the derived one did (19.9 vs 20.2 µs for a 1.9 KB document, `cargo bench -p
//! loadgen --bench ack`); what it adds is the partial read below (5.1 µs for an ack).
//!
//! [`Agent::from_source_without`] reads a part of the document for a request that needs no
//! more: the members it names (and, if asked, the members this server does not interpret) are
//! skipped over without being built, which is most of an agent's bytes (`local_metadata`,
//! `components`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, Visitor,
};
use serde_json::Value;

use super::agent::Agent;

/// A member name, borrowed from the input when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// What a read leaves out.
#[derive(Clone, Copy, Default)]
struct Skip {
    /// Members skipped over.
    members: &'static [&'static str],
    /// Whether members this server does not interpret are skipped too (`other` stays empty).
    other: bool,
}

struct AgentVisitor(Skip);

/// The members of [`Agent`] by their names in the source, in declaration order: the field and
/// its name. `id` is not one (it is the document's `_id`).
macro_rules! members {
    ($map:ident, $agent:ident, $key:ident, $skip:expr; $($name:literal => $field:ident),* $(,)?) => {{
        let mut seen = [false; members!(@count $($name)*)];
        while let Some(Key($key)) = $map.next_key::<Key<'de>>()? {
            if $skip.members.contains(&$key.as_ref()) {
                $map.next_value::<IgnoredAny>()?;
                continue;
            }
            let mut index = 0;
            $(
                if $key == $name {
                    if std::mem::replace(&mut seen[index], true) {
                        return Err(A::Error::duplicate_field($name));
                    }
                    $agent.$field = $map.next_value()?;
                    continue;
                }
                index += 1;
            )*
            let _ = index;
            if $skip.other {
                $map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value: Value = $map.next_value()?;
            $agent.other.insert($key.into_owned(), value);
        }
    }};
    (@count $($name:literal)*) => { 0 $(+ members!(@one $name))* };
    (@one $name:literal) => { 1 };
}

impl<'de> Visitor<'de> for AgentVisitor {
    type Value = Agent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an agent document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Agent, A::Error> {
        let mut agent = Agent::default();
        members!(map, agent, key, self.0;
            "active" => active,
            "access_api_key_id" => access_api_key_id,
            "action_seq_no" => action_seq_no,
            "agent" => agent,
            "type" => agent_type,
            "enrolled_at" => enrolled_at,
            "enrollment_id" => enrollment_id,
            "local_metadata" => local_metadata,
            "namespaces" => namespaces,
            "policy_id" => policy_id,
            "policy_base_id" => policy_base_id,
            "policy_revision_idx" => policy_revision_idx,
            "agent_policy_id" => agent_policy_id,
            "replace_token" => replace_token,
            "tags" => tags,
            "outputs" => outputs,
            "last_checkin" => last_checkin,
            "last_checkin_status" => last_checkin_status,
            "last_checkin_message" => last_checkin_message,
            "components" => components,
            "unenrolled_at" => unenrolled_at,
            "upgrade_details" => upgrade_details,
            "audit_unenrolled_reason" => audit_unenrolled_reason,
            "user_provided_metadata" => user_provided_metadata,
        );
        Ok(agent)
    }
}

impl<'de> Deserialize<'de> for Agent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(AgentVisitor(Skip::default()))
    }
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = Agent;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Agent, D::Error> {
        d.deserialize_map(AgentVisitor(self))
    }
}

impl Agent {
    /// Reads a stored source (JSON) leaving out the members named in `members`, and the members
    /// this server does not interpret unless `keep_other`: they are checked to be JSON and
    /// skipped, not built. The agent read is for a request that needs none of them; it must
    /// never be written back whole.
    pub fn from_source_without(
        bytes: &[u8],
        members: &'static [&'static str],
        keep_other: bool,
    ) -> serde_json::Result<Agent> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let agent = Skip {
            members,
            other: !keep_other,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(agent)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use serde_json::json;

    use super::super::agent::{AgentInfo, OutputKey, RetiredKey};
    use super::*;

    /// Every member set to something other than its default.
    fn full() -> Agent {
        let mut other = serde_json::Map::new();
        other.insert("kibana_member".into(), json!({"x": [1, 2]}));
        other.insert("id".into(), json!("a source id is just a member"));
        Agent {
            id: String::new(),
            active: true,
            access_api_key_id: "k".into(),
            action_seq_no: Some(vec![7]),
            agent: Some(AgentInfo {
                id: "a".into(),
                version: "9.2.1".into(),
                kind: "collector".into(),
            }),
            agent_type: "PERMANENT".into(),
            enrolled_at: "2026-12-03T10:00:00Z".into(),
            enrollment_id: "e".into(),
            local_metadata: Some(json!({"host": {"name": "h"}})),
            namespaces: vec!["default".into()],
            policy_id: "p".into(),
            policy_base_id: "pb".into(),
            policy_revision_idx: 3,
            agent_policy_id: "ap".into(),
            replace_token: "rt".into(),
            tags: vec!["t".into()],
            outputs: BTreeMap::from([(
                "default".into(),
                OutputKey {
                    api_key: "i:s".into(),
                    api_key_id: "i".into(),
                    permissions_hash: "h".into(),
                    output_type: "elasticsearch".into(),
                    remote_config_hash: "r".into(),
                    to_retire_api_key_ids: vec![RetiredKey {
                        id: "old".into(),
                        ..RetiredKey::default()
                    }],
                },
            )]),
            last_checkin: "2026-12-03T10:00:01Z".into(),
            last_checkin_status: "online".into(),
            last_checkin_message: "Running".into(),
            components: Some(json!([{"id": "c"}])),
            unenrolled_at: "u".into(),
            upgrade_details: Some(json!({"state": "UPG_REQUESTED"})),
            audit_unenrolled_reason: "uninstall".into(),
            user_provided_metadata: Some(json!({"team": "x"})),
            other,
        }
    }

    #[test]
    fn every_member_reads_into_its_field_from_bytes_and_from_a_value() {
        let agent = full();
        let value = serde_json::to_value(&agent).unwrap();
        assert_eq!(
            value.as_object().unwrap().len(),
            26,
            "every field is written: a new field needs its name in `members!`"
        );
        let bytes = serde_json::to_vec(&agent).unwrap();
        // A member missing from the reader's list would land in `other` and fail these.
        assert_eq!(serde_json::from_slice::<Agent>(&bytes).unwrap(), agent);
        assert_eq!(serde_json::from_value::<Agent>(value).unwrap(), agent);
    }

    #[test]
    fn a_read_without_members_leaves_them_out_and_reads_the_rest() {
        let agent = full();
        let bytes = serde_json::to_vec(&agent).unwrap();
        let lean = Agent::from_source_without(
            &bytes,
            &["local_metadata", "components", "last_checkin_message"],
            false,
        )
        .unwrap();
        let expected = Agent {
            local_metadata: None,
            components: None,
            last_checkin_message: String::new(),
            other: serde_json::Map::new(),
            ..agent.clone()
        };
        assert_eq!(lean, expected);
        let kept = Agent::from_source_without(&bytes, &[], true).unwrap();
        assert_eq!(kept, agent);
        // Skipped members must still be JSON, and nothing may follow the document.
        assert!(
            Agent::from_source_without(br#"{"components":[1,}"#, &["components"], false).is_err()
        );
        assert!(Agent::from_source_without(br#"{} x"#, &[], true).is_err());
    }

    #[test]
    fn defaults_duplicates_nulls_and_wrong_shapes_as_the_derived_reader() {
        let empty: Agent = serde_json::from_slice(b"{}").unwrap();
        assert_eq!(empty, Agent::default());
        let nulls: Agent =
            serde_json::from_slice(br#"{"local_metadata":null,"agent":null,"components":null}"#)
                .unwrap();
        assert_eq!(nulls, Agent::default());
        let err = serde_json::from_slice::<Agent>(br#"{"active":true,"active":false}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate field `active`"), "{err}");
        let last: Agent = serde_json::from_slice(br#"{"x":1,"x":2}"#).unwrap();
        assert_eq!(last.other["x"], 2);
        assert!(serde_json::from_slice::<Agent>(br#"{"active":"yes"}"#).is_err());
        assert!(serde_json::from_slice::<Agent>(br#"{"policy_id":null}"#).is_err());
        assert!(serde_json::from_slice::<Agent>(b"[]").is_err());
        // Escaped names are names like any other.
        let escaped: Agent = serde_json::from_slice(br#"{"policy\u005fid":"p"}"#).unwrap();
        assert_eq!(escaped.policy_id, "p");
    }
}
