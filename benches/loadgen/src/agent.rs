//! What one simulated Elastic Agent says and how it reads the answers (agent-client.md §1, §2,
//! §8): Go's header order and canonical names, a target ending in a bare `?`, `Content-Length`
//! bodies, gzip checkin bodies, the checkin fields in the agent's order, the ack event template,
//! the enroll and checkin reply checks, and the retry backoffs. Pure functions and the agent's
//! state; the event loop in `fleet.rs` decides when.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// The agent version the simulated agents claim.
pub const VERSION: &str = "9.2.1";

/// One simulated agent's durable state (what the real agent keeps in `fleet.enc`/`state.enc`)
/// and its place in the loop.
#[derive(Default)]
pub struct Agent {
    /// Host name it reports.
    pub hostname: String,
    /// Agent id (empty until enrolled).
    pub id: String,
    /// `access_api_key` from the enroll reply.
    pub key: String,
    /// Last non-empty `ack_token` received.
    pub ack_token: String,
    /// `(policy id, revision)` of the stored POLICY_CHANGE.
    pub policy: Option<(String, i64)>,
    /// Its connections (slots in the fleet's slab), by lane: [`MAIN`] (enroll, checkin, and acks
    /// between checkins) and [`SIDE`] (an ack or status probe while a long poll is parked).
    pub conn: [Option<usize>; 2],
    /// The request in flight on each lane.
    pub inflight: [Option<InFlight>; 2],
    /// A checkin is due but another request is in flight.
    pub checkin_due: bool,
    /// Actions to ack: (action id, type).
    pub acks: Vec<(String, String)>,
    /// Acks wait for the retrier until then.
    pub ack_hold: Option<Instant>,
    /// Consecutive failures, for the backoffs.
    pub enroll_failures: u32,
    /// Consecutive checkin failures.
    pub checkin_failures: u32,
    /// Consecutive ack failures.
    pub ack_failures: u32,
    /// Enrollment stopped (401) or the phase told the agent to stop.
    pub stopped: bool,
    /// Generation of the agent's pending timer (older timers are ignored).
    pub timer_gen: u64,
    /// The compressed checkin body, rebuilt when what it reports changes.
    pub checkin_gz: Option<Vec<u8>>,
    /// When it first received the revision being rolled out.
    pub got_target: Option<Instant>,
    /// When its ack of that revision succeeded.
    pub acked_target: Option<Instant>,
    /// When it enrolled.
    pub enrolled_at: Option<Instant>,
}

/// The request an agent has in flight.
#[derive(Clone, Copy, Debug)]
pub struct InFlight {
    /// What it is.
    pub kind: crate::stats::Kind,
    /// When it was started.
    pub started: Instant,
    /// Sent on a reused keep-alive connection.
    pub reused: bool,
    /// For an ack: how many of the queued acks it carries.
    pub batch: usize,
}

/// The lane of enrolls, checkins, and acks sent between checkins.
pub const MAIN: usize = 0;
/// The lane of an ack or status probe sent while a checkin is parked on the main lane (the real
/// agent's second connection). Its connection is closed after the response.
pub const SIDE: usize = 1;

impl Agent {
    /// Whether the agent has enrolled.
    pub fn enrolled(&self) -> bool {
        !self.id.is_empty()
    }
}

/// A 26-character ULID-like request id (Crockford base32 of time and a counter).
pub fn request_id(counter: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut value: u128 = (millis << 80) | u128::from(counter);
    let mut out = [b'0'; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request exactly as the agent's Go client writes it: `Host`, `User-Agent`,
/// `Content-Length`, the other headers sorted by canonical name, `Accept-Encoding: gzip` last.
pub fn request(
    method: &str,
    path: &str,
    host: &str,
    auth: &str,
    body: &[u8],
    gzip: bool,
    counter: u64,
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path}? HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Elastic Agent v{VERSION}\r\nContent-Length: {}\r\nAccept: application/json\r\nAuthorization: ApiKey {auth}\r\n",
        body.len()
    );
    if gzip {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nElastic-Api-Version: 2023-06-01\r\nKbn-Xsrf: 1\r\nX-Request-Id: {}\r\nAccept-Encoding: gzip\r\n\r\n",
        request_id(counter)
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The ECS `local_metadata` object (agent-client.md §2.3), keys in the agent's order.
pub fn local_metadata(agent_id: &str, hostname: &str) -> String {
    format!(
        concat!(
            r#"{{"elastic":{{"agent":{{"id":{id},"version":"{v}","snapshot":false,"build.original":"{v} (build: 0123456789abcdef at 2026-08-21 19:06:21 +0000 UTC)","#,
            r#""upgradeable":true,"log_level":"info","complete":false,"unprivileged":false,"fips":false}}}},"#,
            r#""host":{{"architecture":"x86_64","hostname":{h},"name":{h},"id":"{hid}","ip":["127.0.0.1/8","10.0.0.5/24","::1/128"],"#,
            r#""mac":["02:42:ac:11:00:02"],"memory":16777216000}},"#,
            r#""os":{{"family":"debian","kernel":"6.8.0-45-generic","platform":"ubuntu","version":"24.04.1 LTS (Noble Numbat)","name":"Ubuntu","full":"Ubuntu noble(24.04.1 LTS (Noble Numbat))"}}}}"#
        ),
        id = json_str(agent_id),
        v = VERSION,
        h = json_str(hostname),
        hid = hostname.len()
    )
}

/// The enroll body (agent-client.md §1.2).
pub fn enroll_body(hostname: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"PERMANENT","id":"","replace_token":"","metadata":{{"local":{},"user_provided":{{}},"tags":null}}}}"#,
        local_metadata("", hostname)
    )
    .into_bytes()
}

