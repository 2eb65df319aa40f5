//! Policies as files: `<data-dir>/policies/*.json` (or `.yml`/`.yaml`, `policy_format.rs`), each
//! a Kibana full agent policy (`id`, `outputs`, `output_permissions`, `inputs`, `agent`,
//! `fleet`, ...) or a standalone `elastic-agent.yml`. A file whose content
//! changed becomes the policy's next revision (and wakes its parked agents through the store's
//! change feed); a file that does not parse is rejected with a log line naming the file and the
//! position, and the last good revision stays in service. The directory is scanned on a backend
//! worker (`main.rs` registers [`Rescan::now`] as a chore of the event loop; no thread of its
//! own; a scan is a few `stat`s): within milliseconds of a file being closed after writing or
//! renamed into place, where the loop can watch the directory (Linux inotify,
//! `net/server/watch.rs`), and every [`SCAN_INTERVAL`] regardless, the fallback where it cannot
//! (other platforms, network filesystems) or when notifications were lost.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::backend::local::LocalStore;
use crate::backend::{Store, StoreError};
use crate::config::DefaultOutput;
use crate::model::PolicyDoc;

/// How often the directory is re-scanned: an edit is installed at most this long after it is
/// written, then reaches parked agents through the change feed (well under a second in all).
pub const SCAN_INTERVAL: Duration = Duration::from_millis(500);

/// The `*.json` files of a directory, sorted.
pub fn policy_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| super::policy_format::is_policy_file(p) && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The first policy file of `dir` with an Elastic Defend integration: an input of type
/// `endpoint` or from the `endpoint` package (Kibana's `meta.package.name`). Files that do not
/// parse are skipped here (the policy loader reports them).
pub fn defend_policy(dir: &Path) -> Option<PathBuf> {
    policy_files(dir).into_iter().find(|path| {
        let Ok(bytes) = std::fs::read(path) else {
            return false;
        };
        let Ok(policy) = super::policy_format::parse(path, &bytes) else {
            return false;
        };
        policy["inputs"].as_array().is_some_and(|inputs| {
            inputs.iter().any(|input| {
                input["type"] == "endpoint" || input["meta"]["package"]["name"] == "endpoint"
            })
        })
    })
}

/// The policy written on first start: `fleet.hosts` is the URL agents reach this server at (the
/// one the quick start prints; the agent checks it with `GET /api/status` before it acks), the
/// output is the operator's `--default-output-*` or, without them, an Elasticsearch output with no
/// hosts, which an agent accepts but cannot send to: the quick start and `fleet-edge agents` say it
/// is not configured. Agent monitoring on, no integrations yet.
pub fn default_policy(id: &str, fleet_url: &str, output: Option<&DefaultOutput>) -> Value {
    json!({
        "id": id,
        "name": "fleet-edge default policy",
        "outputs": {"default": default_output(output)},
        "output_permissions": {"default": {}},
        "fleet": {"hosts": [fleet_url]},
        "agent": {
            "monitoring": {"enabled": true, "use_output": "default", "logs": true, "metrics": true, "namespace": "default"},
            "download": {"sourceURI": "https://artifacts.elastic.co/downloads/"},
            "features": {}
        },
        "inputs": []
    })
}

/// Points a policy's `agent.download` at the artifact mirror (issue 17): `sourceURI` and, when
/// the server's certificate comes from a CA it generated, that CA as
/// `ssl.certificate_authorities` (PEM inline), as Kibana writes an agent binary download source.
pub fn download_from(policy: &mut Value, source: &DownloadSource) {
    let mut download = json!({"sourceURI": source.source_uri});
    if let Some(ca) = &source.ca_pem {
        download["ssl"] = json!({"certificate_authorities": [ca]});
    }
    if let Some(agent) = policy.get_mut("agent").and_then(Value::as_object_mut) {
        agent.insert("download".into(), download);
    }
}

/// Where agents of the default policy download upgrades from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSource {
    /// `agent.download.sourceURI` (fleet-edge's URL + `/downloads/`).
    pub source_uri: String,
    /// The CA agents need to trust it, PEM.
    pub ca_pem: Option<String>,
}

