//! `mailshift warmup status|next PLAN`: the warmup's daily decision per cohort and mailbox
//! provider (as a table, JSON or Prometheus, and as an HTML page with `--html`), and today's
//! volumes for the platform.

use super::common::{plain_style, write_human, write_report, CatalogArgs, StateArgs};
use super::plan::load_plan;
use crate::exit::ExitStatus;
use crate::warmup::decide::{judge, Decision, WarmupStatus};
use crate::warmup::evidence::Evidence;
use anyhow::Context;
use chrono::NaiveDate;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum WarmupCommand {
    /// Per cohort, day and mailbox provider: planned and actual volume, the rates against
    /// their thresholds, the providers' own signals, and the decision (advance, hold, back off).
    Status(StatusArgs),
    /// Today's allowed volume per cohort, pool and mailbox provider, to set in the platform.
    Next(NextArgs),
    /// Import warmup evidence into the plan's history: platform events (SendGrid, Amazon SES),
    /// daily metrics, Postmaster Tools and SNDS data; each file once.
    Import(super::warmup_import::ImportArgs),
}

/// How `warmup status` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
    /// Prometheus text exposition, for node_exporter's textfile collector.
    Prometheus,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    pub plan: PathBuf,
    /// Judge the days before this one and plan this one [default: today, at the plan's
    /// utc_offset].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: StatusFormat,
    /// Judged days shown per cohort in the table.
    #[arg(long, default_value_t = 7)]
    pub days: usize,
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the warmup as one self-contained HTML page (no outside assets, no script):
    /// per cohort its decision and today's volume, planned against sent volume per day, each
    /// day's rates against the thresholds, and the latest --days days.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// DNS for attributing the sources of imported DMARC reports (the platforms' SPF
    /// networks); not used when none were imported.
    #[command(flatten)]
    pub dns: super::common::DnsArgs,
}

