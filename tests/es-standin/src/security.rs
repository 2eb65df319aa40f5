//! Security state and authentication: native users (basic auth; the configured superuser),
//! service-account tokens for `elastic/fleet-server` (file tokens from the command line and index
//! tokens created through the API; `Bearer` auth), API keys (`ApiKey` auth with expiry and
//! invalidation), the principal model and a privilege check with ES's 401/403 bodies. The REST
//! handlers of the security API live in `api_security.rs`.

use crate::datemath;
use crate::error::{EsError, EsResult};
use crate::util;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The only service account modelled.
pub const FLEET_SERVICE: &str = "elastic/fleet-server";

/// A native or reserved user.
#[derive(Debug, Clone)]
pub struct User {
    /// Password.
    pub password: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Metadata.
    pub metadata: Value,
    /// Enabled.
    pub enabled: bool,
    /// Realm (`reserved` for the configured superuser, `default_native` otherwise).
    pub realm: &'static str,
}

/// A service token.
#[derive(Debug, Clone)]
pub struct ServiceToken {
    /// Token secret.
    pub secret: String,
    /// `file` (command line) or `index` (API).
    pub source: &'static str,
}

/// An API key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Secret.
    pub secret: String,
    /// Creation (epoch ms).
    pub creation: i64,
    /// Expiration (epoch ms).
    pub expiration: Option<i64>,
    /// Invalidation time when invalidated.
    pub invalidated: Option<i64>,
    /// Owner username.
    pub owner: String,
    /// Owner realm name.
    pub realm: String,
    /// Owner realm type.
    pub realm_type: String,
    /// Metadata.
    pub metadata: Value,
    /// Normalized role descriptors.
    pub role_descriptors: Value,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A user.
    User {
        /// Username.
        name: String,
    },
    /// The fleet-server service account.
    Service {
        /// Token name.
        token: String,
        /// Token source.
        source: &'static str,
    },
    /// An API key.
    ApiKey {
        /// Key id.
        id: String,
    },
}

/// Security state.
#[derive(Debug, Default)]
pub struct Security {
    /// Users by name.
    pub users: BTreeMap<String, User>,
    /// Service tokens by name.
    pub tokens: BTreeMap<String, ServiceToken>,
    /// API keys by id.
    pub api_keys: BTreeMap<String, ApiKey>,
}

/// Encodes a service token value (`AAEAA...`): `00 01 00 01` + `ns/svc/name:secret`, no padding.
pub fn encode_service_token(name: &str, secret: &str) -> String {
    let mut b = vec![0u8, 1, 0, 1];
    b.extend_from_slice(format!("{FLEET_SERVICE}/{name}:{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
}

/// Decodes a service token value into (name, secret).
pub fn decode_service_token(v: &str) -> Option<(String, String)> {
    let b = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(v.trim_end_matches('='))
        .ok()?;
    if b.len() < 5 || b[..4] != [0, 1, 0, 1] {
        return None;
    }
    let s = String::from_utf8(b[4..].to_vec()).ok()?;
    let (full, secret) = s.split_once(':')?;
    let parts: Vec<&str> = full.split('/').collect();
    if parts.len() != 3 || format!("{}/{}", parts[0], parts[1]) != FLEET_SERVICE {
        return None;
    }
    Some((parts[2].to_string(), secret.to_string()))
}

/// Normalizes a role descriptor as ES returns it from `GET /_security/api_key`.
pub fn normalize_role(rd: &Value) -> Value {
    let arr = |k: &str| {
        rd.get(k)
            .cloned()
            .filter(Value::is_array)
            .unwrap_or_else(|| json!([]))
    };
    let indices: Vec<Value> = arr("indices")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut i| {
            if let Some(n) = i.get("names").and_then(Value::as_str).map(String::from) {
                i["names"] = json!([n]);
            }
            if i.get("allow_restricted_indices").is_none() {
                i["allow_restricted_indices"] = json!(false);
            }
            i
        })
        .collect();
    json!({
        "cluster": arr("cluster"),
        "indices": indices,
        "applications": arr("applications"),
        "run_as": arr("run_as"),
        "metadata": rd.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "transient_metadata": {"enabled": true},
    })
}

/// Normalizes a role descriptor map.
pub fn normalize_roles(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Object(m)) => Value::Object(
            m.iter()
                .map(|(k, rd)| (k.clone(), normalize_role(rd)))
                .collect(),
        ),
        _ => json!({}),
    }
}

