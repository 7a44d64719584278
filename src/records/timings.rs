//! `--timings`: one self-contained HTML file about a build — a summary, the
//! Gantt chart ([`super::gantt`]) and the step table — with its style
//! inline and no script, font or image fetched from anywhere. Without a
//! path it goes where cargo puts its own: `rbuild-timings/` in the current
//! directory, named by the UTC time, plus `rbuild-timing.html` for the latest.

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use rbuild_oci::timefmt::Timestamp;

use super::cells::{HEADERS, escape, secs, step_cells, summary};
use super::gantt;
use super::model::BuildRecord;
use super::store::short;
use crate::report::Failure;

const DEFAULT_DIR: &str = "rbuild-timings";
const LATEST: &str = "rbuild-timing.html";

const STYLE: &str = "
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
dd { margin: 0; font-family: monospace; }
.gantt { border: 1px solid #ccc; background: #fafafa; margin: 1em 0; }
.gantt .lane { font-size: 12px; font-family: monospace; }
.gantt .axis { font-size: 11px; fill: #555; }
.gantt .lane-line { stroke: #ddd; }
.gantt .bar.ran { fill: #4a90d9; }
.gantt .bar.cached { fill: #bbb; }
.gantt .bar.critical { stroke: #d0021b; stroke-width: 2; }
.legend span { display: inline-block; padding: 0 0.5em; margin-right: 1em; }
.legend .ran { background: #4a90d9; color: #fff; }
.legend .cached { background: #bbb; }
.legend .critical { border: 2px solid #d0021b; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-family: monospace; }
tr.cached { color: #666; }
tr.critical td:first-child { border-left: 4px solid #d0021b; }
";

/// The report's HTML.
pub fn html(record: &BuildRecord) -> String {
    let started = Timestamp { secs: record.started_ms.div_euclid(1000), nanos: 0 }.to_rfc3339();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>rbuild timings: build {id}</title><style>{STYLE}</style></head><body>\n\
         <h1>rbuild build {id}</h1>\n<dl>",
        id = escape(short(&record.id))
    );
    let mut fact = |name: &str, value: &str| {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(value));
    };
    fact("status", record.status.word());
    fact("started", &started);
    fact("duration", &secs(record.duration_ms));
    fact("steps", &summary(record));
    if let Some(id) = &record.image_id {
        fact("image", &id.to_string());
    }
    if !record.tags.is_empty() {
        fact("tags", &record.tags.join(", "));
    }
    fact("context", &record.options.context);
    fact("dockerfile", &record.options.dockerfile);
    if let Some(d) = &record.context_digest {
        fact("context digest", &d.to_string());
    }
    if !record.options.build_args.is_empty() {
        fact("build args", &record.options.build_args.join(" "));
    }
    if let Some(e) = &record.error {
        fact("error", e);
    }
    out.push_str(
        "</dl>\n<h2>Timeline</h2>\n<p class=\"legend\"><span class=\"ran\">ran</span>\
                  <span class=\"cached\">cached</span><span class=\"critical\">critical path</span></p>\n",
    );
    out.push_str(&gantt::svg(&record.steps, record.duration_ms));
    out.push_str("\n<h2>Steps</h2>\n<table id=\"steps\"><thead><tr>");
    for h in HEADERS {
        let _ = write!(out, "<th>{}</th>", escape(&h.to_lowercase()));
    }
    out.push_str("</tr></thead><tbody>\n");
    let critical = gantt::critical_path(&record.steps);
    for (step, on_path) in record.steps.iter().zip(critical) {
        let class = match (step.cached, on_path) {
            (true, true) => "step cached critical",
            (true, false) => "step cached",
            (false, true) => "step ran critical",
            (false, false) => "step ran",
        };
        let _ = write!(out, "<tr class=\"{class}\">");
        for (i, cell) in step_cells(step).iter().enumerate() {
            let num = if i >= 3 { " class=\"num\"" } else { "" };
            let _ = write!(out, "<td{num}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n</body></html>\n");
    out
}

/// Writes the report to `path`, or to the default place (see the module
/// docs); says where on stderr.
pub fn write_report(record: &BuildRecord, path: Option<&Path>) -> Result<PathBuf, Failure> {
    let page = html(record);
    let written = match path {
        Some(p) => {
            write_file(p, &page)?;
            p.to_path_buf()
        }
        None => {
            let dir = Path::new(DEFAULT_DIR);
            fs::create_dir_all(dir)
                .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
            let stamp: String = Timestamp { secs: record.started_ms.div_euclid(1000), nanos: 0 }
                .to_rfc3339()
                .chars()
                .filter(|c| *c != '-' && *c != ':')
                .collect();
            let p = dir.join(format!("rbuild-timing-{stamp}.html"));
            write_file(&p, &page)?;
            write_file(&dir.join(LATEST), &page)?;
            p
        }
    };
    eprintln!("timings report: {}", written.display());
    Ok(written)
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    fs::write(path, text)
        .map_err(|e| Failure::new(format!("cannot write the timings report {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::model::StepRecord;

    #[test]
    fn the_page_is_self_contained_and_escapes_what_steps_say() {
        let record = BuildRecord {
            id: "0123456789abcdef0123".into(),
            steps: vec![StepRecord {
                stage: "final".into(),
                number: 2,
                instruction: "RUN echo '<script>alert(1)</script>'".into(),
                reason: Some("file changed: a&b".into()),
                duration_ms: 1200,
                ..StepRecord::default()
            }],
            ..BuildRecord::default()
        };
        let page = html(&record);
        assert!(!page.contains("<script>"), "step text must not become markup");
        assert!(page.contains("ran: file changed: a&amp;b"));
        for remote in ["http://", "https://", "src=", "<link", "@import", "url("] {
            assert!(!page.contains(remote), "fetches nothing ({remote}): {page}");
        }
        assert_eq!(page.matches("<tr class=\"step").count(), 1);
    }
}
