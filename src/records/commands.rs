//! `rbuild builds`: `ls` (newest first), `show` (the step table, and the
//! timings report of an old build), `diff` (two builds step by step),
//! `rm` and `prune`. A record that cannot be read is reported, never a crash.

use gtmpl::Value;
use rbuild_cache::Store;
use rbuild_oci::timefmt::Timestamp;

use super::cells::{HEADERS, outcome_text, secs, step_cells, summary};
use super::model::{BuildRecord, StepRecord};
use super::store::{self, RecordFile, Unreadable};
use super::timings;
use crate::cli::{BuildsCommand, BuildsDiffArgs, BuildsLsArgs, BuildsPruneArgs, BuildsShowArgs};
use crate::images::confirm;
use crate::images::filters::Filters;
use crate::images::format::RowFormat;
use crate::images::table::align;
use crate::images::template::object;
use crate::images::units::{go_time_string, time_ago};
use crate::report::Failure;

const LS_COLUMNS: &str = "{{.ID}}\t{{.Started}}\t{{.Duration}}\t{{.Status}}\t{{.Steps}}\t{{.Tags}}";

pub fn run(store: &Store, what: Option<BuildsCommand>) -> Result<(), Failure> {
    match what.unwrap_or(BuildsCommand::Ls(BuildsLsArgs::default())) {
        BuildsCommand::Ls(args) => ls(store, &args),
        BuildsCommand::Show(args) => show(store, &args),
        BuildsCommand::Diff(args) => diff(store, &args),
        BuildsCommand::Rm(args) => {
            // Resolve every name first: a typo removes nothing.
            let files =
                args.builds.iter().map(|b| store::resolve(store, b)).collect::<Result<Vec<_>, _>>()?;
            for f in files {
                store::remove(&f)?;
                println!("{}", f.id);
            }
            Ok(())
        }
        BuildsCommand::Prune(args) => prune(store, &args),
    }
}

/// Reads a record a command was asked about; a damaged one is an error
/// that says which file and what to do.
fn read_named(store: &Store, name: &str) -> Result<BuildRecord, Failure> {
    let file = store::resolve(store, name)?;
    store::read(&file).map_err(|why| unreadable(&file, &why))
}

fn unreadable(file: &RecordFile, why: &Unreadable) -> Failure {
    Failure::new(format!(
        "build record {} ({}) cannot be read: {why}",
        store::short(&file.id),
        file.path.display()
    ))
    .hint(format!("`rbuild builds rm {}` removes it", store::short(&file.id)))
}

fn ls(store: &Store, args: &BuildsLsArgs) -> Result<(), Failure> {
    let format = RowFormat::parse(args.format.as_deref(), LS_COLUMNS, args.quiet)?;
    let header = object(vec![
        ("ID", Value::from("BUILD ID")),
        ("Started", Value::from("STARTED")),
        ("Duration", Value::from("DURATION")),
        ("Status", Value::from("STATUS")),
        ("Steps", Value::from("STEPS")),
        ("Tags", Value::from("TAGS")),
    ]);
    let mut rows = Vec::new();
    for file in store::list(store)? {
        let id = if args.no_trunc { file.id.clone() } else { store::short(&file.id).to_string() };
        let started = Timestamp { secs: file.started_ms.div_euclid(1000), nanos: 0 };
        let fields = match store::read(&file) {
            Ok(r) => {
                let (run, cached) = r.counts();
                vec![
                    ("Status", Value::from(r.status.word())),
                    ("Duration", Value::from(secs(r.duration_ms))),
                    ("Steps", Value::from(format!("{run} run, {cached} cached"))),
                    ("Run", Value::from(run as u64)),
                    ("Cached", Value::from(cached as u64)),
                    ("Tags", Value::from(r.tags.join(","))),
                    ("Image", Value::from(r.image_id.map(|d| d.to_string()).unwrap_or_default())),
                    ("Saved", Value::from(secs(r.saved_ms()))),
                ]
            }
            Err(why) => {
                eprintln!("warning: {}", unreadable(&file, &why).message);
                vec![("Status", Value::from("unreadable"))]
            }
        };
        let mut all = vec![
            ("ID", Value::from(id)),
            ("Started", Value::from(time_ago(started))),
            ("StartedAt", Value::from(go_time_string(started))),
        ];
        for name in ["Status", "Duration", "Steps", "Run", "Cached", "Tags", "Image", "Saved"] {
            let value = fields.iter().find(|(n, _)| *n == name).map_or(Value::from(""), |(_, v)| v.clone());
            all.push((name, value));
        }
        rows.push(object(all));
    }
    format.print(&header, rows)
}

