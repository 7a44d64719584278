//! Showing build progress: plain lines for CI (one per event, each step
//! numbered `#N`, cached steps on one `CACHED` line), a live view on a
//! terminal, or nothing. All of it goes to stderr; stdout is for results.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rbuild_builder::progress::{Event, Progress, StepId};

use crate::cli::ProgressMode;

/// A step as progress tells steps apart: its stage's index and label (the
/// graphs of a multi-platform build share stage indexes, not labels) and
/// its number.
type StepKey = (usize, String, usize);

fn step_key(step: &StepId) -> StepKey {
    (step.stage, step.label.clone(), step.number)
}

/// Picks the renderer for a mode (`auto`: a live view on a terminal, else plain).
pub fn renderer(mode: ProgressMode, quiet: bool) -> Box<dyn Renderer> {
    let mode = match (mode, quiet) {
        (_, true) => ProgressMode::Quiet,
        (ProgressMode::Auto, _) if std::io::stderr().is_terminal() => ProgressMode::Tty,
        (ProgressMode::Auto, _) => ProgressMode::Plain,
        (m, _) => m,
    };
    match mode {
        ProgressMode::Quiet => Box::new(Quiet),
        ProgressMode::Tty => Box::new(Live::new()),
        _ => Box::new(Plain::new()),
    }
}

/// A progress sink that can also print the build's closing lines.
pub trait Renderer: Progress {
    /// A line about the build as a whole (exporting, naming, totals).
    fn line(&self, text: &str);
    fn finish(&self) {}
}

struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: Event) {}
}

impl Renderer for Quiet {
    fn line(&self, _: &str) {}
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Plain output: stable, greppable, one event per line.
struct Plain {
    start: Instant,
    state: Mutex<PlainState>,
}

#[derive(Default)]
struct PlainState {
    numbers: HashMap<StepKey, usize>,
    next: usize,
    started: HashMap<StepKey, Instant>,
}

impl Plain {
    fn new() -> Plain {
        Plain { start: Instant::now(), state: Mutex::new(PlainState { next: 1, ..Default::default() }) }
    }

    fn number(state: &mut PlainState, step: &StepId) -> usize {
        let next = state.next;
        let n = *state.numbers.entry(step_key(step)).or_insert(next);
        if n == next {
            state.next += 1;
        }
        n
    }

    fn print(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

impl Progress for Plain {
    fn event(&self, event: Event) {
        let mut st = self.state.lock().expect("progress lock");
        match event {
            Event::Cached { step } => {
                let n = Self::number(&mut st, &step);
                self.print(&format!("#{n} CACHED {}", step.title()));
            }
            Event::Started { step, reason } => {
                let n = Self::number(&mut st, &step);
                st.started.insert(step_key(&step), Instant::now());
                self.print(&format!("#{n} {}", step.title()));
                self.print(&format!("#{n} running because: {reason}"));
            }
            Event::WouldRun { step, reason } => {
                let n = Self::number(&mut st, &step);
                self.print(&format!("#{n} WOULD RUN {}", step.title()));
                self.print(&format!("#{n} because: {reason}"));
            }
            Event::Log { step, line } => {
                let n = Self::number(&mut st, &step);
                let t = st.started.get(&step_key(&step)).map(|s| s.elapsed()).unwrap_or_default();
                self.print(&format!("#{n} {:.3} {line}", t.as_secs_f64()));
            }
            Event::Done { step, elapsed } => {
                let n = Self::number(&mut st, &step);
                self.print(&format!("#{n} DONE {}", secs(elapsed)));
            }
            Event::Failed { step, elapsed } => {
                let n = Self::number(&mut st, &step);
                self.print(&format!("#{n} ERROR {} {}", secs(elapsed), step.title()));
            }
            Event::Note { message } => self.print(&message),
        }
    }
}

impl Renderer for Plain {
    fn line(&self, text: &str) {
        self.print(text);
    }

    fn finish(&self) {
        self.print(&format!("build finished in {}", secs(self.start.elapsed())));
    }
}

/// The live terminal view: a spinner per running step with its last output
/// line, finished steps left above it.
struct Live {
    start: Instant,
    multi: MultiProgress,
    bars: Mutex<HashMap<StepKey, (ProgressBar, Instant)>>,
}

impl Live {
    fn new() -> Live {
        Live {
            start: Instant::now(),
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces a step's spinner with a plain line above the live area, so
    /// it stays on screen when the build ends (as BuildKit leaves steps):
    /// `=> [app 3/4] RUN make  ran 0.6s`.
    fn finish_bar(
        &self,
        bars: &mut HashMap<StepKey, (ProgressBar, Instant)>,
        step: &StepId,
        elapsed: Duration,
        outcome: &str,
    ) {
        if let Some((bar, _)) = bars.remove(&step_key(step)) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let _ = self.multi.println(format!(" => {}  {outcome} {}", step.title(), secs(elapsed)));
    }
}

impl Progress for Live {
    fn event(&self, event: Event) {
        let mut bars = self.bars.lock().expect("progress lock");
        match event {
            Event::Cached { step } => {
                let _ = self.multi.println(format!(" => CACHED {}", step.title()));
            }
            Event::WouldRun { step, reason } => {
                let _ = self.multi.println(format!(" => WOULD RUN {} ({reason})", step.title()));
            }
            Event::Started { step, .. } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(" => {spinner} {prefix} {elapsed:>4} {msg:.dim}")
                        .expect("valid template"),
                );
                bar.set_prefix(step.title());
                bar.enable_steady_tick(Duration::from_millis(100));
                bars.insert(step_key(&step), (bar, Instant::now()));
            }
            Event::Log { step, line } => {
                if let Some((bar, _)) = bars.get(&step_key(&step)) {
                    let short: String = line.chars().take(80).collect();
                    bar.set_message(short);
                }
            }
            Event::Done { step, elapsed } => self.finish_bar(&mut bars, &step, elapsed, "ran"),
            Event::Failed { step, elapsed } => self.finish_bar(&mut bars, &step, elapsed, "ERROR"),
            Event::Note { message } => {
                let _ = self.multi.println(message);
            }
        }
    }
}

impl Renderer for Live {
    fn line(&self, text: &str) {
        let _ = self.multi.println(format!(" => {text}"));
    }

    fn finish(&self) {
        let _ = self.multi.println(format!("build finished in {}", secs(self.start.elapsed())));
    }
}