#[derive(Debug, clap::Args)]
pub struct NextArgs {
    pub plan: PathBuf,
    /// The day to plan [default: today, at the plan's utc_offset].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: super::providers::ListFormat,
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

pub fn run(command: WarmupCommand) -> anyhow::Result<ExitStatus> {
    match command {
        WarmupCommand::Status(args) => status(args),
        WarmupCommand::Next(args) => next(args),
        WarmupCommand::Import(args) => super::warmup_import::run(args),
    }
}

/// Today at the plan's offset from UTC.
pub fn today(utc_offset_minutes: i32) -> NaiveDate {
    (chrono::Utc::now().naive_utc() + chrono::Duration::minutes(i64::from(utc_offset_minutes)))
        .date()
}

fn parse_day(text: &str, flag: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .with_context(|| format!("{flag}: `{text}` is not a date (write it as 2026-12-07)"))
}

/// What the receivers' reports in the history hold (DMARC aggregate rows, TLS days).
struct Received {
    catalog: crate::catalog::Catalog,
    rows: Vec<crate::reports::summary::Row>,
    tls: Vec<crate::reports::summary::TlsDay>,
    reports: u64,
}

/// Loads the plan and its evidence and judges the warmup as of `day` (or today); with
/// `receivers`, also reads what the receivers' reports hold (`warmup status` shows it,
/// `warmup next` does not need it).
fn judged(
    plan_path: &std::path::Path,
    catalog: &CatalogArgs,
    state: &StateArgs,
    day: Option<&str>,
    flag: &str,
    receivers: bool,
) -> anyhow::Result<Result<(crate::plan::Plan, WarmupStatus, Received), ExitStatus>> {
    let Some((plan, catalog)) = load_plan(plan_path, catalog)? else {
        return Ok(Err(ExitStatus::BadInput));
    };
    let Some(warmup) = &plan.warmup else {
        eprintln!(
            "error: {} has no [warmup] section: add one with its cohorts (see README, \"Warmup\")",
            plan_path.display()
        );
        return Ok(Err(ExitStatus::BadInput));
    };
    let as_of = match day {
        Some(d) => parse_day(d, flag)?,
        None => today(warmup.utc_offset_minutes),
    };
    let history = match super::warmup_import::plan_history(plan_path, &plan, state, true)? {
        Ok(history) => history,
        Err(code) => return Ok(Err(code)),
    };
    let evidence = match &history {
        Some(h) => Evidence::load(h)?,
        None => Evidence::default(),
    };
    let domains: Vec<String> = plan.domains.iter().map(|d| d.name.to_string()).collect();
    let status = judge(warmup, &plan.pools, &domains, &evidence, as_of);
    // The receivers' view of the days judged: what their reports say up to `as_of`.
    let received = match history.as_ref().filter(|_| receivers) {
        Some(h) => Received {
            rows: crate::reports::summary::load_rows(h)?
                .into_iter()
                .filter(|r| r.day < as_of)
                .collect(),
            tls: crate::reports::summary::load_tls(h)?
                .into_iter()
                .filter(|t| t.day < as_of)
                .collect(),
            reports: crate::reports::summary::report_count(h)?,
            catalog,
        },
        None => Received {
            catalog,
            rows: Vec::new(),
            tls: Vec::new(),
            reports: 0,
        },
    };
    Ok(Ok((plan, status, received)))
}

/// The reports' view for `warmup status`: sources attributed (which needs DNS: the platforms'
/// SPF networks), or `None` when no report was imported.
fn receivers(
    plan: &crate::plan::Plan,
    received: Received,
    dns: &super::common::DnsArgs,
) -> anyhow::Result<Option<crate::reports::summary::View>> {
    if received.rows.is_empty() && received.tls.is_empty() {
        return Ok(None);
    }
    let config = dns.config()?;
    let sources = super::common::runtime()?.block_on(async {
        let resolver = crate::dns::Resolver::new(&config)?;
        anyhow::Ok(
            crate::reports::sources::resolve(
                &resolver,
                plan,
                &received.catalog,
                &received.rows,
                plan.max_ptr,
            )
            .await,
        )
    })?;
    let mut view = crate::reports::summary::view(
        &plan.name,
        received.reports,
        &received.rows,
        |ip| sources.attribute(ip),
        plan.enforcement,
    );
    view.tls = received.tls;
    view.notes.extend(sources.notes());
    Ok(Some(view))
}

fn status(args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let (plan, status, received) = match judged(
        &args.plan,
        &args.catalog,
        &args.state,
        args.as_of.as_deref(),
        "--as-of",
        true,
    )? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let view = receivers(&plan, received, &args.dns)?;
    match args.format {
        StatusFormat::Json => write_report(
            args.output.as_deref(),
            &crate::output::pretty_json(&serde_json::json!({
                "plan": plan.name,
                "warmup": status,
                "receivers": view,
            })),
        )?,
        StatusFormat::Prometheus => {
            let mut text = crate::warmup::report::prometheus(&plan.name, &status);
            if let Some(view) = &view {
                text.push_str(&crate::output::reports::prometheus(view));
            }
            write_report(args.output.as_deref(), &text)?
        }
        StatusFormat::Table => {
            let style = plain_style(args.output.as_deref());
            let mut text =
                crate::warmup::report::table(&plan.name, &status, args.days.max(1), style.width);
            if let Some(view) = &view {
                text.push_str(&crate::output::reports::receivers(
                    view,
                    args.days.max(1),
                    style.width,
                ));
            }
            write_human(args.output.as_deref(), &text, false)?
        }
    }
    if let Some(path) = args.html.as_deref() {
        let mut page = crate::warmup::html::page(&plan.name, &status, args.days.max(1));
        if let Some(view) = &view {
            let section = crate::output::reports::html_section(view);
            if let Some(end) = page.rfind("</body>") {
                page.insert_str(end, &section);
            }
        }
        write_report(Some(path), &page)
            .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
    }
    // The exit code says what today holds: a back-off anywhere is a failed check.
    let worst = status.cohorts.iter().filter_map(|c| c.decision).max();
    Ok(match worst {
        Some(Decision::BackOff) => ExitStatus::ChecksFailed,
        _ => ExitStatus::Passed,
    })
}

fn next(args: NextArgs) -> anyhow::Result<ExitStatus> {
    let (plan, status, _) = match judged(
        &args.plan,
        &args.catalog,
        &args.state,
        args.date.as_deref(),
        "--date",
        false,
    )? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    match args.format {
        super::providers::ListFormat::Json => {
            let cohorts: Vec<serde_json::Value> = status
                .cohorts
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "cohort": c.name,
                        "pool": c.pool,
                        "state": c.state,
                        "messages": c.planned_today,
                        "providers": c.providers.iter().filter(|t| t.planned_today > 0).map(|t| serde_json::json!({
                            "provider": t.provider,
                            "messages": t.planned_today,
                            "step": t.step,
                            "share": t.share,
                            "share_source": t.share_source,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            write_report(
                args.output.as_deref(),
                &crate::output::pretty_json(&serde_json::json!({
                    "plan": plan.name,
                    "date": status.as_of,
                    "cohorts": cohorts,
                })),
            )?
        }
        super::providers::ListFormat::Table => {
            let style = plain_style(args.output.as_deref());
            write_human(
                args.output.as_deref(),
                &crate::warmup::report::next_table(&plan.name, &status, style.width),
                false,
            )?
        }
    }
    Ok(ExitStatus::Passed)
}