fn show(store: &Store, args: &BuildsShowArgs) -> Result<(), Failure> {
    let record = read_named(store, &args.build)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record).expect("a record serializes"));
    } else {
        print!("{}", show_text(&record));
    }
    if let Some(path) = &args.timings {
        timings::write_report(&record, path.as_deref())?;
    }
    Ok(())
}

/// `builds show`: the build's facts, then the step table.
fn show_text(r: &BuildRecord) -> String {
    let started = Timestamp { secs: r.started_ms.div_euclid(1000), nanos: 0 };
    let mut out = format!(
        "build {}  {}  started {}  took {}\n",
        r.id,
        r.status.word(),
        go_time_string(started),
        secs(r.duration_ms)
    );
    if let Some(id) = &r.image_id {
        out.push_str(&format!("image    {id}\n"));
    }
    if !r.tags.is_empty() {
        out.push_str(&format!("tags     {}\n", r.tags.join(", ")));
    }
    out.push_str(&format!("context  {}\n", r.options.context));
    if let Some(d) = &r.context_digest {
        out.push_str(&format!("         read {d}\n"));
    }
    out.push_str(&format!("file     {}\n", r.options.dockerfile));
    if !r.options.build_args.is_empty() {
        out.push_str(&format!("args     {}\n", r.options.build_args.join(" ")));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("error    {e}\n"));
    }
    for w in &r.check_warnings {
        out.push_str(&format!("check    {w}\n"));
    }
    out.push_str(&format!("steps    {}\n\n", summary(r)));
    let mut table = HEADERS.join("\t");
    table.push('\n');
    for s in &r.steps {
        table.push_str(&step_cells(s).join("\t"));
        table.push('\n');
    }
    out.push_str(&align(&table));
    out
}

fn diff(store: &Store, args: &BuildsDiffArgs) -> Result<(), Failure> {
    let a = read_named(store, &args.a)?;
    let b = read_named(store, &args.b)?;
    print!("{}", diff_text(&a, &b));
    Ok(())
}

/// The change of a duration from A to B: `+3.1s`, `-0.2s`, or `±0.0s`
/// when it is too small to show.
fn delta(a: u64, b: u64) -> String {
    let d = b as i64 - a as i64;
    let size = secs(d.unsigned_abs());
    let sign = match d {
        _ if size == secs(0) => "±",
        d if d < 0 => "-",
        _ => "+",
    };
    format!("{sign}{size}")
}

/// How a step fared in one build: `CACHED 0.0s`, `ran 3.2s`, or `-`.
fn fate(s: Option<&StepRecord>) -> String {
    match s {
        Some(s) if s.cached => format!("CACHED {}", secs(s.duration_ms)),
        Some(s) => format!("ran {}", secs(s.duration_ms)),
        None => "-".to_string(),
    }
}

