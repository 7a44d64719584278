//! Conversion between the frontend's [`ImageMeta`] (what a Dockerfile
//! builds up) and the store's image config [`RunConfig`].

use std::collections::BTreeMap;

use rbuild_frontend::graph::{Healthcheck, ImageMeta};
use rbuild_oci::config::{Empty, Healthcheck as ConfigHealth, RunConfig};

/// The metadata a stage starts from when its base is `config`.
pub fn meta_from_config(config: &RunConfig) -> ImageMeta {
    ImageMeta {
        env: config
            .env
            .iter()
            .flatten()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect(),
        user: config.user.clone().unwrap_or_default(),
        workdir: config.working_dir.clone().unwrap_or_default(),
        cmd: config.cmd.clone(),
        entrypoint: config.entrypoint.clone(),
        shell: config.shell.clone().unwrap_or_default(),
        labels: config.labels.clone().unwrap_or_default(),
        exposed_ports: config.exposed_ports.iter().flatten().map(|(k, _)| k.clone()).collect(),
        volumes: config.volumes.iter().flatten().map(|(k, _)| k.clone()).collect(),
        stop_signal: config.stop_signal.clone(),
        healthcheck: config.healthcheck.as_ref().map(|h| Healthcheck {
            test: h.test.clone().unwrap_or_default(),
            interval_ns: h.interval,
            timeout_ns: h.timeout,
            start_period_ns: h.start_period,
            start_interval_ns: h.start_interval,
            retries: h.retries,
        }),
        onbuild: config.on_build.clone().unwrap_or_default(),
        maintainer: None,
        args_escaped: config.args_escaped.unwrap_or(false),
    }
}

fn non_empty<T>(v: T, empty: bool) -> Option<T> {
    if empty { None } else { Some(v) }
}

/// The image config's `config` object for a stage's final metadata.
pub fn config_from_meta(meta: &ImageMeta) -> RunConfig {
    let ports: BTreeMap<String, Empty> = meta.exposed_ports.iter().map(|p| (p.clone(), Empty {})).collect();
    let volumes: BTreeMap<String, Empty> = meta.volumes.iter().map(|p| (p.clone(), Empty {})).collect();
    RunConfig {
        user: non_empty(meta.user.clone(), meta.user.is_empty()),
        exposed_ports: non_empty(ports, meta.exposed_ports.is_empty()),
        env: non_empty(meta.env.iter().map(|(k, v)| format!("{k}={v}")).collect(), meta.env.is_empty()),
        entrypoint: meta.entrypoint.clone(),
        cmd: meta.cmd.clone(),
        volumes: non_empty(volumes, meta.volumes.is_empty()),
        working_dir: non_empty(meta.workdir.clone(), meta.workdir.is_empty()),
        labels: non_empty(meta.labels.clone(), meta.labels.is_empty()),
        stop_signal: meta.stop_signal.clone(),
        args_escaped: None,
        healthcheck: meta.healthcheck.as_ref().map(|h| ConfigHealth {
            test: Some(h.test.clone()),
            interval: h.interval_ns,
            timeout: h.timeout_ns,
            start_period: h.start_period_ns,
            start_interval: h.start_interval_ns,
            retries: h.retries,
        }),
        on_build: non_empty(meta.onbuild.clone(), meta.onbuild.is_empty()),
        shell: non_empty(meta.shell.clone(), meta.shell.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_config() {
        let mut meta = ImageMeta {
            env: vec![("PATH".into(), "/bin".into()), ("A".into(), "b=c".into())],
            user: "app".into(),
            workdir: "/srv".into(),
            cmd: Some(vec!["cat".into(), "/srv/x".into()]),
            ..Default::default()
        };
        meta.exposed_ports.insert("8080/tcp".into());
        meta.labels.insert("k".into(), "v".into());
        meta.onbuild.push("RUN echo hi".into());
        let config = config_from_meta(&meta);
        assert_eq!(config.env.as_deref(), Some(&["PATH=/bin".to_string(), "A=b=c".to_string()][..]));
        assert_eq!(meta_from_config(&config), meta);
        assert_eq!(config_from_meta(&ImageMeta::default()), RunConfig::default());
    }
}
