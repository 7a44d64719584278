//! `rbuild inspect` / `rbuild image inspect`: Docker's image inspect JSON
//! (the Engine API's ImageInspect, field for field and in its order), as a
//! JSON array, or each image through a `--format` Go template.
//!
//! Values come from the config blob as stored, so an image loaded from
//! `docker save` shows what `docker inspect` shows for it: fields our typed
//! config does not model (`comment`, `docker_version`, `Config.Hostname`, …)
//! are read from the raw JSON. The layout is current Docker's (API 1.45 and
//! later): no Container/ContainerConfig, and an OCI-style Config.

use serde_json::{Map, Value as Json, json};

use rbuild_cache::Store;
use rbuild_cache::usage::{Catalog, CatalogImage, LayerSizes};
use rbuild_oci::timefmt::Timestamp;

use super::lookup::{familiar, no_such_image, platform_images, resolve_image};
use super::tag::last_tag_time;
use super::template::{GoTemplate, from_json, from_json_field, omitempty_object};
use crate::cli::InspectArgs;
use crate::report::Failure;

/// Go's zero `time.Time`, which Docker prints for times it does not know.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn inspect(store: &Store, args: InspectArgs) -> Result<(), Failure> {
    let template = args.format.as_deref().map(GoTemplate::parse).transpose()?;
    let catalog = Catalog::read(store)?;
    let mut sizes = LayerSizes::new(store);
    let mut documents = Vec::new();
    let mut failures = Vec::new();
    for query in &args.images {
        // A multi-platform name shows every platform's image.
        let members = platform_images(store, query)?;
        if !members.is_empty() {
            for id in members.values() {
                if let Some(image) = catalog.get(id) {
                    documents.push(document(store, image, &mut sizes));
                }
            }
            continue;
        }
        let found = resolve_image(store, query)
            .and_then(|id| catalog.get(&id).ok_or_else(|| no_such_image(query)).cloned());
        match found {
            Ok(image) => documents.push(document(store, &image, &mut sizes)),
            Err(failure) => failures.push(failure),
        }
    }
    match &template {
        Some(template) => {
            let mut out = String::new();
            for document in &documents {
                out.push_str(&template.render(&template_value(document))?);
                out.push('\n');
            }
            print!("{out}");
        }
        None => println!("{}", docker_indented_json(&Json::Array(documents))),
    }
    let last = failures.pop();
    for failure in failures {
        eprintln!("error: {}", failure.message);
    }
    last.map_or(Ok(()), Err)
}

/// The inspect document of one image.
pub(crate) fn document(store: &Store, image: &CatalogImage, sizes: &mut LayerSizes<'_>) -> Json {
    let raw: Json = serde_json::from_slice(&image.config_json).unwrap_or(Json::Null);
    let text = |key: &str| raw.get(key).and_then(Json::as_str).unwrap_or("").to_string();
    let config = &image.config;

    let mut tags: Vec<String> = image.tags.iter().map(|t| familiar(t)).collect();
    tags.sort();
    let digests: Vec<String> = image.record.repo_digests.iter().map(|d| familiar(d)).collect();
    let created = config
        .created
        .as_deref()
        .and_then(Timestamp::parse_rfc3339)
        .map_or_else(|| ZERO_TIME.to_string(), |t| t.to_rfc3339());
    let last_tagged = if image.is_tagged() {
        last_tag_time(store, &image.id()).unwrap_or(Timestamp::from_secs(image.record.added)).to_rfc3339()
    } else {
        ZERO_TIME.to_string()
    };

    let mut doc = Map::new();
    doc.insert("Id".into(), json!(image.id().to_string()));
    doc.insert("RepoTags".into(), json!(tags));
    doc.insert("RepoDigests".into(), json!(digests));
    doc.insert("Parent".into(), json!(image.record.parent.map(|p| p.to_string()).unwrap_or_default()));
    // Docker falls back to the newest history entry's comment.
    let comment = match text("comment") {
        c if c.is_empty() => config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        c => c,
    };
    doc.insert("Comment".into(), json!(comment));
    doc.insert("Created".into(), json!(created));
    doc.insert("DockerVersion".into(), json!(text("docker_version")));
    doc.insert("Author".into(), json!(text("author")));
    doc.insert("Config".into(), run_config(raw.get("config")));
    doc.insert("Architecture".into(), json!(config.architecture));
    if let Some(variant) = &config.variant {
        doc.insert("Variant".into(), json!(variant));
    }
    doc.insert("Os".into(), json!(config.os));
    if let Some(version) = &config.os_version {
        doc.insert("OsVersion".into(), json!(version));
    }
    doc.insert("Size".into(), json!(sizes.image(config)));
    doc.insert("GraphDriver".into(), graph_driver(store, image));
    let mut rootfs = Map::new();
    rootfs.insert("Type".into(), json!(config.rootfs.fs_type));
    if !config.rootfs.diff_ids.is_empty() {
        let layers: Vec<String> = config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect();
        rootfs.insert("Layers".into(), json!(layers));
    }
    doc.insert("RootFS".into(), Json::Object(rootfs));
    doc.insert("Metadata".into(), json!({ "LastTagTime": last_tagged }));
    Json::Object(doc)
}