impl Security {
    /// A state with the superuser and the initial file tokens.
    pub fn new(superuser: (&str, &str), file_tokens: &[(String, String)]) -> Security {
        let mut s = Security::default();
        s.users.insert(
            superuser.0.to_string(),
            User {
                password: superuser.1.to_string(),
                roles: vec!["superuser".into()],
                full_name: None,
                email: None,
                metadata: json!({"_reserved": true}),
                enabled: true,
                realm: "reserved",
            },
        );
        for (n, sec) in file_tokens {
            s.tokens.insert(
                n.clone(),
                ServiceToken {
                    secret: sec.clone(),
                    source: "file",
                },
            );
        }
        s
    }

    /// Authenticates an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>, uri: &str, now: i64) -> EsResult<Principal> {
        let Some(h) = header else {
            return Err(EsError::missing_credentials(uri));
        };
        let (scheme, cred) = h.split_once(' ').unwrap_or((h, ""));
        let cred = cred.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let dec = base64::engine::general_purpose::STANDARD
                    .decode(cred)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                let Some((u, p)) = dec.as_deref().and_then(|d| d.split_once(':')) else {
                    return Err(EsError::unauthenticated(None));
                };
                match self.users.get(u) {
                    Some(user) if user.password == p && user.enabled => Ok(Principal::User {
                        name: u.to_string(),
                    }),
                    _ => {
                        let mut e = EsError::unauthenticated(None);
                        e.reason =
                            format!("unable to authenticate user [{u}] for REST request [{uri}]");
                        Err(e)
                    }
                }
            }
            "bearer" => match decode_service_token(cred) {
                Some((name, secret)) => match self.tokens.get(&name) {
                    Some(t) if t.secret == secret => Ok(Principal::Service {
                        token: name,
                        source: t.source,
                    }),
                    _ => {
                        let mut e = EsError::unauthenticated(None);
                        e.reason = format!("failed to authenticate service account [{FLEET_SERVICE}] with token name [{name}]");
                        Err(e)
                    }
                },
                None => Err(EsError::unauthenticated(None)),
            },
            "apikey" => {
                let dec = base64::engine::general_purpose::STANDARD
                    .decode(cred)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                let Some((id, key)) = dec.as_deref().and_then(|d| d.split_once(':')) else {
                    return Err(EsError::unauthenticated(None));
                };
                let why = match self.api_keys.get(id) {
                    None => format!("API key: unable to find apikey with id {id}"),
                    Some(k) if k.invalidated.is_some() => {
                        format!("API key: api key [{id}] has been invalidated")
                    }
                    Some(k) if k.expiration.is_some_and(|e| e <= now) => {
                        "API key: api key is expired".to_string()
                    }
                    Some(k) if k.secret != key => {
                        format!("API key: invalid credentials for API key [{id}]")
                    }
                    Some(_) => return Ok(Principal::ApiKey { id: id.to_string() }),
                };
                Err(EsError::unauthenticated(Some(why)))
            }
            _ => Err(EsError::unauthenticated(None)),
        }
    }

    /// Username of a principal (API keys: their owner).
    pub fn username(&self, p: &Principal) -> String {
        match p {
            Principal::User { name } => name.clone(),
            Principal::Service { .. } => FLEET_SERVICE.to_string(),
            Principal::ApiKey { id } => self
                .api_keys
                .get(id)
                .map(|k| k.owner.clone())
                .unwrap_or_default(),
        }
    }

    /// (realm name, realm type) of the principal's owner.
    pub fn realm(&self, p: &Principal) -> (String, String) {
        match p {
            Principal::User { name } => match self.users.get(name).map(|u| u.realm) {
                Some("reserved") => ("reserved".into(), "reserved".into()),
                _ => ("default_native".into(), "native".into()),
            },
            Principal::Service { .. } => ("_service_account".into(), "_service_account".into()),
            Principal::ApiKey { id } => self
                .api_keys
                .get(id)
                .map(|k| (k.realm.clone(), k.realm_type.clone()))
                .unwrap_or_default(),
        }
    }

    fn is_superuser(&self, p: &Principal) -> bool {
        match p {
            Principal::User { name } => self
                .users
                .get(name)
                .is_some_and(|u| u.roles.iter().any(|r| r == "superuser")),
            _ => false,
        }
    }

    /// The `_authenticate` response.
    pub fn authenticate_response(&self, p: &Principal) -> Value {
        match p {
            Principal::User { name } => {
                let u = self.users.get(name);
                let (realm, rtype) = self.realm(p);
                json!({
                    "username": name,
                    "roles": u.map(|u| u.roles.clone()).unwrap_or_default(),
                    "full_name": u.and_then(|u| u.full_name.clone()),
                    "email": u.and_then(|u| u.email.clone()),
                    "metadata": u.map(|u| u.metadata.clone()).unwrap_or_else(|| json!({})),
                    "enabled": true,
                    "authentication_realm": {"name": realm, "type": rtype},
                    "lookup_realm": {"name": realm, "type": rtype},
                    "authentication_type": "realm",
                })
            }
            Principal::Service { token, source } => json!({
                "username": FLEET_SERVICE,
                "roles": [],
                "full_name": "Service account - elastic/fleet-server",
                "email": null,
                "token": {"name": token, "type": format!("_service_account_{source}")},
                "metadata": {"_elastic_service_account": true},
                "enabled": true,
                "authentication_realm": {"name": "_service_account", "type": "_service_account"},
                "lookup_realm": {"name": "_service_account", "type": "_service_account"},
                "authentication_type": "token",
            }),
            Principal::ApiKey { id } => {
                let k = self.api_keys.get(id);
                let owner = k.map(|k| k.owner.clone()).unwrap_or_default();
                let (full_name, email, metadata) = if owner == FLEET_SERVICE {
                    (
                        json!("Service account - elastic/fleet-server"),
                        Value::Null,
                        json!({"_elastic_service_account": true}),
                    )
                } else {
                    let u = self.users.get(&owner);
                    (
                        json!(u.and_then(|u| u.full_name.clone())),
                        json!(u.and_then(|u| u.email.clone())),
                        u.map(|u| u.metadata.clone()).unwrap_or_else(|| json!({})),
                    )
                };
                let mut api_key = json!({"id": id});
                if let Some(n) = k.and_then(|k| k.name.clone()) {
                    api_key["name"] = json!(n);
                }
                json!({
                    "username": owner,
                    "roles": [],
                    "full_name": full_name,
                    "email": email,
                    "metadata": metadata,
                    "enabled": true,
                    "authentication_realm": {"name": "_es_api_key", "type": "_es_api_key"},
                    "lookup_realm": {"name": "_es_api_key", "type": "_es_api_key"},
                    "authentication_type": "api_key",
                    "api_key": api_key,
                })
            }
        }
    }

    /// Creates an API key owned by `p`.
    pub fn create_api_key(&mut self, p: &Principal, body: &Value, now: i64) -> EsResult<Value> {
        let name = body.get("name").and_then(Value::as_str).map(String::from);
        if name.as_deref().is_none_or(str::is_empty) {
            return Err(EsError::validation(&["api key name is required".into()]));
        }
        let expiration = match body.get("expiration") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let d = util::parse_time(s).ok_or_else(|| {
                    EsError::new(400, "parse_exception", format!("failed to parse setting [expiration] with value [{s}] as a time value: unit is missing or unrecognized"))
                })?;
                Some(now + d.as_millis() as i64)
            }
            Some(other) => {
                return Err(EsError::parsing(format!(
                    "[expiration] malformed value [{other}]"
                )))
            }
        };
        let owner_principal = match p {
            Principal::ApiKey { id } => {
                let k = self.api_keys.get(id).cloned();
                let owner = k.as_ref().map(|k| k.owner.clone()).unwrap_or_default();
                if owner == FLEET_SERVICE {
                    Principal::Service {
                        token: String::new(),
                        source: "index",
                    }
                } else {
                    Principal::User { name: owner }
                }
            }
            other => other.clone(),
        };
        let (realm, realm_type) = self.realm(&owner_principal);
        let id = util::random_id();
        let secret = util::random_uuid22();
        let key = ApiKey {
            id: id.clone(),
            name: name.clone(),
            secret: secret.clone(),
            creation: now,
            expiration,
            invalidated: None,
            owner: self.username(&owner_principal),
            realm,
            realm_type,
            metadata: body.get("metadata").cloned().unwrap_or_else(|| json!({})),
            role_descriptors: normalize_roles(body.get("role_descriptors")),
        };
        self.api_keys.insert(id.clone(), key);
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        let mut out = json!({"id": id, "name": name});
        if let Some(e) = expiration {
            out["expiration"] = json!(e);
        }
        out["api_key"] = json!(secret);
        out["encoded"] = json!(encoded);
        Ok(out)
    }

    /// Whether `p` owns key `k`.
    pub fn owns(&self, p: &Principal, k: &ApiKey) -> bool {
        self.username(p) == k.owner
    }

    /// Renders a key for `GET /_security/api_key`.
    pub fn render_key(&self, k: &ApiKey) -> Value {
        let mut v = json!({"id": k.id, "name": k.name, "type": "rest", "creation": k.creation});
        if let Some(e) = k.expiration {
            v["expiration"] = json!(e);
        }
        // expired keys are reported with `invalidated: false`, as ES does
        v["invalidated"] = json!(k.invalidated.is_some());
        if let Some(t) = k.invalidated {
            v["invalidation"] = json!(t);
        }
        v["username"] = json!(k.owner);
        v["realm"] = json!(k.realm);
        v["realm_type"] = json!(k.realm_type);
        v["metadata"] = k.metadata.clone();
        v["role_descriptors"] = k.role_descriptors.clone();
        v
    }

    /// Checks that `p` may perform `action` (cluster action, or index action on `indices`).
    pub fn authorize(&self, p: &Principal, action: &str, indices: &[String]) -> EsResult<()> {
        if self.is_superuser(p) || action == "cluster:admin/xpack/security/user/authenticate" {
            return Ok(());
        }
        let index_action = action.starts_with("indices:");
        let allowed = match p {
            Principal::User { .. } => false,
            Principal::Service { .. } => service_allows(action, indices),
            Principal::ApiKey { id } => {
                let Some(k) = self.api_keys.get(id) else {
                    return Err(EsError::unauthenticated(None));
                };
                let owner_ok = if k.owner == FLEET_SERVICE {
                    service_allows(action, indices)
                } else {
                    self.users
                        .get(&k.owner)
                        .is_some_and(|u| u.roles.iter().any(|r| r == "superuser"))
                };
                owner_ok && key_allows(&k.role_descriptors, action, indices)
            }
        };
        if allowed {
            return Ok(());
        }
        let who = match p {
            Principal::User { name } => {
                let roles = self
                    .users
                    .get(name)
                    .map(|u| u.roles.join(","))
                    .unwrap_or_default();
                format!("user [{name}] with effective roles [{roles}]")
            }
            Principal::Service { .. } => format!("user [{FLEET_SERVICE}]"),
            Principal::ApiKey { id } => format!("API key id [{id}] of user [{}]", self.username(p)),
        };
        let msg = if index_action {
            format!(
                "action [{action}] is unauthorized for {who} on indices [{}], this action is granted by the index privileges [{}]",
                indices.join(","),
                index_privileges(action)
            )
        } else {
            format!("action [{action}] is unauthorized for {who}, this action is granted by the cluster privileges [{}]", cluster_privileges(action))
        };
        Err(EsError::forbidden(msg))
    }
}

