//! `mailshift warmup import PLAN FILE...`: bring warmup evidence — platform events, daily
//! totals, Postmaster Tools and SNDS data — into the plan's history, each file once, and say per
//! file what was counted, what was already there and which rows were refused.

use super::common::{write_imports, CatalogArgs, ImportedFile, StateArgs};
use super::plan::load_plan;
use super::providers::ListFormat;
use crate::exit::ExitStatus;
use crate::warmup::import::{self, EvidenceKind, FileOutcome, ImportOptions};
use std::fmt::Write;
use std::path::PathBuf;

/// Problems shown per file in a table (JSON has them all).
const SHOWN_PROBLEMS: usize = 20;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every file imported (or imported before), 2 a file could \
not be read or some of its rows were rejected (its good rows are kept), or bad invocation."
)]
pub struct ImportArgs {
    /// The migration plan (TOML), with a [warmup] section and its cohorts.
    pub plan: PathBuf,
    /// Evidence files: metrics CSV/JSON, SendGrid events, Amazon SES events, Postmaster Tools
    /// traffic stats, SNDS exports (each recognised from its content).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The format of every FILE, when its content does not say.
    #[arg(long, value_enum, value_name = "KIND")]
    pub kind: Option<EvidenceKind>,
    /// The event field naming the cohort: a SendGrid custom argument or an SES message tag.
    #[arg(long, default_value = "cohort", value_name = "NAME")]
    pub cohort_field: String,
    /// The cohort of the events and rows that name none (a file exported for one cohort).
    #[arg(long, value_name = "NAME")]
    pub cohort: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitStatus> {
    let Some((plan, _)) = load_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    let Some(warmup) = &plan.warmup else {
        eprintln!(
            "error: {} has no [warmup] section: evidence is imported for a plan's warmup cohorts",
            args.plan.display()
        );
        return Ok(ExitStatus::BadInput);
    };
    let mut opts = ImportOptions::for_plan(warmup);
    opts.cohort_field = args.cohort_field.trim().to_string();
    if opts.cohort_field.is_empty() {
        eprintln!("error: --cohort-field must name a field");
        return Ok(ExitStatus::BadInput);
    }
    if let Some(cohort) = &args.cohort {
        let cohort = cohort.trim();
        if !opts.knows_cohort(cohort) {
            eprintln!(
                "error: --cohort {}: the plan has no such cohort (cohorts: {})",
                crate::output::escape::text(cohort),
                opts.cohort_list()
            );
            return Ok(ExitStatus::BadInput);
        }
        opts.default_cohort = Some(cohort.to_string());
    }
    let mut history = args.state.open(&args.plan)?;
    let results = import::import_files(&mut history, &args.files, args.kind, &opts);
    write_imports(
        args.format,
        &results,
        file,
        "rejected rows (their good rows are kept)",
    )
}

impl ImportedFile for FileOutcome {
    fn rejected(&self) -> u64 {
        self.rejected
    }
    fn imported_before(&self) -> bool {
        self.already_imported.is_some()
    }
}

fn file(out: &mut String, o: &FileOutcome) {
    let _ = writeln!(out, "{} ({})", o.path.display(), o.kind.name());
    if let Some(when) = &o.already_imported {
        let _ = writeln!(out, "  already imported on {when}: nothing counted again\n");
        return;
    }
    let mut line = format!(
        "  records {}, counted {}, duplicates {}, rejected {}",
        o.records, o.counted, o.duplicates, o.rejected
    );
    for (n, what) in [
        (o.dropped, "dropped"),
        (o.rejected_by_platform, "rejected by the platform"),
        (o.ignored, "ignored"),
        (o.without_cohort, "without a cohort"),
    ] {
        if n > 0 {
            let _ = write!(line, ", {what} {n}");
        }
    }
    let _ = writeln!(out, "{line}");
    let _ = writeln!(out, "  days: {}", days(&o.days));
    for note in &o.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    let (shown, more) = o.first_problems(SHOWN_PROBLEMS);
    for p in shown {
        let _ = writeln!(out, "  {}:{}: {}", o.path.display(), p.line, p.message);
    }
    if more > 0 {
        let _ = writeln!(
            out,
            "  … and {more} more rejected (--format json lists the first {})",
            import::MAX_PROBLEMS
        );
    }
    out.push('\n');
}

/// `2026-11-02`, `2026-11-02 to 2026-11-08 (7 days)`, or with gaps, every day.
fn days(days: &[chrono::NaiveDate]) -> String {
    match days {
        [] => "none".to_string(),
        [one] => one.to_string(),
        [first, .., last] if (*last - *first).num_days() + 1 == days.len() as i64 => {
            format!("{first} to {last} ({} days)", days.len())
        }
        _ => days
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The plan's history with the evidence files its `[warmup] evidence` names, and the report
/// files and folders its `[dmarc] reports` names, imported first, for `warmup status`,
/// `warmup next`, `gate` and `reports PLAN`. A file imported before costs one SHA-256 of its
/// bytes; a new one is imported as by `warmup import` (or `reports import`) and reported on
/// standard error, with its rejected rows or reports (reported this once: the file's import is
/// recorded). With `record` off (`gate --no-record`), the files go into a copy of the history
/// in memory, thrown away after.
///
/// `Err(BadInput)` when a file cannot be imported at all: the verdict would rest on less than
/// the plan names. `Ok(None)`: no history and nothing to import.
pub fn plan_history(
    plan_path: &std::path::Path,
    plan: &crate::plan::Plan,
    state: &StateArgs,
    record: bool,
) -> anyhow::Result<Result<Option<crate::history::History>, ExitStatus>> {
    let dir = state.dir(plan_path);
    let files = plan
        .warmup
        .as_ref()
        .map(|w| w.evidence.as_slice())
        .unwrap_or_default();
    if files.is_empty() && plan.report_paths.is_empty() {
        return Ok(Ok(crate::history::History::open_existing(&dir)?));
    }
    let mut history = if record {
        state.open(plan_path)?
    } else {
        match crate::history::History::open_existing(&dir)? {
            Some(h) => h.scratch_copy()?,
            None => crate::history::History::in_memory(&dir.join("history.db"))?,
        }
    };
    let mut failed = false;
    let mut report = String::new();
    let reports = crate::reports::import_paths(
        &mut history,
        &plan.report_paths,
        &crate::reports::ImportOptions::default(),
    );
    for result in &reports {
        match result {
            Err(e) => {
                failed = true;
                let _ = writeln!(
                    report,
                    "error: the plan's reports could not be imported: {e}"
                );
            }
            Ok(o) if o.already_imported.is_some() => {}
            Ok(o) => {
                let _ = writeln!(
                    report,
                    "imported {}: {} DMARC and {} TLS report(s), {} records, {} duplicates, {} rejected",
                    o.path.display(),
                    o.dmarc_reports,
                    o.tls_reports,
                    o.records,
                    o.duplicates,
                    o.rejected
                );
                for p in o.problems.iter().take(SHOWN_PROBLEMS) {
                    let _ = writeln!(
                        report,
                        "warning: {}: {}: {} (not imported)",
                        o.path.display(),
                        p.at,
                        p.message
                    );
                }
            }
        }
    }
    let Some(warmup) = plan.warmup.as_ref().filter(|_| !files.is_empty()) else {
        if !report.is_empty() {
            eprint!("{}", crate::output::escape::rendered(&report, false));
        }
        if failed {
            return Ok(Err(ExitStatus::BadInput));
        }
        return Ok(Ok(Some(history)));
    };
    let opts = ImportOptions::for_plan(warmup);
    let results = import::import_files(&mut history, files, None, &opts);
    for result in &results {
        match result {
            Err(e) => {
                failed = true;
                let _ = writeln!(
                    report,
                    "error: the plan's warmup evidence could not be imported: {e}"
                );
            }
            Ok(o) if o.already_imported.is_some() => {}
            Ok(o) => {
                let _ = writeln!(
                    report,
                    "imported {} ({}): {} counted, {} duplicates, {} rejected; days {}",
                    o.path.display(),
                    o.kind.name(),
                    o.counted,
                    o.duplicates,
                    o.rejected,
                    days(&o.days)
                );
                let (shown, more) = o.first_problems(SHOWN_PROBLEMS);
                for p in shown {
                    let _ = writeln!(
                        report,
                        "warning: {}:{}: {} (row rejected)",
                        o.path.display(),
                        p.line,
                        p.message
                    );
                }
                if more > 0 {
                    let _ = writeln!(
                        report,
                        "warning: … and {more} more rows of {} rejected",
                        o.path.display()
                    );
                }
            }
        }
    }
    if !report.is_empty() {
        eprint!("{}", crate::output::escape::rendered(&report, false));
    }
    if failed {
        return Ok(Err(ExitStatus::BadInput));
    }
    Ok(Ok(Some(history)))
}