/// The checkin body before compression (agent-client.md §1.3), fields in the agent's order.
pub fn checkin_json(agent: &Agent) -> String {
    let mut body = String::with_capacity(1024);
    let (status, message) = if agent.policy.is_some() {
        ("online", "Running")
    } else {
        (
            "starting",
            "Waiting for initial configuration and composable variables",
        )
    };
    body.push_str(&format!(r#"{{"status":"{status}""#));
    if !agent.ack_token.is_empty() {
        body.push_str(&format!(r#","ack_token":{}"#, json_str(&agent.ack_token)));
    }
    body.push_str(&format!(
        r#","local_metadata":{},"message":"{message}","components":[]"#,
        local_metadata(&agent.id, &agent.hostname)
    ));
    if let Some((policy, revision)) = &agent.policy {
        body.push_str(&format!(r#","agent_policy_id":{}"#, json_str(policy)));
        if *revision != 0 {
            body.push_str(&format!(r#","policy_revision_idx":{revision}"#));
        }
    }
    body.push_str(r#","upgrade":{}}"#);
    body
}

/// gzip as Go's default writer does it (level 6).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The ack body: one ACTION_RESULT/ACKNOWLEDGED event per action, keys in the agent's order.
pub fn ack_body(agent_id: &str, actions: &[(String, String)]) -> Vec<u8> {
    let timestamp = fleet_edge::model::time::rfc3339_millis(SystemTime::now());
    let events: Vec<String> = actions
        .iter()
        .map(|(id, kind)| {
            format!(
                r#"{{"action_id":{},"agent_id":{},"message":{},"subtype":"ACKNOWLEDGED","timestamp":"{timestamp}","type":"ACTION_RESULT"}}"#,
                json_str(id),
                json_str(agent_id),
                json_str(&format!("Action \"{id}\" of type \"{kind}\" acknowledged."))
            )
        })
        .collect();
    format!(r#"{{"events":[{}]}}"#, events.join(",")).into_bytes()
}

/// What the agent takes from a 200 enroll reply: `(id, access_api_key)`, or why it is refused.
pub fn parse_enroll(body: &[u8]) -> Result<(String, String), String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let item = &json["item"];
    let id = item["id"].as_str().filter(|s| !s.is_empty());
    let key = item["access_api_key"].as_str().filter(|s| !s.is_empty());
    let enrolled_at_ok = match &item["enrolled_at"] {
        Value::Null => true,
        Value::String(s) => fleet_edge::model::time::parse_rfc3339(s).is_some(),
        _ => false,
    };
    match (id, key, item["type"].as_str()) {
        (Some(id), Some(key), Some("PERMANENT")) if enrolled_at_ok => {
            Ok((id.to_owned(), key.to_owned()))
        }
        _ => Err("enroll reply lacks item.id, item.access_api_key, type PERMANENT or a valid enrolled_at".into()),
    }
}

/// One action of a checkin reply, as far as the agent looks at it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionIn {
    /// `id`.
    pub id: String,
    /// `type`.
    pub kind: String,
    /// For POLICY_CHANGE: `data.policy.id`, `data.policy.revision`, and whether the policy has
    /// `fleet.hosts` (which makes the first one trigger the status probe).
    pub policy: Option<(String, i64, bool)>,
}

/// The parts of a 200 checkin reply the agent uses: `ack_token` and the typed actions. An
/// action that fails to decode drops the whole batch (the token is still saved), like the agent.
pub fn parse_checkin(body: &[u8]) -> Result<(String, Vec<ActionIn>), String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let token = json["ack_token"].as_str().unwrap_or_default().to_owned();
    let mut actions = Vec::new();
    if let Some(list) = json["actions"].as_array() {
        for a in list {
            let (Some(id), Some(kind)) = (a["id"].as_str(), a["type"].as_str()) else {
                return Ok((token, Vec::new()));
            };
            let policy = if kind == "POLICY_CHANGE" {
                let p = &a["data"]["policy"];
                match (p["id"].as_str(), p["revision"].as_i64()) {
                    (Some(pid), Some(rev)) => Some((
                        pid.to_owned(),
                        rev,
                        p["fleet"]["hosts"]
                            .as_array()
                            .is_some_and(|h| !h.is_empty()),
                    )),
                    _ => return Ok((token, Vec::new())),
                }
            } else {
                None
            };
            actions.push(ActionIn {
                id: id.to_owned(),
                kind: kind.to_owned(),
                policy,
            });
        }
    }
    Ok((token, actions))
}

/// Action types the agent knows (anything else is logged and never acked).
pub fn is_known_type(kind: &str) -> bool {
    matches!(
        kind,
        "POLICY_CHANGE"
            | "POLICY_REASSIGN"
            | "UNENROLL"
            | "UPGRADE"
            | "SETTINGS"
            | "INPUT_ACTION"
            | "CANCEL"
            | "REQUEST_DIAGNOSTICS"
            | "MIGRATE"
            | "PRIVILEGE_LEVEL_CHANGE"
    )
}

/// An ack reply succeeded if and only if its JSON says `"action":"acks"`, whatever the status.
pub fn ack_succeeded(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v["action"] == "acks")
}

/// Equal-jitter backoff: `init·2^failures` capped at `max`, plus up to as much again at random
/// (`random` in [0, 1)): enroll 5 s → 10 min, checkin 60 s → 10 min, ack retrier 60 s → 5 min.
pub fn backoff(init: Duration, max: Duration, failures: u32, random: f64) -> Duration {
    let base = init
        .checked_mul(1u32 << failures.min(16))
        .unwrap_or(max)
        .min(max);
    base + base.mul_f64(random.clamp(0.0, 1.0))
}

/// A small, fast pseudo-random generator (xorshift64*), seeded per run.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        Rng(seed | 1)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration in [0, max).
    pub fn below(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.unit())
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkin_body_is_json_in_the_agents_order() {
        let mut agent = Agent {
            id: "a1".into(),
            hostname: "h".into(),
            ..Agent::default()
        };
        let v: Value = serde_json::from_str(&checkin_json(&agent)).unwrap();
        assert_eq!(v["status"], "starting");
        assert!(v.get("ack_token").is_none() && v.get("agent_policy_id").is_none());
        agent.policy = Some(("p".into(), 2));
        agent.ack_token = "t".into();
        let text = checkin_json(&agent);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["policy_revision_idx"], 2);
        assert_eq!(v["local_metadata"]["elastic"]["agent"]["id"], "a1");
        assert!(text.find("\"ack_token\"") < text.find("\"local_metadata\""));
        assert!(text.ends_with(r#""upgrade":{}}"#));
    }

    #[test]
    fn request_has_go_header_order_and_bare_question_mark() {
        let raw = request(
            "POST",
            "/api/fleet/agents/x/checkin",
            "h:1",
            "k",
            b"{}",
            true,
            7,
        );
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("POST /api/fleet/agents/x/checkin? HTTP/1.1\r\nHost: h:1\r\nUser-Agent: Elastic Agent v"));
        assert!(text.contains("\r\nAccept-Encoding: gzip\r\n\r\n{}"));
        assert_eq!(request_id(1).len(), 26);
    }

    #[test]
    fn replies_are_read_like_the_agent() {
        let (token, actions) = parse_checkin(br#"{"ack_token":"t","action":"checkin","actions":[{"id":"policy:p:3","type":"POLICY_CHANGE","data":{"policy":{"id":"p","revision":3}}},{"id":"x","type":"NEW_THING"}]}"#).unwrap();
        assert_eq!(token, "t");
        assert_eq!(actions[0].policy, Some(("p".into(), 3, false)));
        assert!(!is_known_type(&actions[1].kind));
        assert!(ack_succeeded(br#"{"action":"acks","items":[]}"#));
        assert!(!ack_succeeded(br#"{"statusCode":429,"error":"RateLimit"}"#));
        let v: Value =
            serde_json::from_slice(&ack_body("a", &[("i".into(), "POLICY_CHANGE".into())]))
                .unwrap();
        assert_eq!(
            v["events"][0]["message"],
            "Action \"i\" of type \"POLICY_CHANGE\" acknowledged."
        );
        assert!(parse_enroll(br#"{"item":{"id":"a","type":"PERMANENT","access_api_key":"k","enrolled_at":"2026-08-21T19:00:00Z"}}"#).is_ok());
        assert!(
            parse_enroll(br#"{"item":{"id":"a","type":"TEMPORARY","access_api_key":"k"}}"#)
                .is_err()
        );
    }

    #[test]
    fn backoffs_double_and_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(60), s(600), 0, 0.0), s(60));
        assert_eq!(backoff(s(60), s(600), 1, 0.5), s(180));
        assert_eq!(backoff(s(60), s(600), 9, 0.0), s(600));
        let mut rng = Rng::new();
        assert!((0..1000)
            .map(|_| rng.unit())
            .all(|u| (0.0..1.0).contains(&u)));
    }
}
