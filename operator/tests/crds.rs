//! The checked-in CRDs (`crds/` and the chart's `charts/praetor/crds/`) must be exactly what
//! `crdgen` produces from the Rust types. Regenerate with
//! `cargo run -p operator --bin crdgen -- crds && cargo run -p operator --bin crdgen -- charts/praetor/crds`.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("operator/ has a parent")
        .to_path_buf()
}

fn check_dir(dir: &Path) {
    let generated = operator::crd::crd_yaml().expect("CRDs serialize");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = generated.iter().map(|(f, _)| f.to_string()).collect();
    expected.sort();
    assert_eq!(
        on_disk,
        expected,
        "{} holds other files than crdgen writes",
        dir.display()
    );
    for (file, yaml) in generated {
        let path = dir.join(file);
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(
            stored == yaml,
            "{} is stale: run `cargo run -p operator --bin crdgen -- {}`",
            path.display(),
            dir.strip_prefix(repo_root()).unwrap_or(dir).display()
        );
    }
}

#[test]
fn crds_dir_matches_generated() {
    check_dir(&repo_root().join("crds"));
}

#[test]
fn chart_crds_match_generated() {
    check_dir(&repo_root().join("charts/praetor/crds"));
}

#[test]
fn crds_are_structural_enough_for_the_api_server() {
    // Every object in the schema must have a type (or preserve unknown fields): the API
    // server rejects non-structural schemas.
    fn walk(v: &serde_yaml::Value, path: &str) {
        if let Some(m) = v.as_mapping() {
            let has = |k: &str| m.contains_key(serde_yaml::Value::from(k));
            if has("properties") {
                assert!(has("type"), "{path}: properties without type");
            }
            for (k, child) in m {
                walk(child, &format!("{path}/{}", k.as_str().unwrap_or("?")));
            }
        } else if let Some(seq) = v.as_sequence() {
            for (i, child) in seq.iter().enumerate() {
                walk(child, &format!("{path}/{i}"));
            }
        }
    }
    for (file, yaml) in operator::crd::crd_yaml().unwrap() {
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(doc["spec"]["group"].as_str(), Some("praetor.dev"), "{file}");
        let schema = &doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(schema.is_mapping(), "{file} has a schema");
        assert!(
            schema["properties"]["status"].is_mapping(),
            "{file} has a status"
        );
        assert_eq!(
            doc["spec"]["versions"][0]["subresources"]["status"],
            serde_yaml::Value::Mapping(Default::default()),
            "{file} has the status subresource"
        );
        walk(schema, file);
    }
}
