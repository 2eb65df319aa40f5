//! Runs every ES YAML REST test under `../shared/reference/es/yaml-tests` against a stand-in and
//! reports per test. Passes (with a note) when `../shared` is absent. A test may only be excused if
//! it is listed in `NOT_APPLICABLE` below, which mirrors the README's table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod yaml;

use es_standin::{Options, StandIn};
use std::path::{Path, PathBuf};

/// (file suffix, test name, reason) of tests that do not apply to the stand-in. Must match the
/// README's "YAML REST tests" section.
const NOT_APPLICABLE: &[(&str, &str, &str)] = &[];

/// `../shared/reference/es` beside the repository (override: `ES_STANDIN_REFERENCE`).
fn reference_dir() -> PathBuf {
    match std::env::var_os("ES_STANDIN_REFERENCE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/es"),
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
}

fn standin() -> StandIn {
    let opts = Options {
        node_name: "yamlRestTest-0".into(),
        cluster_name: "yamlRestTest".into(),
        service_tokens: vec![("token1".into(), "yaml-file-token-secret".into())],
        ..Options::default()
    };
    StandIn::start(opts).expect("stand-in starts")
}

/// The ES test cluster's extra configuration the fleet secrets tests rely on: a user without
/// Fleet privileges (`fleet_unprivileged_secrets:password`).
fn cluster_config(es: &StandIn) {
    let (s, v) = es
        .client()
        .json(
            "PUT",
            "/_security/user/fleet_unprivileged_secrets",
            Some(&serde_json::json!({"password": "password", "roles": ["unprivileged_secrets"]})),
        )
        .expect("put user");
    assert_eq!(s, 200, "{v}");
}

#[test]
fn yaml_rest_tests() {
    let root = reference_dir();
    let tests_dir = root.join("yaml-tests");
    if !tests_dir.is_dir() {
        println!(
            "yaml: {} not present; YAML REST tests not run",
            tests_dir.display()
        );
        return;
    }
    let specs = yaml::specs::load(&root.join("rest-api-spec"));
    let mut files = Vec::new();
    collect(&tests_dir, &mut files);
    let es = standin();
    let client = es.client();
    let (mut passed, mut failed, mut skipped, mut na) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut report: Vec<String> = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&tests_dir)
            .unwrap_or(f)
            .display()
            .to_string();
        let text = std::fs::read_to_string(f).expect("read yaml");
        let tf = match yaml::parse_file(&text) {
            Ok(t) => t,
            Err(e) => {
                failed += 1;
                failures.push(format!("{rel}: parse error {e}"));
                continue;
            }
        };
        for (name, steps) in &tf.tests {
            if let Some((_, _, why)) = NOT_APPLICABLE
                .iter()
                .find(|(file, t, _)| rel.ends_with(file) && t == name)
            {
                report.push(format!("N/A   {rel} :: {name} ({why})"));
                println!("N/A   {rel} :: {name} ({why})");
                na += 1;
                continue;
            }
            es.reset();
            es.reset_security();
            cluster_config(&es);
            let mut r = yaml::Runner {
                client: &client,
                specs: &specs,
                version: (9, 6, 0),
                stash: Default::default(),
                last: serde_json::Value::Null,
                superuser_auth: es.superuser_auth(),
            };
            let res = r.run_steps(&tf.setup).and_then(|o| match o {
                yaml::Outcome::Pass => r.run_steps(steps),
                skip => Ok(skip),
            });
            let td = r.run_steps(&tf.teardown);
            match (res, td) {
                (Ok(yaml::Outcome::Pass), Ok(_)) => {
                    passed += 1;
                    report.push(format!("PASS  {rel} :: {name}"));
                    println!("PASS  {rel} :: {name}");
                }
                (Ok(yaml::Outcome::Skip(why)), _) => {
                    skipped += 1;
                    report.push(format!("SKIP  {rel} :: {name} ({why})"));
                    println!("SKIP  {rel} :: {name} ({why})");
                }
                (Err(e), _) | (Ok(_), Err(e)) => {
                    failed += 1;
                    report.push(format!("FAIL  {rel} :: {name}: {e}"));
                    println!("FAIL  {rel} :: {name}: {e}");
                    failures.push(format!("{rel} :: {name}: {e}"));
                }
            }
        }
    }
    let summary =
        format!("yaml: {passed} passed, {failed} failed, {skipped} skipped, {na} not applicable");
    println!("{summary}");
    report.push(summary);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("yaml-report.txt");
    if std::fs::write(&path, report.join("\n") + "\n").is_ok() {
        println!("yaml: per-test report in {}", path.display());
    }
    assert!(
        failures.is_empty(),
        "YAML REST test failures:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        skipped, 0,
        "a skipped YAML test must be listed as not applicable with a reason"
    );
}
