//! The timings report's chart: one lane per stage, each step a bar from its
//! start to its end, cached steps marked, and the critical path — what the
//! build's end waited on — highlighted. Inline SVG, no script.

use std::fmt::Write;

use super::cells::{escape, outcome_text, secs};
use super::model::StepRecord;

/// Which steps lie on the critical path: starting from the step that ended
/// last, each step's predecessor is the step that ended last before it
/// started (a step waits for the one before it in its stage, or for the
/// stage it reads from, whichever ended later), until a step that started
/// with the build. Ties go to the same stage.
pub fn critical_path(steps: &[StepRecord]) -> Vec<bool> {
    let mut on_path = vec![false; steps.len()];
    let Some(mut current) = (0..steps.len()).max_by_key(|&i| (steps[i].ended_ms(), steps[i].started_ms))
    else {
        return on_path;
    };
    loop {
        on_path[current] = true;
        let step = &steps[current];
        // Started with the build: it waited for nothing.
        if step.started_ms <= STARTED_AT_ONCE_MS {
            return on_path;
        }
        let before = (0..steps.len())
            .filter(|&i| !on_path[i] && steps[i].ended_ms() <= step.started_ms && i != current)
            .max_by_key(|&i| (steps[i].ended_ms(), steps[i].stage == step.stage, steps[i].started_ms));
        match before {
            Some(i) => current = i,
            None => return on_path,
        }
    }
}

/// Steps that start this close to the build's start began with it (the
/// base image's steps before them are instant).
const STARTED_AT_ONCE_MS: u64 = 10;

const LANE_HEIGHT: u64 = 28;
const LABEL_WIDTH: u64 = 140;
const CHART_WIDTH: u64 = 860;

/// The chart as an `<svg>` element.
pub fn svg(steps: &[StepRecord], total_ms: u64) -> String {
    let mut lanes: Vec<&str> = Vec::new();
    for s in steps {
        if !lanes.contains(&s.stage.as_str()) {
            lanes.push(&s.stage);
        }
    }
    let span = total_ms.max(steps.iter().map(StepRecord::ended_ms).max().unwrap_or(0)).max(1);
    let x = |ms: u64| LABEL_WIDTH as f64 + ms as f64 * CHART_WIDTH as f64 / span as f64;
    let height = lanes.len() as u64 * LANE_HEIGHT + 30;
    let critical = critical_path(steps);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="gantt" width="{w}" height="{height}" viewBox="0 0 {w} {height}" role="img" aria-label="steps over time">"#,
        w = LABEL_WIDTH + CHART_WIDTH + 10
    );
    for (lane, name) in lanes.iter().enumerate() {
        let y = lane as u64 * LANE_HEIGHT;
        let _ = write!(
            out,
            r#"<text class="lane" x="4" y="{}">{}</text><line class="lane-line" x1="{LABEL_WIDTH}" x2="{}" y1="{}" y2="{}"/>"#,
            y + 18,
            escape(name),
            LABEL_WIDTH + CHART_WIDTH,
            y + LANE_HEIGHT,
            y + LANE_HEIGHT
        );
    }
    for (i, s) in steps.iter().enumerate() {
        let lane = lanes.iter().position(|l| *l == s.stage).unwrap_or(0) as u64;
        let (x0, x1) = (x(s.started_ms), x(s.ended_ms()));
        let mut class = String::from(if s.cached { "bar cached" } else { "bar ran" });
        if critical[i] {
            class.push_str(" critical");
        }
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{x0:.1}" y="{}" width="{:.1}" height="{}"><title>{} — {}</title></rect>"#,
            lane * LANE_HEIGHT + 5,
            (x1 - x0).max(2.0),
            LANE_HEIGHT - 10,
            escape(&s.title()),
            escape(&outcome_text(s)),
        );
    }
    // A time axis: the start, the middle and the end.
    let axis_y = lanes.len() as u64 * LANE_HEIGHT + 20;
    for ms in [0, span / 2, span] {
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{axis_y}">{}</text>"#,
            x(ms) - if ms == span { 30.0 } else { 0.0 },
            secs(ms)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(stage: &str, start: u64, duration: u64) -> StepRecord {
        StepRecord {
            stage: stage.into(),
            started_ms: start,
            duration_ms: duration,
            instruction: format!("RUN {stage} {start}"),
            ..StepRecord::default()
        }
    }

    #[test]
    fn the_critical_path_follows_what_the_last_step_waited_for() {
        // Two stages in parallel; the final stage waits for the slower one.
        let steps = vec![
            step("deps", 0, 500),
            step("tools", 0, 100),
            step("tools", 100, 100),
            step("final", 500, 50),
            step("final", 550, 300),
        ];
        assert_eq!(critical_path(&steps), vec![true, false, false, true, true]);
        // A cached step that ended at once is no step's reason to wait.
        let steps = vec![step("cached", 0, 0), step("deps", 2, 500), step("final", 502, 50)];
        assert_eq!(critical_path(&steps), vec![false, true, true]);
    }

    #[test]
    fn the_chart_has_a_lane_per_stage_and_a_bar_per_step() {
        let mut steps = vec![step("deps", 0, 500), step("final", 500, 50)];
        steps[1].cached = true;
        let svg = svg(&steps, 600);
        assert_eq!(svg.matches("<rect ").count(), 2);
        assert_eq!(svg.matches(r#"class="lane""#).count(), 2);
        assert!(svg.contains(r#"class="bar cached critical""#), "{svg}");
    }
}