/// The `outputs.default` member: Kibana's full-policy shape for the configured type (PEM text
/// inline under `ssl`), or the not-configured marker (no hosts).
fn default_output(output: Option<&DefaultOutput>) -> Value {
    let Some(output) = output else {
        return json!({"type": "elasticsearch", "hosts": []});
    };
    let mut out = Map::new();
    out.insert("type".into(), json!(output.kind.as_str()));
    out.insert("hosts".into(), json!(output.hosts));
    if let Some(key) = &output.api_key {
        out.insert("api_key".into(), json!(key.expose()));
    }
    let mut ssl = Map::new();
    if !output.certificate_authorities.is_empty() {
        ssl.insert(
            "certificate_authorities".into(),
            json!(output.certificate_authorities),
        );
    }
    if let Some(cert) = &output.certificate {
        ssl.insert("certificate".into(), json!(cert));
    }
    if let Some(key) = &output.key {
        ssl.insert("key".into(), json!(key.expose()));
    }
    if !ssl.is_empty() {
        out.insert("ssl".into(), Value::Object(ssl));
    }
    Value::Object(out)
}

/// Writes a new policy file readable by its owner only (it may hold output credentials), then
/// moves it into place.
pub fn write_private(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(text)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Tracks the policy files and the content last installed from each.
pub struct PolicyFiles {
    dir: PathBuf,
    /// File → (modification time, length, content digest) last seen.
    seen: HashMap<PathBuf, (Option<SystemTime>, u64, Vec<u8>)>,
}

impl PolicyFiles {
    /// A tracker for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            seen: HashMap::new(),
        }
    }

    /// Reads changed files and installs each changed policy as a new revision. Store errors are
    /// returned; bad files are logged and skipped.
    pub fn sync(&mut self, store: &LocalStore) -> Result<usize, StoreError> {
        let mut installed = 0;
        let latest: HashMap<String, PolicyDoc> = store
            .latest_policies()?
            .into_iter()
            .map(|p| (p.policy_id.clone(), p))
            .collect();
        for path in policy_files(&self.dir) {
            let meta = std::fs::metadata(&path).ok();
            let stamp = (
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.as_ref().map_or(0, |m| m.len()),
            );
            if self
                .seen
                .get(&path)
                .is_some_and(|(t, l, _)| (*t, *l) == stamp)
            {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    log::error!("cannot read policy file {}: {e}", path.display());
                    continue;
                }
            };
            let digest = ring::digest::digest(&ring::digest::SHA256, &bytes)
                .as_ref()
                .to_vec();
            if self.seen.get(&path).is_some_and(|(_, _, d)| *d == digest) {
                self.seen.insert(path, (stamp.0, stamp.1, digest));
                continue;
            }
            self.seen.insert(path.clone(), (stamp.0, stamp.1, digest));
            let data: Value = match super::policy_format::parse(&path, &bytes) {
                Ok(v) => v,
                Err(e) => {
                    let how = if e.starts_with("line ") { " at" } else { ":" };
                    log::error!(
                        "policy file {} rejected{how} {e}; the previous revision stays in service",
                        path.display()
                    );
                    continue;
                }
            };
            match self.install(store, &path, data, &latest) {
                Ok(true) => installed += 1,
                Ok(false) => {}
                Err(InstallError::Store(e)) => return Err(e),
                Err(InstallError::Invalid(why)) => log::error!(
                    "policy file {} rejected: {why}; the previous revision stays in service",
                    path.display()
                ),
            }
        }
        Ok(installed)
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a policy file's revision is stamped when the scanner thread reads it (review C3: becomes a loop timer passing `now`)"
    )]
    fn install(
        &self,
        store: &LocalStore,
        path: &Path,
        mut data: Value,
        latest: &HashMap<String, PolicyDoc>,
    ) -> Result<bool, InstallError> {
        let Some(obj) = data.as_object_mut() else {
            return Err(InstallError::Invalid(
                "the top level is not a JSON object".into(),
            ));
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = match obj.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            None => stem,
            Some(_) => {
                return Err(InstallError::Invalid(
                    "\"id\" must be a non-empty string".into(),
                ))
            }
        };
        if obj
            .get("outputs")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
        {
            return Err(InstallError::Invalid(
                "\"outputs\" must name at least one output".into(),
            ));
        }
        obj.insert("id".into(), Value::from(id.clone()));
        obj.remove("revision");
        let previous = latest.get(&id);
        if let Some(prev) = previous {
            let mut prev_data = prev.data.clone();
            if let Some(o) = prev_data.as_object_mut() {
                o.remove("revision");
            }
            if prev_data == Value::Object(obj.clone()) {
                return Ok(false);
            }
        }
        let revision = previous.map_or(1, |p| p.revision_idx + 1);
        obj.insert("revision".into(), Value::from(revision));
        let doc = PolicyDoc {
            timestamp: crate::model::time::rfc3339_millis(SystemTime::now()),
            policy_id: id.clone(),
            revision_idx: revision,
            data,
            ..PolicyDoc::default()
        };
        store.add_policy(doc).map_err(InstallError::Store)?;
        log::info!("policy {id} revision {revision} from {}", path.display());
        Ok(true)
    }

    /// The handle that scans (every [`SCAN_INTERVAL`] from the loop's timer, and at once on
    /// SIGHUP).
    pub fn rescan(self, store: Arc<LocalStore>) -> Rescan {
        Rescan {
            files: Arc::new(Mutex::new(self)),
            store,
        }
    }
}

