//! `mailshift attest PLAN STEP --by NAME --note TEXT`: record that someone confirmed a step no
//! DNS query can prove (suppression list moved, webhooks switched, old API keys revoked), for
//! the gates that require `attested:STEP`.

use super::common::StateArgs;
use super::plan::load_plan;
use crate::exit::ExitStatus;
use crate::history::Attestation;
use crate::plan::Requirement;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct AttestArgs {
    /// The migration plan (TOML).
    pub plan: PathBuf,
    /// The step, as a stage names it in `requires = ["attested:STEP"]`.
    pub step: String,
    /// Who confirms it.
    #[arg(long, value_name = "NAME")]
    pub by: String,
    /// What was done, and where the proof is (a ticket, a screenshot).
    #[arg(long, value_name = "TEXT")]
    pub note: String,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub catalog: super::common::CatalogArgs,
}

pub fn run(args: AttestArgs) -> anyhow::Result<ExitStatus> {
    let Some((plan, _)) = load_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    let steps: Vec<&str> = plan
        .stages
        .iter()
        .flat_map(|s| &s.requires)
        .filter_map(|r| match r {
            Requirement::Attested(step) => Some(step.as_str()),
            _ => None,
        })
        .collect();
    let step = args.step.trim();
    if !steps.contains(&step) {
        eprintln!(
            "error: no stage of the plan requires `attested:{step}` (steps it names: {})",
            if steps.is_empty() {
                "none".to_string()
            } else {
                steps.join(", ")
            }
        );
        return Ok(ExitStatus::BadInput);
    }
    for (what, value) in [("--by", &args.by), ("--note", &args.note)] {
        if value.trim().is_empty() {
            eprintln!("error: {what} must not be empty: an attestation says who confirmed what");
            return Ok(ExitStatus::BadInput);
        }
    }
    let mut history = args.state.open(&args.plan)?;
    let attestation = Attestation {
        step: step.to_string(),
        by: args.by.trim().to_string(),
        note: args.note.trim().to_string(),
        at: crate::history::now(),
    };
    history.attest(&attestation)?;
    println!(
        "Recorded: `{}` confirmed by {} ({}).",
        crate::output::escape::text(&attestation.step),
        crate::output::escape::text(&attestation.by),
        history.path().display()
    );
    Ok(ExitStatus::Passed)
}