/// The fields of Docker's image Config, in order, with the value a
/// template sees when the image has none (Go's zero value).
const CONFIG_FIELDS: [(&str, ZeroValue); 13] = [
    ("User", ZeroValue::Text),
    ("ExposedPorts", ZeroValue::Nil),
    ("Env", ZeroValue::Nil),
    ("Entrypoint", ZeroValue::Nil),
    ("Cmd", ZeroValue::Nil),
    ("Volumes", ZeroValue::Nil),
    ("WorkingDir", ZeroValue::Text),
    ("Labels", ZeroValue::Nil),
    ("StopSignal", ZeroValue::Text),
    ("ArgsEscaped", ZeroValue::False),
    ("Healthcheck", ZeroValue::Nil),
    ("OnBuild", ZeroValue::Nil),
    ("Shell", ZeroValue::Nil),
];

#[derive(Clone, Copy)]
enum ZeroValue {
    Nil,
    Text,
    False,
}

/// The document as templates see it: like the JSON, except that Config
/// has every field (empty ones as Go's zero values), as Docker's typed
/// struct does, so `{{.Config.Cmd}}` works on an image without a CMD.
fn template_value(document: &Json) -> gtmpl::Value {
    let mut value = from_json(document);
    let config = document.get("Config").and_then(Json::as_object);
    if let gtmpl::Value::Object(fields) = &mut value {
        let config_fields = CONFIG_FIELDS
            .iter()
            .map(|(key, zero)| {
                let field = match config.and_then(|c| c.get(*key)) {
                    Some(json) => from_json_field(key, json),
                    None => match zero {
                        ZeroValue::Nil => gtmpl::Value::Nil,
                        ZeroValue::Text => gtmpl::Value::String(String::new()),
                        ZeroValue::False => gtmpl::Value::Bool(false),
                    },
                };
                (*key, field)
            })
            .collect();
        fields.insert("Config".into(), omitempty_object(config_fields));
    }
    value
}

/// The image's run config as current Docker reports it (the OCI image
/// config's fields plus Docker's Healthcheck, OnBuild and Shell), in that
/// order and, as there, without the fields that are empty.
fn run_config(raw: Option<&Json>) -> Json {
    let empty = Map::new();
    let raw = raw.and_then(Json::as_object).unwrap_or(&empty);
    let mut out = Map::new();
    for (key, _) in CONFIG_FIELDS {
        copy_unless_empty(raw, &mut out, key);
    }
    Json::Object(out)
}

/// An `omitempty` field: copied only when it has a value.
fn copy_unless_empty(raw: &Map<String, Json>, out: &mut Map<String, Json>, key: &str) {
    if let Some(value) = raw.get(key).filter(|v| !is_empty_json(v)) {
        out.insert(key.to_string(), value.clone());
    }
}

/// What Go's `omitempty` leaves out.
fn is_empty_json(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::Bool(b) => !b,
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
    }
}

/// Where the image's snapshots are: the top layer's as UpperDir, the others
/// (top down) as LowerDir, like Docker's overlay2 report.
fn graph_driver(store: &Store, image: &CatalogImage) -> Json {
    let dirs: Vec<String> = image
        .config
        .rootfs
        .diff_ids
        .iter()
        .rev()
        .map(|d| store.layer_dir(d).join("fs").display().to_string())
        .collect();
    let data = match dirs.split_first() {
        None => Json::Null,
        Some((upper, [])) => json!({ "UpperDir": upper }),
        Some((upper, lower)) => json!({ "LowerDir": lower.join(":"), "UpperDir": upper }),
    };
    json!({ "Data": data, "Name": "rbuild-overlay" })
}

/// JSON indented by four spaces with `<`, `>` and `&` escaped, which is how
/// docker prints what the daemon sent.
pub(crate) fn docker_indented_json(value: &Json) -> String {
    use serde::Serialize;
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    value.serialize(&mut serializer).expect("JSON values serialize");
    // These characters only occur inside strings, where Go escapes them.
    String::from_utf8_lossy(&bytes)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_docker_field_order_and_drops_empty_fields() {
        // What `docker inspect --format '{{json .Config}}'` printed for
        // the same config (Hostname and the other empty fields left out).
        let raw = json!({"Hostname": "", "Cmd": ["sh"], "Env": ["PATH=/bin"], "ExposedPorts": {"80/tcp": {}}, "Shell": [], "Labels": null});
        let out = serde_json::to_string(&run_config(Some(&raw))).unwrap();
        assert_eq!(out, r#"{"ExposedPorts":{"80/tcp":{}},"Env":["PATH=/bin"],"Cmd":["sh"]}"#);
    }

    #[test]
    fn indented_like_docker() {
        let value = json!([{"Cmd": ["a > b"], "Empty": []}]);
        assert_eq!(
            docker_indented_json(&value),
            "[\n    {\n        \"Cmd\": [\n            \"a \\u003e b\"\n        ],\n        \"Empty\": []\n    }\n]"
        );
    }
}
