//! `mailshift reports import PLAN FILE_OR_DIR...`: bring DMARC aggregate reports and SMTP TLS
//! reports — as XML, JSON, gzip, zip, report emails, mboxes or Maildirs — into the plan's
//! history, each file and each report once, and say per file what was stored, what was there
//! before and what was refused, where. `mailshift reports PLAN`: what they say, each source
//! attributed to a platform of the plan.

use super::common::{
    plain_style, runtime, write_human, write_imports, write_report, CatalogArgs, DnsArgs,
    ImportedFile, StateArgs,
};
use super::plan::load_plan;
use super::providers::ListFormat;
use crate::exit::ExitStatus;
use crate::reports::{self, FileOutcome, ImportOptions};
use std::fmt::Write;
use std::path::PathBuf;

/// Problems shown per file in a table (JSON has them all, up to the cap).
const SHOWN_PROBLEMS: usize = 20;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportsArgs {
    #[command(subcommand)]
    pub command: Option<ReportsCommand>,
    #[command(flatten)]
    pub summary: SummaryArgs,
}

/// How `reports PLAN` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    Table,
    Json,
    /// One line per day and source.
    Csv,
    /// A page of its own: the totals, the days, the unknown sources, enforcement.
    Html,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 summarised, 2 bad plan or invocation, 3 a DNS lookup \
the attribution needed failed (sources may show as unknown)."
)]
pub struct SummaryArgs {
    /// The migration plan (TOML): its platforms, kept senders and pools attribute the sources.
    #[arg(required = true)]
    pub plan: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: SummaryFormat,
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Reverse DNS lookups for sources no pool or SPF network places, the biggest first
    /// (0: none) [default: the plan's `[dmarc] max_ptr`, else 1000].
    #[arg(long, value_name = "N")]
    pub max_ptr: Option<usize>,
    /// Consecutive clean days of the new platform that make enforcing DMARC safe [default:
    /// the plan's `[dmarc] enforce_after_days`, else 14].
    #[arg(long, value_name = "DAYS")]
    pub enforce_after: Option<usize>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportsCommand {
    /// Import DMARC aggregate reports and SMTP TLS reports into the plan's history: XML, JSON,
    /// gzip, zip, report emails, mboxes and Maildirs, recognised by content; each file and each
    /// report (by reporter and report id) once.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every report imported (or imported before), 2 a file could \
not be read or a report or record in it was rejected (the good ones are kept), or bad invocation."
)]
pub struct ImportArgs {
    /// The migration plan (TOML); its state directory holds the history.
    pub plan: PathBuf,
    /// Report files, or directories of them (a Maildir: its cur/ and new/).
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

pub fn run(args: ReportsArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        Some(ReportsCommand::Import(args)) => import(args),
        None => summary(args.summary),
    }
}

fn summary(args: SummaryArgs) -> anyhow::Result<ExitStatus> {
    let Some(plan_path) = args.plan.as_deref() else {
        eprintln!("error: name the plan: mailshift reports PLAN");
        return Ok(ExitStatus::BadInput);
    };
    let Some((plan, catalog)) = load_plan(plan_path, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    // The reports the plan names are imported first (each file once).
    let history = match super::warmup_import::plan_history(plan_path, &plan, &args.state, true)? {
        Ok(history) => history,
        Err(code) => return Ok(code),
    };
    let tls = match &history {
        Some(h) => reports::summary::load_tls(h)?,
        None => Vec::new(),
    };
    let (rows, reports) = match &history {
        Some(h) => (
            reports::summary::load_rows(h)?,
            crate::reports::summary::report_count(h)?,
        ),
        None => (Vec::new(), 0),
    };
    drop(history);
    let dns = args.dns.config()?;
    let sources = runtime()?.block_on(async {
        let resolver = crate::dns::Resolver::new(&dns)?;
        let max_ptr = args.max_ptr.unwrap_or(plan.max_ptr);
        anyhow::Ok(reports::sources::resolve(&resolver, &plan, &catalog, &rows, max_ptr).await)
    })?;
    let rule = reports::summary::EnforcementRule {
        days: args
            .enforce_after
            .map_or(plan.enforcement.days, |d| d.max(1)),
        ..plan.enforcement
    };
    let mut view =
        reports::summary::view(&plan.name, reports, &rows, |ip| sources.attribute(ip), rule);
    view.reverse_dns = sources.ptr.iter().map(|(ip, n)| (*ip, n.clone())).collect();
    view.tls = tls;
    view.notes.extend(sources.notes());
    let out = args.output.as_deref();
    match args.format {
        SummaryFormat::Json => write_report(
            out,
            &crate::output::pretty_json(&serde_json::json!({ "reports": view })),
        )?,
        SummaryFormat::Csv => write_report(out, &crate::output::reports::csv(&view))?,
        SummaryFormat::Html => write_report(out, &crate::output::reports::html_page(&view))?,
        SummaryFormat::Table => write_human(
            out,
            &crate::output::reports::table(&view, plain_style(out).width),
            false,
        )?,
    }
    Ok(if sources.lookup_failed {
        ExitStatus::Inconclusive
    } else {
        ExitStatus::Passed
    })
}

fn import(args: ImportArgs) -> anyhow::Result<ExitStatus> {
    // The plan is read, and the history opened, while the first files are read ahead.
    let mut bad_plan = false;
    let open = || {
        if load_plan(&args.plan, &args.catalog)?.is_none() {
            bad_plan = true;
            anyhow::bail!("the plan is not valid");
        }
        args.state.open(&args.plan)
    };
    let results = match reports::import_paths_opening(open, &args.files, &ImportOptions::default())
    {
        Ok(results) => results,
        Err(_) if bad_plan => return Ok(ExitStatus::BadInput),
        Err(e) => return Err(e),
    };
    write_imports(
        args.format,
        &results,
        file,
        "rejected reports or records (the good ones are kept)",
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
    let _ = writeln!(out, "{}", o.path.display());
    if let Some(when) = &o.already_imported {
        let _ = writeln!(out, "  already imported on {when}: nothing counted again\n");
        return;
    }
    let _ = writeln!(
        out,
        "  DMARC reports {}, TLS reports {}, records {}, messages {}, duplicates {}, rejected {}",
        o.dmarc_reports, o.tls_reports, o.records, o.messages, o.duplicates, o.rejected
    );
    if o.reports == 0 && o.duplicates == 0 {
        let _ = writeln!(
            out,
            "  nothing imported: the file is not recorded, so it is read again next time"
        );
    }
    for note in &o.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    for p in o.problems.iter().take(SHOWN_PROBLEMS) {
        let _ = writeln!(out, "  {}: {p}", o.path.display());
    }
    let more = o
        .rejected
        .saturating_sub(SHOWN_PROBLEMS.min(o.problems.len()) as u64);
    if more > 0 {
        let _ = writeln!(
            out,
            "  … and {more} more rejected (--format json lists the first {})",
            reports::MAX_PROBLEMS
        );
    }
    out.push('\n');
}
