//! A test client that behaves like the real Elastic Agent (agent-client.md §1, §8): its fixed
//! headers, `Content-Length` bodies, gzip-compressed checkin bodies, an `ack_token` persisted as
//! soon as it is received, the policy id and revision reported back after a POLICY_CHANGE, and
//! ack events in the agent's exact message template.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::{Client, HttpResponse};

pub const VERSION: &str = "9.2.1";

/// One simulated agent.
pub struct Agent {
    pub addr: SocketAddr,
    pub tls: Arc<rustls::ClientConfig>,
    pub id: String,
    pub access_key: String,
    pub ack_token: String,
    pub policy_id: Option<String>,
    pub revision: Option<i64>,
    pub conn: Option<Client>,
}

fn request_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("01JTEST{:019}", N.fetch_add(1, Ordering::Relaxed))
}

/// Builds a request exactly as the agent's fleetapi client does.
pub fn raw_request(
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
    gzip: bool,
    user_agent: &str,
) -> Vec<u8> {
    let body = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body).unwrap();
        enc.finish().unwrap()
    } else {
        body.to_vec()
    };
    let mut head = format!(
        "{method} {path}? HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\nElastic-Api-Version: 2023-06-01\r\nContent-Type: application/json\r\nAccept: application/json\r\nKbn-Xsrf: 1\r\nX-Request-Id: {}\r\nAccept-Encoding: gzip\r\nContent-Length: {}\r\n",
        request_id(),
        body.len()
    );
    if let Some(auth) = auth {
        head.push_str(&format!("Authorization: ApiKey {auth}\r\n"));
    }
    if gzip {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The response body, gunzipped when the server compressed it.
pub fn body_json(resp: &HttpResponse) -> Value {
    let bytes = if resp.header("content-encoding") == Some("gzip") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(resp.body.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        resp.body.clone()
    };
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&bytes)))
}

pub fn enroll_body(tags: &[&str]) -> Value {
    json!({"type": "PERMANENT", "id": "", "replace_token": "", "metadata": {
        "local": {"elastic": {"agent": {"id": "", "version": VERSION, "snapshot": false, "upgradeable": true}},
                  "host": {"hostname": "gw-01", "name": "gw-01", "architecture": "aarch64"},
                  "os": {"family": "debian", "platform": "ubuntu", "version": "24.04"}},
        "user_provided": {}, "tags": tags}})
}

/// Sends one request on a fresh connection.
pub fn once(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, raw: &[u8]) -> HttpResponse {
    let mut c = Client::tls(addr, tls).unwrap();
    c.request(raw).unwrap()
}

impl Agent {
    /// Enrolls with `token` (base64 `id:key`); panics unless the reply is what the agent needs.
    pub fn enroll(
        addr: SocketAddr,
        tls: Arc<rustls::ClientConfig>,
        token: &str,
        tags: &[&str],
    ) -> (Agent, Value) {
        let body = serde_json::to_vec(&enroll_body(tags)).unwrap();
        let raw = raw_request(
            "POST",
            "/api/fleet/agents/enroll",
            Some(token),
            &body,
            false,
            &format!("Elastic Agent v{VERSION}"),
        );
        let resp = once(addr, Arc::clone(&tls), &raw);
        assert_eq!(
            resp.status,
            200,
            "enroll failed: {:?}",
            String::from_utf8_lossy(&resp.body)
        );
        let json = body_json(&resp);
        let item = &json["item"];
        assert_eq!(item["type"], "PERMANENT");
        assert!(!item["id"].as_str().unwrap().is_empty());
        let agent = Agent {
            addr,
            tls,
            id: item["id"].as_str().unwrap().to_owned(),
            access_key: item["access_api_key"].as_str().unwrap().to_owned(),
            ack_token: String::new(),
            policy_id: None,
            revision: None,
            conn: None,
        };
        (agent, json)
    }

    fn connection(&mut self) -> &mut Client {
        if self.conn.is_none() {
            self.conn = Some(Client::tls(self.addr, Arc::clone(&self.tls)).unwrap());
        }
        self.conn.as_mut().unwrap()
    }

