//! Conformance of the built-in Fleet system index mappings (`src/system.rs`) with the ES mapping
//! files in `../shared/reference/es/mappings`, and of `dynamic: false` behaviour. The reference
//! comparison passes with a note when `../shared` is absent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use es_standin::mapping::Mapping;
use es_standin::system;
use serde_json::Value;
use std::path::Path;

fn reference(file: &str) -> Option<Value> {
    let root = match std::env::var_os("ES_STANDIN_REFERENCE") {
        Some(p) => std::path::PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/es"),
    };
    let p = root.join("mappings").join(file);
    let text = std::fs::read_to_string(p).ok()?;
    // placeholders are not JSON until ES substitutes them
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map(|e| i + e + 1).unwrap_or(rest.len());
        let quoted = out.ends_with('"');
        out.push_str(if quoted { "x" } else { "1" });
        rest = &rest[end..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).ok()
}

fn mappings_of(v: &Value) -> Value {
    let m = v
        .get("mappings")
        .or_else(|| v.pointer("/template/mappings"))
        .cloned()
        .unwrap_or(Value::Null);
    m.get("_doc").cloned().unwrap_or(m)
}

#[test]
fn system_indices_match_reference_mappings() {
    let pairs = [
        (".fleet-agents", "fleet-agents.json"),
        (".fleet-actions", "fleet-actions.json"),
        (
            ".fleet-enrollment-api-keys",
            "fleet-enrollment-api-keys.json",
        ),
        (".fleet-policies", "fleet-policies.json"),
        (".fleet-policies-leader", "fleet-policies-leader.json"),
        (".fleet-servers", "fleet-servers.json"),
        (".fleet-artifacts", "fleet-artifacts.json"),
        (".fleet-secrets", "fleet-secrets.json"),
    ];
    let mut checked = 0;
    for (alias, file) in pairs {
        let Some(r) = reference(file) else {
            println!("mappings: {file} not present; skipped");
            continue;
        };
        let expected = Mapping::from_es_json(&mappings_of(&r)).expect("reference mapping parses");
        let ours = system::system_index(alias)
            .expect("known system index")
            .mapping();
        assert_eq!(
            ours.fields, expected.fields,
            "{alias} fields differ from {file}"
        );
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(ours.disabled.clone()),
            sorted(expected.disabled.clone()),
            "{alias} disabled objects"
        );
        assert!(
            !ours.dynamic && !expected.dynamic,
            "{alias} is dynamic:false"
        );
        checked += 1;
    }
    let streams = [
        (".fleet-actions-results", "fleet-actions-results.json"),
        (
            ".fleet-fileds-fromhost-meta-endpoint",
            "fleet-file-fromhost-meta.json",
        ),
        (
            ".fleet-fileds-fromhost-data-endpoint",
            "fleet-file-fromhost-data.json",
        ),
        (
            ".fleet-fileds-tohost-meta-endpoint",
            "fleet-file-tohost-meta.json",
        ),
        (
            ".fleet-fileds-tohost-data-endpoint",
            "fleet-file-tohost-data.json",
        ),
    ];
    for (name, file) in streams {
        let Some(r) = reference(file) else { continue };
        let expected = Mapping::from_es_json(&mappings_of(&r)).expect("reference mapping parses");
        let ours = system::stream_template(name)
            .expect("known template")
            .mapping();
        assert_eq!(
            ours.fields, expected.fields,
            "{name} fields differ from {file}"
        );
        assert_eq!(
            ours.dynamic_objects, expected.dynamic_objects,
            "{name} dynamic objects"
        );
        checked += 1;
    }
    println!("mappings: {checked} compared with the reference");
}
