//! `mailshift gate PLAN [--stage NAME]`: may this stage of the migration start?

use super::common::{
    runtime, style, to_terminal, write_human, write_report, CatalogArgs, ColorChoice, DnsArgs,
};
use super::plan::{load_plan, named_stage};
use crate::dns::Resolver;
use crate::exit::ExitStatus;
use crate::gate::{default_state_path, evaluate, Decision, GateState};
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

    /// State file recording which gates have opened [default: PLAN.state.json beside the plan].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Do not record an open gate in the state file (e.g. on pull requests).
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

    #[command(flatten)]
    pub catalog: CatalogArgs,
}

pub fn run(args: GateArgs) -> anyhow::Result<ExitStatus> {
    let Some((plan, catalog)) = load_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    let state_path = args
        .state
        .clone()
        .unwrap_or_else(|| default_state_path(&args.plan));
    let mut state = GateState::load(&state_path).map_err(anyhow::Error::msg)?;
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
                    state_path.display()
                );
                return Ok(ExitStatus::Passed);
            }
        },
    };
    let dns = args.dns.config()?;
    if let Some(reason) = &args.force {
        if reason.trim().is_empty() {
            eprintln!("error: --force needs a reason (it is recorded with the opening)");
            return Ok(ExitStatus::BadInput);
        }
    }
    let mut report = runtime()?.block_on(async {
        let resolver = Resolver::new(&dns)?;
        evaluate(&resolver, &plan, &catalog, stage)
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
    Ok(match report.decision {
        Decision::Open => {
            if !args.no_record {
                state.record(&plan.name, &report);
                state.save(&state_path).map_err(anyhow::Error::msg)?;
            }
            ExitStatus::Passed
        }
        Decision::Closed => ExitStatus::ChecksFailed,
        Decision::Inconclusive => ExitStatus::Inconclusive,
    })
}
