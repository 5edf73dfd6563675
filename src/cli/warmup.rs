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

/// Loads the plan and its evidence and judges the warmup as of `day` (or today).
fn judged(
    plan_path: &std::path::Path,
    catalog: &CatalogArgs,
    state: &StateArgs,
    day: Option<&str>,
    flag: &str,
) -> anyhow::Result<Result<(crate::plan::Plan, WarmupStatus), ExitStatus>> {
    let Some((plan, _)) = load_plan(plan_path, catalog)? else {
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
    Ok(Ok((plan, status)))
}

fn status(args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let (plan, status) = match judged(
        &args.plan,
        &args.catalog,
        &args.state,
        args.as_of.as_deref(),
        "--as-of",
    )? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    match args.format {
        StatusFormat::Json => write_report(
            args.output.as_deref(),
            &crate::output::pretty_json(
                &serde_json::json!({ "plan": plan.name, "warmup": status }),
            ),
        )?,
        StatusFormat::Prometheus => write_report(
            args.output.as_deref(),
            &crate::warmup::report::prometheus(&plan.name, &status),
        )?,
        StatusFormat::Table => {
            let style = plain_style(args.output.as_deref());
            write_human(
                args.output.as_deref(),
                &crate::warmup::report::table(&plan.name, &status, args.days.max(1), style.width),
                false,
            )?
        }
    }
    if let Some(path) = args.html.as_deref() {
        write_report(
            Some(path),
            &crate::warmup::html::page(&plan.name, &status, args.days.max(1)),
        )
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
    let (plan, status) = match judged(
        &args.plan,
        &args.catalog,
        &args.state,
        args.date.as_deref(),
        "--date",
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