    /// Sends a raw request on the agent's keep-alive connection (reconnecting once if the server
    /// closed it while idle).
    pub fn send(&mut self, raw: &[u8]) -> HttpResponse {
        match self.connection().request(raw) {
            Ok(resp) => resp,
            Err(_) => {
                self.conn = None;
                self.connection().request(raw).unwrap()
            }
        }
    }

    /// The checkin body the agent would send now.
    pub fn checkin_body(&self, status: &str) -> Value {
        let mut body = json!({"status": status, "message": "Running", "components": [], "upgrade": {},
            "local_metadata": {"elastic": {"agent": {"id": self.id, "version": VERSION}}, "host": {"hostname": "gw-01"}}});
        if !self.ack_token.is_empty() {
            body["ack_token"] = json!(self.ack_token);
        }
        if let (Some(p), Some(r)) = (&self.policy_id, self.revision) {
            body["agent_policy_id"] = json!(p);
            body["policy_revision_idx"] = json!(r);
        }
        body
    }

    /// One checkin with a gzip body; persists a non-empty ack_token at once.
    pub fn checkin(&mut self) -> (HttpResponse, Value) {
        self.checkin_with(json!({}))
    }

    /// One checkin whose body is the agent's usual one with the members of `over` replacing
    /// its own (`status`, `message`, `components`, `upgrade_details`, ...).
    pub fn checkin_with(&mut self, over: Value) -> (HttpResponse, Value) {
        let mut body = self.checkin_body("online");
        for (k, v) in over.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let body = serde_json::to_vec(&body).unwrap();
        let raw = raw_request(
            "POST",
            &format!("/api/fleet/agents/{}/checkin", self.id),
            Some(&self.access_key.clone()),
            &body,
            true,
            &format!("Elastic Agent v{VERSION}"),
        );
        let resp = self.send(&raw);
        let json = if resp.status == 200 {
            body_json(&resp)
        } else {
            Value::Null
        };
        if let Some(token) = json
            .get("ack_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.ack_token = token.to_owned();
        }
        (resp, json)
    }

    /// Applies a POLICY_CHANGE: remembers the policy id and revision it will report.
    pub fn apply_policy(&mut self, action: &Value) {
        let policy = &action["data"]["policy"];
        self.policy_id = Some(policy["id"].as_str().unwrap().to_owned());
        self.revision = Some(policy["revision"].as_i64().unwrap());
    }

    /// Acks actions `(id, type)` with the agent's message template.
    pub fn ack(&mut self, actions: &[(&str, &str)]) -> (HttpResponse, Value) {
        let events: Vec<Value> = actions
            .iter()
            .map(|(id, kind)| json!({"type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED", "agent_id": self.id, "action_id": id,
                "message": format!("Action \"{id}\" of type \"{kind}\" acknowledged."), "timestamp": "2026-08-21T19:00:01.734912345Z"}))
            .collect();
        self.ack_events(events)
    }

    /// Reports an action as failed, as the agent does (`subtype: FAILED`, `error`).
    pub fn ack_failed(&mut self, id: &str, kind: &str, error: &str) -> (HttpResponse, Value) {
        self.ack_events(vec![json!({"type": "ACTION_RESULT", "subtype": "FAILED", "agent_id": self.id, "action_id": id,
            "message": format!("Action \"{id}\" of type \"{kind}\" failed."), "error": error,
            "timestamp": "2026-08-21T19:00:02.000000000Z"})])
    }

    fn ack_events(&mut self, events: Vec<Value>) -> (HttpResponse, Value) {
        let body = serde_json::to_vec(&json!({"events": events})).unwrap();
        let raw = raw_request(
            "POST",
            &format!("/api/fleet/agents/{}/acks", self.id),
            Some(&self.access_key.clone()),
            &body,
            false,
            &format!("Elastic Agent v{VERSION}"),
        );
        let resp = self.send(&raw);
        let json = body_json(&resp);
        (resp, json)
    }

    /// The authenticated status probe the agent makes before switching hosts (new connection).
    pub fn status_probe(&self) -> HttpResponse {
        let raw = raw_request(
            "GET",
            "/api/status",
            Some(&self.access_key),
            b"",
            false,
            &format!("Elastic Agent v{VERSION}"),
        );
        once(self.addr, Arc::clone(&self.tls), &raw)
    }
}