/// Scans the policy files: the loop's periodic chore, and SIGHUP.
#[derive(Clone)]
pub struct Rescan {
    files: Arc<Mutex<PolicyFiles>>,
    store: Arc<LocalStore>,
}

impl Rescan {
    /// The policy directory.
    pub fn dir(&self) -> PathBuf {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.dir.clone()
    }

    /// Installs changed files as new revisions; how many were installed.
    pub fn now(&self) -> Result<usize, StoreError> {
        // A panic in another scan leaves the tracker usable: its state is only a cache.
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.sync(&self.store)
    }
}

/// Writes `data` as policy `id`'s file (atomically) and installs it as the next revision if it
/// differs from the newest one; returns the policy's revision afterwards.
pub fn apply(store: &LocalStore, dir: &Path, id: &str, mut data: Value) -> Result<i64, String> {
    let Some(obj) = data.as_object_mut() else {
        return Err("the policy must be a JSON object".into());
    };
    match obj.get("id") {
        None => {
            obj.insert("id".into(), Value::from(id));
        }
        Some(Value::String(given)) if given == id => {}
        Some(other) => {
            return Err(format!(
                "the body's \"id\" {other} differs from the path's {id:?}"
            ))
        }
    }
    if id.is_empty() || id.contains(['/', '\\', '.']) {
        return Err(format!("{id:?} cannot be a policy file name"));
    }
    if obj
        .get("outputs")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty())
    {
        return Err("\"outputs\" must name at least one output".into());
    }
    obj.remove("revision");
    let path = dir.join(format!("{id}.json"));
    let tmp = dir.join(format!(".{id}.json.tmp"));
    let text = serde_json::to_vec_pretty(&data).map_err(|e| e.to_string())?;
    crate::fsmode::write_private(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    PolicyFiles::new(dir.to_path_buf())
        .sync(store)
        .map_err(|e| e.to_string())?;
    store
        .latest_policies()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|p| p.policy_id == id)
        .map(|p| p.revision_idx)
        .ok_or_else(|| format!("policy {id} was not installed"))
}

/// Removes policy `id`: its file (when there is one), then its place among the served policies.
pub fn delete(store: &LocalStore, dir: &Path, id: &str) -> Result<(), String> {
    if id.is_empty() || id.contains(['/', '\\', '.']) {
        return Err(format!("{id:?} cannot be a policy file name"));
    }
    for ext in ["json", "yml", "yaml"] {
        let path = dir.join(format!("{id}.{ext}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
    store.remove_policy(id).map_err(|e| e.to_string())
}

enum InstallError {
    Store(StoreError),
    Invalid(String),
}