fn index_privileges(action: &str) -> &'static str {
    if action.starts_with("indices:data/read") {
        "read,all"
    } else if action.starts_with("indices:data/write") {
        "create_doc,create,delete,index,write,all"
    } else if action.starts_with("indices:admin") {
        "manage,all"
    } else {
        "monitor,manage,all"
    }
}

fn cluster_privileges(action: &str) -> &'static str {
    if action.contains("security/api_key") {
        "manage_api_key,manage_security,all"
    } else if action.contains("/security/") {
        "manage_security,all"
    } else if action.starts_with("cluster:admin/fleet/secrets/get") {
        "read_fleet_secrets,all"
    } else if action.starts_with("cluster:admin/fleet/secrets") {
        "write_fleet_secrets,all"
    } else if action.starts_with("cluster:monitor") {
        "monitor,manage,all"
    } else {
        "manage,all"
    }
}

/// Privileges of `elastic/fleet-server` (es-contract.md §2.2.2; secrets writes allowed too).
fn service_allows(action: &str, indices: &[String]) -> bool {
    if action.starts_with("cluster:monitor") || action.starts_with("cluster:admin/fleet/secrets") {
        return true;
    }
    if action.starts_with("cluster:admin/xpack/security/api_key")
        || action == "cluster:admin/xpack/security/user/authenticate"
    {
        return true;
    }
    if !action.starts_with("indices:") {
        return false;
    }
    const FULL: &[&str] = &[
        ".fleet-actions*",
        ".fleet-agents*",
        ".fleet-artifacts*",
        ".fleet-enrollment-api-keys*",
        ".fleet-policies*",
        ".fleet-servers*",
        ".fleet-fileds*",
        ".ds-.fleet-*",
        "synthetics-*",
        ".elastic-connectors*",
        "content-*",
        "agentless-*",
        "profiling-*",
    ];
    const WRITE: &[&str] = &[
        "logs-*",
        "metrics-*",
        "traces-*",
        ".ds-logs-*",
        ".ds-metrics-*",
        ".ds-traces-*",
        ".logs-endpoint.*",
    ];
    let write_action = action.starts_with("indices:data/write")
        || action.starts_with("indices:admin/auto_create")
        || action == "indices:admin/create";
    indices.iter().all(|i| {
        FULL.iter().any(|p| util::glob(p, i))
            || (write_action && WRITE.iter().any(|p| util::glob(p, i)))
            || (i.starts_with(".fleet-secrets") && action.starts_with("indices:data/read"))
    })
}

