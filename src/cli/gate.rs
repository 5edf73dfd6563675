//! `mailshift gate PLAN [--stage NAME]`: may this stage of the migration start?

use super::common::{
    runtime, style, to_terminal, write_human, write_report, CatalogArgs, ColorChoice, DnsArgs,
    StateArgs,
};
use super::plan::{load_plan, named_stage};
use crate::dns::Resolver;
use crate::exit::ExitStatus;
use crate::gate::{evaluate, Decision, GateState};
use crate::output::gate::{formatter, GateFormat};
use crate::output::Style;
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the gate is open, 1 closed, 2 bad plan or invocation, 3 inconclusive (DNS errors)."
)]
pub struct GateArgs {
    /// The migration plan (TOML).
    pub plan: PathBuf,

    /// The stage whose gate to evaluate [default: the next stage not yet passed].
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<GateFormat>,

    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub state: StateArgs,

    /// Record nothing in the history: neither the decision nor an opening (e.g. on pull
    /// requests).
    #[arg(long)]
    pub no_record: bool,

    /// Evaluate a stage although an earlier stage's gate has not opened; the reason is shown
    /// and recorded with the opening.
    #[arg(long, value_name = "REASON")]
    pub force: Option<String>,

    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    #[command(flatten)]
    pub dns: DnsArgs,

    /// For the `dnssec` requirement: validate from the DS or DNSKEY records in FILE instead of
    /// the root's keys (an internal signed zone, or a test zone).
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,

    #[command(flatten)]
    pub catalog: CatalogArgs,
}

pub fn run(args: GateArgs) -> anyhow::Result<ExitStatus> {
    let Some((plan, catalog)) = load_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    let state: GateState = args.state.gate_state(&args.plan)?;
    let stage = match &args.stage {
        Some(name) => match named_stage(&plan, name) {
            Some(i) => i,
            None => return Ok(ExitStatus::BadInput),
        },
        None => match state.next_stage(&plan) {
            Some((i, _)) => i,
            None => {
                println!(
                    "Every stage of \"{}\" has passed its gate (state: {}).",
                    plan.name,
                    args.state.dir(&args.plan).display()
                );
                return Ok(ExitStatus::Passed);
            }
        },
    };
    let dns = args.dns.config()?;
    // The opt-in requirements' settings: made only when the stage requires them, so a bad
    // --trust-anchor does not stop a stage that does not use it.
    let options = crate::gate::GateOptions {
        dnssec: if plan.stage_requires(stage, &crate::plan::Requirement::Dnssec) {
            super::common::dnssec_request(args.trust_anchor.as_deref(), true)?
        } else {
            None
        },
        smtp: if plan.stage_requires(stage, &crate::plan::Requirement::Smtp) {
            Some(super::common::smtp_prober(&args.dns, &dns)?)
        } else {
            None
        },
    };
    if let Some(reason) = &args.force {
        if reason.trim().is_empty() {
            eprintln!("error: --force needs a reason (it is recorded with the opening)");
            return Ok(ExitStatus::BadInput);
        }
    }
    // The plan's warmup evidence is imported first (into a scratch copy with --no-record).
    let history = match super::warmup_import::plan_history(
        &args.plan,
        &plan,
        &args.state,
        !args.no_record,
    )? {
        Ok(history) => history,
        Err(code) => return Ok(code),
    };
    let warmup = match &plan.warmup {
        Some(w) => {
            let evidence = match &history {
                Some(h) => crate::warmup::evidence::Evidence::load(h)?,
                None => crate::warmup::evidence::Evidence::default(),
            };
            let domains: Vec<String> = plan.domains.iter().map(|d| d.name.to_string()).collect();
            Some(crate::warmup::decide::judge(
                w,
                &plan.pools,
                &domains,
                &evidence,
                super::warmup::today(w.utc_offset_minutes),
            ))
        }
        None => None,
    };
    let mut ledger = crate::gate::Ledger {
        attestations: match &history {
            Some(h) => h.attestations()?,
            None => Vec::new(),
        },
        warmup,
        observed_before: match &history {
            Some(h) => h.last_observation("gate")?,
            None => None,
        },
        reports: None,
    };
    // `dmarc-enforced` reads the imported aggregate reports.
    let wants_reports = plan.stage_requires(stage, &crate::plan::Requirement::DmarcEnforced);
    let report_rows = match (&history, wants_reports) {
        (Some(h), true) => {
            let rows = crate::reports::summary::load_rows(h)?;
            (!rows.is_empty()).then_some(rows)
        }
        _ => None,
    };
    drop(history);
    let mut report = runtime()?.block_on(async {
        let resolver = Resolver::new(&dns)?;
        if let Some(rows) = &report_rows {
            ledger.reports = Some(
                crate::reports::sources::enforcement(
                    &resolver,
                    &plan,
                    &catalog,
                    rows,
                    plan.enforcement,
                )
                .await,
            );
        }
        evaluate(&resolver, &plan, &catalog, stage, &ledger, &options)
            .await
            .map_err(anyhow::Error::msg)
    })?;
    state.judge_order(&plan, &mut report, args.force.as_deref());
    let tty = to_terminal(args.output.as_deref());
    let format = args.format.unwrap_or(if tty {
        GateFormat::Table
    } else {
        GateFormat::Json
    });
    let mut style = style(args.color, false, args.output.as_deref());
    style.color &= format == GateFormat::Table;
    let text = formatter(format, style).format(&report);
    match format {
        GateFormat::Json => write_report(args.output.as_deref(), &text)?,
        // JUnit is XML, which cannot carry control characters at all.
        _ => write_human(args.output.as_deref(), &text, style.color)?,
    }
    if format == GateFormat::Github {
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
            let markdown = formatter(GateFormat::Markdown, Style::default()).format(&report);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
                .and_then(|mut f| {
                    f.write_all(crate::output::escape::rendered(&markdown, false).as_bytes())
                })
                .with_context(|| {
                    format!(
                        "cannot append to GITHUB_STEP_SUMMARY ({})",
                        PathBuf::from(&summary).display()
                    )
                })?;
        }
    }
    if !args.no_record {
        // Every evaluation joins the timeline; an open gate is also an opening.
        let mut history = args.state.open(&args.plan)?;
        history.record_decision(
            &crate::history::DecisionRecord {
                at: crate::history::now(),
                kind: "gate".into(),
                subject: report.stage.clone(),
                decision: format!("{:?}", report.decision).to_lowercase(),
                summary: report
                    .requirements
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}",
                            r.requirement,
                            crate::output::gate::status_word(r.status)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                digest: report.records_digest.clone(),
            },
            serde_json::to_value(&report).ok().as_ref(),
        )?;
        if report.decision == Decision::Open {
            history.record_opening(&plan.name, &GateState::opening(&report))?;
        }
        // What this run read is the next run's basis for drift; a lookup that failed now, or a
        // name not read this time, keeps what was read before (`Observed::keep_known`).
        if let Some(mut observed) = report.observed.take() {
            if let Some((_, before)) = &ledger.observed_before {
                observed.keep_known(before);
            }
            history.record_observation("gate", &observed)?;
        }
    }
    Ok(match report.decision {
        Decision::Open => ExitStatus::Passed,
        Decision::Closed => ExitStatus::ChecksFailed,
        Decision::Inconclusive => ExitStatus::Inconclusive,
    })
}
