//! The step table every view of a record shares (`builds show`, the
//! timings report): its columns and how each cell reads.

use super::model::{BuildRecord, StepRecord};
use crate::images::units::human_size;

/// The table's column titles.
pub const HEADERS: [&str; 7] =
    ["STAGE", "INSTRUCTION", "RESULT", "DURATION", "LAYER", "CONTEXT READ", "SAVED"];

/// `3.2s`, as progress prints times.
pub fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// `CACHED`, or `ran: why`.
pub fn outcome_text(s: &StepRecord) -> String {
    match (s.cached, &s.reason) {
        (true, _) => "CACHED".to_string(),
        (false, Some(why)) => format!("ran: {why}"),
        (false, None) => "ran".to_string(),
    }
}

/// One step's cells, in [`HEADERS`] order.
pub fn step_cells(s: &StepRecord) -> [String; 7] {
    [
        s.stage.clone(),
        s.instruction.clone(),
        outcome_text(s),
        secs(s.duration_ms),
        if s.layer.is_some() { human_size(s.layer_size) } else { "-".to_string() },
        if s.context_digest.is_some() { human_size(s.context_bytes) } else { "-".to_string() },
        match s.saved_ms {
            Some(ms) if s.cached => format!("saved {}", secs(ms)),
            _ => String::new(),
        },
    ]
}

/// "3 run, 5 cached; the cache saved 35.1s"
pub fn summary(record: &BuildRecord) -> String {
    let (run, cached) = record.counts();
    let mut text = format!("{run} run, {cached} cached");
    let saved = record.saved_ms();
    if saved > 0 {
        text.push_str(&format!("; the cache saved {}", secs(saved)));
    }
    text
}

/// Text made safe for HTML (element content and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