fn key_allows(roles: &Value, action: &str, indices: &[String]) -> bool {
    let Some(m) = roles.as_object() else {
        return true;
    };
    if m.is_empty() {
        return true; // no role descriptors: the owner's privileges
    }
    let index_action = action.starts_with("indices:");
    m.values().any(|rd| {
        if !index_action {
            return rd["cluster"].as_array().is_some_and(|c| {
                c.iter().filter_map(Value::as_str).any(|p| {
                    p == "all"
                        || (p == "monitor" && action.starts_with("cluster:monitor"))
                        || (p == "manage_own_api_key" && action.contains("security/api_key"))
                })
            });
        }
        if indices.is_empty() {
            // composite actions (bulk, mget, msearch): some index privilege is required
            return rd["indices"].as_array().is_some_and(|l| !l.is_empty());
        }
        let need = if action.starts_with("indices:data/read") {
            "read"
        } else if action.starts_with("indices:data/write") {
            "write"
        } else {
            "manage"
        };
        indices.iter().all(|idx| {
            rd["indices"].as_array().is_some_and(|list| {
                list.iter().any(|e| {
                    let names = e["names"].as_array().cloned().unwrap_or_default();
                    let privs: Vec<&str> = e["privileges"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    names.iter().filter_map(Value::as_str).any(|n| {
                        util::glob(n, idx)
                            || idx.starts_with(&format!(".ds-{}", n.trim_end_matches('*')))
                    }) && privs.iter().any(|p| {
                        *p == "all"
                            || *p == need
                            || (need == "write"
                                && (*p == "create_doc" || *p == "index" || *p == "create"))
                            || (need == "manage"
                                && (*p == "auto_configure" || *p == "create_index"))
                    })
                })
            })
        })
    })
}

/// Formats a date for API key responses (not used by ES, kept for seeding docs).
pub fn iso(ms: i64) -> String {
    datemath::format_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec() -> Security {
        Security::new(("elastic", "pw"), &[("token1".into(), "s3cr3t".into())])
    }

    #[test]
    fn service_token_roundtrip_and_auth() {
        let t = encode_service_token("token1", "s3cr3t");
        assert!(!t.contains('='));
        assert_eq!(
            decode_service_token(&t),
            Some(("token1".into(), "s3cr3t".into()))
        );
        let s = sec();
        let p = s
            .authenticate(Some(&format!("Bearer {t}")), "/", 0)
            .unwrap();
        let r = s.authenticate_response(&p);
        assert_eq!(r["token"]["type"], "_service_account_file");
        assert!(s
            .authenticate(
                Some("Bearer AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3g6eQ"),
                "/",
                0
            )
            .is_err());
        assert_eq!(
            s.authenticate(None, "/x", 0).unwrap_err().reason,
            "missing authentication credentials for REST request [/x]"
        );
    }

    #[test]
    fn api_key_lifecycle() {
        let mut s = sec();
        let svc = Principal::Service {
            token: "token1".into(),
            source: "file",
        };
        let body = json!({"name":"agent1","role_descriptors":{"fleet-apikey-access":{"cluster":[],"applications":[{"application":"fleet","privileges":["no-privileges"],"resources":["*"]}]}},"metadata":{"type":"access"}});
        let r = s.create_api_key(&svc, &body, 0).unwrap();
        let id = r["id"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 20);
        let enc = r["encoded"].as_str().unwrap().to_string();
        let p = s
            .authenticate(Some(&format!("ApiKey {enc}")), "/", 0)
            .unwrap();
        let a = s.authenticate_response(&p);
        assert_eq!(a["username"], FLEET_SERVICE);
        assert_eq!(a["api_key"]["name"], "agent1");
        assert_eq!(a["metadata"], json!({"_elastic_service_account": true}));
        assert!(s
            .authorize(&p, "indices:data/read/search", &[".fleet-agents-7".into()])
            .is_err());
        s.api_keys.get_mut(&id).unwrap().invalidated = Some(1);
        let e = s
            .authenticate(Some(&format!("ApiKey {enc}")), "/", 0)
            .unwrap_err();
        assert_eq!(e.status, 401);
        assert!(e.envelope()["error"]["additional_unsuccessful_credentials"]
            .as_str()
            .unwrap()
            .contains("invalidated"));
    }

    #[test]
    fn authorization_messages() {
        let s = sec();
        let svc = Principal::Service {
            token: "t".into(),
            source: "file",
        };
        let e = s
            .authorize(&svc, "cluster:admin/xpack/security/user/delete", &[])
            .unwrap_err();
        assert_eq!(e.reason, "action [cluster:admin/xpack/security/user/delete] is unauthorized for user [elastic/fleet-server], this action is granted by the cluster privileges [manage_security,all]");
        assert!(s
            .authorize(&svc, "indices:data/write/bulk", &[".fleet-agents-7".into()])
            .is_ok());
        assert!(s
            .authorize(&svc, "indices:data/write/bulk", &["other".into()])
            .is_err());
    }
}