/// `builds diff`: what differs in the options and context, then each step
/// (matched by stage and number) with its fate and time in A and B, and
/// why B ran it when A did not need to.
fn diff_text(a: &BuildRecord, b: &BuildRecord) -> String {
    let mut out = format!(
        "A  {}  {}  took {}  steps {}\nB  {}  {}  took {}  steps {}\n",
        store::short(&a.id),
        a.status.word(),
        secs(a.duration_ms),
        summary(a),
        store::short(&b.id),
        b.status.word(),
        secs(b.duration_ms),
        summary(b)
    );
    out.push_str(&format!("time     {}\n", delta(a.duration_ms, b.duration_ms)));
    let context = match (&a.context_digest, &b.context_digest) {
        (x, y) if x == y => "the same files read".to_string(),
        _ => "different files read".to_string(),
    };
    out.push_str(&format!("context  {context}\n"));
    let (ao, bo) = (&a.options, &b.options);
    for (name, x, y) in [
        ("context dir", ao.context.clone(), bo.context.clone()),
        ("dockerfile", ao.dockerfile.clone(), bo.dockerfile.clone()),
        ("build args", ao.build_args.join(" "), bo.build_args.join(" ")),
        ("target", ao.target.clone().unwrap_or_default(), bo.target.clone().unwrap_or_default()),
        ("no-cache", ao.no_cache.to_string(), bo.no_cache.to_string()),
    ] {
        if x != y {
            out.push_str(&format!("{name}: A {x:?}, B {y:?}\n"));
        }
    }
    out.push('\n');
    let mut places: Vec<(&str, usize)> = Vec::new();
    for s in a.steps.iter().chain(&b.steps) {
        if !places.contains(&(s.stage.as_str(), s.number)) {
            places.push((&s.stage, s.number));
        }
    }
    let find = |r: &'_ BuildRecord, (stage, n): (&str, usize)| -> Option<StepRecord> {
        r.steps.iter().find(|s| s.stage == stage && s.number == n).cloned()
    };
    let mut table = String::from("STEP\tA\tB\tCHANGE\tWHY B RAN\n");
    for place in places {
        let (sa, sb) = (find(a, place), find(b, place));
        let title = sb.as_ref().or(sa.as_ref()).map(StepRecord::title).unwrap_or_default();
        let change = match (&sa, &sb) {
            (Some(x), Some(y)) => delta(x.duration_ms, y.duration_ms),
            _ => String::new(),
        };
        let why = match (&sa, &sb) {
            (_, Some(y)) if y.cached => String::new(),
            (Some(x), Some(y)) if x.instruction != y.instruction => {
                format!("the instruction changed ({}); {}", x.instruction, outcome_text(y))
            }
            (_, Some(y)) => y.reason.clone().unwrap_or_default(),
            (_, None) => "not in B".to_string(),
        };
        table.push_str(&format!("{title}\t{}\t{}\t{change}\t{why}\n", fate(sa.as_ref()), fate(sb.as_ref())));
    }
    out.push_str(&align(&table));
    out
}

fn prune(store: &Store, args: &BuildsPruneArgs) -> Result<(), Failure> {
    let filters = Filters::parse(&args.filters, &["until"])?;
    let until = filters.until()?;
    if !args.force && !confirm("WARNING! This will remove build records.") {
        return Ok(());
    }
    let mut removed = 0;
    for file in store::list(store)?.into_iter().skip(args.keep) {
        if until.is_some_and(|t| file.started_ms.div_euclid(1000) >= t.secs) {
            continue;
        }
        store::remove(&file)?;
        removed += 1;
    }
    println!("Deleted build records: {removed}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: usize, text: &str, cached: bool, ms: u64, reason: Option<&str>) -> StepRecord {
        StepRecord {
            stage: "app".into(),
            number: n,
            instruction: text.into(),
            cached,
            duration_ms: ms,
            reason: reason.map(str::to_string),
            ..StepRecord::default()
        }
    }

    #[test]
    fn diff_says_how_each_step_fared_and_why_b_ran_it() {
        let a = BuildRecord {
            id: "aaaaaaaaaaaaaaaaaaaa".into(),
            duration_ms: 400,
            steps: vec![step(2, "COPY src/ /src/", true, 0, None), step(3, "RUN make", true, 1, None)],
            ..BuildRecord::default()
        };
        let b = BuildRecord {
            id: "bbbbbbbbbbbbbbbbbbbb".into(),
            duration_ms: 3400,
            steps: vec![
                step(2, "COPY src/ /src/", false, 100, Some("file changed: src/a.c")),
                step(3, "RUN make", false, 3000, Some("parent step changed")),
            ],
            ..BuildRecord::default()
        };
        let text = diff_text(&a, &b);
        assert!(text.contains("time     +3.0s"), "{text}");
        let make = text.lines().find(|l| l.contains("RUN make")).unwrap();
        assert!(
            make.contains("CACHED 0.0s") && make.contains("ran 3.0s") && make.contains("+3.0s"),
            "{make}"
        );
        assert!(make.ends_with("parent step changed"), "{make}");
        let copy = text.lines().find(|l| l.contains("COPY")).unwrap();
        assert!(copy.ends_with("file changed: src/a.c"), "{copy}");
    }
}
