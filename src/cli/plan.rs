//! `mailshift plan validate|show|records`: read a migration plan, report its problems, show its
//! stages, or print the DNS changes a stage needs.

use super::common::{runtime, write_human, write_report, CatalogArgs, DnsArgs, StateArgs};
use super::providers::ListFormat;
use crate::exit::ExitStatus;
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
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Print every DNS change a stage needs: the exact records its checks propose, merged per
    /// record, as a zone-file fragment or JSON for review or a DNS-as-code tool (exit 0 when
    /// nothing needs to change, 1 when changes are listed, 3 when a lookup failed).
    Records(RecordsArgs),
}

#[derive(Debug, clap::Args)]
pub struct RecordsArgs {
    pub plan: PathBuf,
    /// The stage [default: the next stage whose gate has not opened].
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    #[arg(long, value_enum, default_value = "zone")]
    pub format: RecordsFormat,
    /// TTL written on the records of the zone fragment.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u32,
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// How `plan records` writes the changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordsFormat {
    /// A zone-file fragment: additions as records, replacements with the old record in a
    /// comment, removals and reasons as comments.
    Zone,
    /// One JSON document: `changes` as `{action, name, type, value, old, because}`.
    Json,
}

/// The index of the stage called `name`; `None` (after saying which stages there are) means
/// exit 2.
pub fn named_stage(plan: &Plan, name: &str) -> Option<usize> {
    if let Some((i, _)) = plan.stage(name) {
        return Some(i);
    }
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "error: the plan has no stage `{name}` (stages: {})",
        names.join(", ")
    );
    None
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

fn records(args: RecordsArgs) -> anyhow::Result<ExitStatus> {
    let Some((plan, catalog)) = load_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    let stage = match &args.stage {
        Some(name) => match named_stage(&plan, name) {
            Some(i) => i,
            None => return Ok(ExitStatus::BadInput),
        },
        None => {
            let state = args.state.gate_state(&args.plan)?;
            match state.next_stage(&plan) {
                Some((i, _)) => i,
                None => plan.stages.len().saturating_sub(1),
            }
        }
    };
    let dns = args.dns.config()?;
    // dmarc-enforced's record is asked for once the imported reports allow it.
    let wants_reports = plan.stage_requires(stage, &crate::plan::Requirement::DmarcEnforced);
    let rows = if wants_reports {
        match super::warmup_import::plan_history(&args.plan, &plan, &args.state, false)? {
            Ok(Some(h)) => crate::reports::summary::load_rows(&h)?,
            Ok(None) => Vec::new(),
            Err(code) => return Ok(code),
        }
    } else {
        Vec::new()
    };
    let changes = runtime()?.block_on(async {
        let resolver = crate::dns::Resolver::new(&dns)?;
        let mut ledger = crate::gate::Ledger::default();
        if !rows.is_empty() {
            ledger.reports = Some(
                crate::reports::sources::enforcement(
                    &resolver,
                    &plan,
                    &catalog,
                    &rows,
                    plan.enforcement,
                )
                .await,
            );
        }
        crate::changes::for_stage(&resolver, &plan, &catalog, stage, &ledger)
            .await
            .map_err(anyhow::Error::msg)
    })?;
    match args.format {
        RecordsFormat::Json => write_report(
            args.output.as_deref(),
            &crate::output::pretty_json(&changes),
        )?,
        RecordsFormat::Zone => write_human(
            args.output.as_deref(),
            &crate::changes::zone_text(&changes, args.ttl),
            false,
        )?,
    }
    Ok(if !changes.inconclusive.is_empty() {
        ExitStatus::Inconclusive
    } else if changes.is_empty() {
        ExitStatus::Passed
    } else {
        ExitStatus::ChecksFailed
    })
}

/// The old (or new) platforms of the plan's sending domains, each once, in plan order.
fn platforms(plan: &Plan, old: bool) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for d in plan.domains.iter().filter(|d| d.sending) {
        let side = if old { &d.old } else { &d.new };
        if let Some(setup) = side {
            if !ids.contains(&setup.platform.as_str()) {
                ids.push(&setup.platform);
            }
        }
    }
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.join(", ")
    }
}

pub fn run(command: PlanCommand) -> anyhow::Result<ExitStatus> {
    match command {
        PlanCommand::Records(args) => records(args),
        PlanCommand::Validate { plan, catalog } => {
            let Some((p, _)) = load_plan(&plan, &catalog)? else {
                return Ok(ExitStatus::BadInput);
            };
            use crate::words::count;
            println!(
                "{} is valid: \"{}\", {} → {}, {}, {}, {}.",
                plan.display(),
                p.name,
                platforms(&p, true),
                platforms(&p, false),
                count(p.domains.len(), "domain", "domains"),
                count(p.stages.len(), "stage", "stages"),
                count(p.overrides.len(), "override", "overrides"),
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
            let state = state.gate_state(&plan)?;
            let text = match format {
                ListFormat::Json => {
                    let doc = serde_json::json!({ "plan": p, "passed": state.passed });
                    crate::output::pretty_json(&doc)
                }
                ListFormat::Table => {
                    let width = super::common::plain_style(None).width;
                    let mut table = crate::output::new_table(false, width);
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
                            format!("{} + {}", platforms(&p, true), platforms(&p, false))
                        } else {
                            format!("{} only", platforms(&p, false))
                        };
                        let passed = state.passed.iter().find(|x| x.stage == s.name).map_or(
                            "not yet opened".to_string(),
                            |x| {
                                let forced = match &x.forced {
                                    Some(reason) => format!("\nforced: {reason}"),
                                    None => String::new(),
                                };
                                format!("opened {}{forced}", x.opened_at)
                            },
                        );
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
                    let head = format!(
                        "\"{}\": {} → {}; domains: {}; policies: {}",
                        crate::output::escape::text(&p.name),
                        p.from,
                        p.to,
                        domains.join(", "),
                        if p.policies.is_empty() {
                            "none".into()
                        } else {
                            p.policies.join(", ")
                        }
                    );
                    format!("{}\n{table}\n", crate::output::wrap(&head, width, "  "))
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
