//! `mailshift plan validate|show`: read a migration plan, report its problems, or show its stages.

use super::common::{write_human, write_report, CatalogArgs};
use super::providers::ListFormat;
use crate::exit::ExitStatus;
use crate::gate::{default_state_path, GateState};
use crate::plan::Plan;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum PlanCommand {
    /// Check a plan file: every problem with file, line and field (exit 2 when invalid).
    Validate {
        plan: PathBuf,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Show the stages of a plan and what each gate requires.
    Show {
        plan: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        /// State file recording which gates have opened [default: PLAN.state.json].
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
}

/// Loads a plan, printing its problems; `None` means exit 2.
pub fn load_plan(
    path: &std::path::Path,
    catalog: &CatalogArgs,
) -> anyhow::Result<Option<(Plan, crate::catalog::Catalog)>> {
    let catalog = catalog.load()?;
    match Plan::load(path, &catalog) {
        Ok(plan) => Ok(Some((plan, catalog))),
        Err(e) => {
            eprintln!("{}", crate::output::escape::text(&e.to_string()));
            Ok(None)
        }
    }
}

pub fn run(command: PlanCommand) -> anyhow::Result<ExitStatus> {
    match command {
        PlanCommand::Validate { plan, catalog } => {
            let Some((p, _)) = load_plan(&plan, &catalog)? else {
                return Ok(ExitStatus::BadInput);
            };
            println!(
                "{} is valid: \"{}\", {} → {}, {} domain{}, {} stages, {} override{}.",
                plan.display(),
                p.name,
                p.from,
                p.to,
                p.domains.len(),
                if p.domains.len() == 1 { "" } else { "s" },
                p.stages.len(),
                p.overrides.len(),
                if p.overrides.len() == 1 { "" } else { "s" },
            );
            Ok(ExitStatus::Passed)
        }
        PlanCommand::Show {
            plan,
            format,
            state,
            catalog,
        } => {
            let Some((p, _)) = load_plan(&plan, &catalog)? else {
                return Ok(ExitStatus::BadInput);
            };
            let state_path = state.unwrap_or_else(|| default_state_path(&plan));
            let state = GateState::load(&state_path).map_err(anyhow::Error::msg)?;
            let text = match format {
                ListFormat::Json => {
                    let doc = serde_json::json!({ "plan": p, "passed": state.passed });
                    serde_json::to_string_pretty(&doc)? + "\n"
                }
                ListFormat::Table => {
                    let mut table = crate::output::new_table(false, true);
                    table.set_header(vec![
                        "#",
                        "stage",
                        "gate requires",
                        "platforms sending",
                        "gate",
                    ]);
                    for (i, s) in p.stages.iter().enumerate() {
                        let requires: Vec<String> =
                            s.requires.iter().map(|r| r.to_string()).collect();
                        let sending = if p.before_cutover(i) {
                            format!("{} + {}", p.from, p.to)
                        } else {
                            format!("{} only", p.to)
                        };
                        let passed = state
                            .passed
                            .iter()
                            .find(|x| x.stage == s.name)
                            .map_or("not yet opened".to_string(), |x| {
                                format!("opened {}", x.opened_at)
                            });
                        let name = match &s.description {
                            Some(d) => format!(
                                "{}{}\n{d}",
                                s.name,
                                if s.cutover { " (cutover)" } else { "" }
                            ),
                            None => {
                                format!("{}{}", s.name, if s.cutover { " (cutover)" } else { "" })
                            }
                        };
                        table.add_row(crate::output::row(vec![
                            (i + 1).to_string(),
                            name,
                            if requires.is_empty() {
                                "nothing".into()
                            } else {
                                requires.join(", ")
                            },
                            sending,
                            passed,
                        ]));
                    }
                    let domains: Vec<String> =
                        p.domains.iter().map(|d| d.name.to_string()).collect();
                    format!(
                        "\"{}\": {} → {}; domains: {}; policies: {}\n{table}\n",
                        p.name,
                        p.from,
                        p.to,
                        domains.join(", "),
                        if p.policies.is_empty() {
                            "none".into()
                        } else {
                            p.policies.join(", ")
                        }
                    )
                }
            };
            match format {
                ListFormat::Json => write_report(None, &text)?,
                ListFormat::Table => write_human(None, &text, false)?,
            }
            Ok(ExitStatus::Passed)
        }
    }
}
