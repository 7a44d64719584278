//! Conformance with BuildKit's image tests (`dockerfile_image_test.go`):
//! the config of images built from scratch and on such an image.

use crate::harness::*;

/// testDockerfileScratchConfig: `FROM scratch` with only ENV has an OS,
/// an architecture, a working dir, no layers, one empty-layer history
/// entry and the default PATH. testPullScratch: an image built on it keeps
/// its labels, adds its own, and has one layer for its COPY.
#[test]
fn scratch_config_and_an_image_on_it() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("scratch", "FROM scratch\nENV foo=bar\nLABEL foo=bar\n");
    env.rbuild(&["build", "-q", "-t", "img:scratch", "scratch"]).ok();
    let img = env.inspect_json("img:scratch", ".");
    assert!(img["Os"].as_str().is_some_and(|s| !s.is_empty()), "{img}");
    assert!(img["Architecture"].as_str().is_some_and(|s| !s.is_empty()), "{img}");
    assert!(img["Config"]["WorkingDir"].as_str().is_some_and(|s| !s.is_empty()), "{img}");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert!(img["RootFS"]["Layers"].as_array().is_none_or(|l| l.is_empty()), "{img}");
    let env_list = img["Config"]["Env"].as_array().unwrap();
    assert!(env_list.iter().any(|e| e == "foo=bar"));
    assert!(env_list.iter().any(|e| e.as_str().is_some_and(|e| e.starts_with("PATH="))));
    let history = env.rbuild(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "img:scratch"]).ok();
    assert!(history.stdout.contains("ENV foo=bar"), "{}", history.stdout);

    let ctx = env
        .context("child", &[("Dockerfile", "FROM img:scratch\nLABEL bar=baz\nCOPY foo .\n"), ("foo", "x")]);
    assert!(ctx.is_dir());
    env.rbuild(&["build", "-q", "-t", "img:child", "child"]).ok();
    let child = env.inspect_json("img:child", ".");
    assert_eq!(child["Config"]["Labels"], serde_json::json!({"foo": "bar", "bar": "baz"}));
    assert_eq!(child["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
}
