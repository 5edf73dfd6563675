//! `mailshift history PLAN`: the plan's timeline — gate evaluations and openings, attestations
//! and evidence imports — from its state directory.

use super::common::{plain_style, write_human, write_report, CatalogArgs, StateArgs};
use super::providers::ListFormat;
use crate::exit::ExitStatus;
use crate::history::History;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The migration plan (TOML); its state directory is read.
    pub plan: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// The seed tests of the plan, from its seed store, as timeline entries (sent, and how each
/// arrived); none when the plan has no `[seed]` or nothing was sent.
fn seed_events(args: &HistoryArgs) -> anyhow::Result<Vec<serde_json::Value>> {
    let catalog = args.catalog.load()?;
    let Ok(plan) = crate::plan::Plan::load(&args.plan, &catalog) else {
        return Ok(Vec::new());
    };
    let Some(seed) = &plan.seed else {
        return Ok(Vec::new());
    };
    let within = std::time::Duration::from_secs(seed.within_minutes * 60);
    let redactor = crate::seed::send::redactor(seed);
    let Some(results) = crate::seed::results::load(&seed.store, None, within, &redactor)? else {
        return Ok(Vec::new());
    };
    Ok(results
        .outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "sent_at": o.sent.sent_at,
                "stage": o.sent.stage,
                "recipient": o.sent.recipient,
                "token": o.sent.token,
                "status": o.status,
                "received_at": o.arrival.as_ref().map(|a| a.received_at.clone()),
            })
        })
        .collect())
}

/// One line of the timeline.
struct Event {
    at: String,
    kind: &'static str,
    subject: String,
    what: String,
}

pub fn run(args: HistoryArgs) -> anyhow::Result<ExitStatus> {
    let dir = args.state.dir(&args.plan);
    let Some(history) = History::open_existing(&dir)? else {
        let state = args.state.gate_state(&args.plan)?;
        let text = match args.format {
            ListFormat::Json => crate::output::pretty_json(&serde_json::json!({
                "state_dir": dir,
                "openings": state.passed,
                "decisions": [],
                "attestations": [],
                "imports": [],
            })),
            ListFormat::Table => format!(
                "No history yet in {} ({}).\n",
                dir.display(),
                crate::words::count(state.passed.len(), "gate opening", "gate openings")
            ),
        };
        write_report(args.output.as_deref(), &text)?;
        return Ok(ExitStatus::Passed);
    };
    let seeds = seed_events(&args)?;
    let openings = history.openings()?;
    let decisions = history.decisions()?;
    let attestations = history.attestations()?;
    let imports = history.imports()?;
    match args.format {
        ListFormat::Json => {
            let doc = serde_json::json!({
                "state_dir": dir,
                "database": history.path(),
                "openings": openings,
                "decisions": decisions,
                "attestations": attestations,
                "imports": imports,
                "seeds": seeds,
            });
            write_report(args.output.as_deref(), &crate::output::pretty_json(&doc))?;
        }
        ListFormat::Table => {
            let mut events: Vec<Event> = Vec::new();
            for o in &openings {
                let mut what = "opened".to_string();
                if let Some(reason) = &o.forced {
                    what.push_str(&format!(" (forced: {reason})"));
                }
                if let Some(d) = &o.records_digest {
                    what.push_str(&format!(
                        "; {} read, digest {}",
                        crate::words::count(o.records_seen, "answer", "answers"),
                        d.get(..12).unwrap_or(d)
                    ));
                }
                events.push(Event {
                    at: o.opened_at.clone(),
                    kind: "opening",
                    subject: o.stage.clone(),
                    what,
                });
            }
            for d in &decisions {
                events.push(Event {
                    at: d.at.clone(),
                    kind: if d.kind == "gate" { "gate" } else { "warmup" },
                    subject: d.subject.clone(),
                    what: format!("{}: {}", d.decision, d.summary),
                });
            }
            for a in &attestations {
                events.push(Event {
                    at: a.at.clone(),
                    kind: "attested",
                    subject: a.step.clone(),
                    what: format!("by {}: {}", a.by, a.note),
                });
            }
            for i in &imports {
                events.push(Event {
                    at: i.imported_at.clone(),
                    kind: "import",
                    subject: i.kind.clone(),
                    what: format!(
                        "{}: {}, {}, {}",
                        i.path,
                        crate::words::count(i.records as usize, "record", "records"),
                        crate::words::count(i.duplicates as usize, "duplicate", "duplicates"),
                        crate::words::count(i.rejected as usize, "rejected", "rejected"),
                    ),
                });
            }
            for seed in &seeds {
                let text = |k: &str| {
                    seed.get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                events.push(Event {
                    at: text("sent_at"),
                    kind: "seed",
                    subject: text("stage"),
                    what: format!(
                        "to {}: {}{}",
                        text("recipient"),
                        text("status"),
                        match seed.get("received_at").and_then(|v| v.as_str()) {
                            Some(at) => format!(", arrived {at}"),
                            None => ", not arrived".into(),
                        }
                    ),
                });
            }
            // Within one second, what a gate read comes before its decision, and the decision
            // before the opening it made.
            let rank = |kind: &str| match kind {
                "import" => 0,
                "attested" => 1,
                "seed" => 2,
                "opening" => 4,
                _ => 3,
            };
            events.sort_by(|a, b| a.at.cmp(&b.at).then(rank(a.kind).cmp(&rank(b.kind))));
            let style = plain_style(args.output.as_deref());
            let mut table = crate::output::new_table(false, style.width);
            table.set_header(vec!["when", "what", "subject", "detail"]);
            for e in &events {
                table.add_row(crate::output::row([
                    e.at.as_str(),
                    e.kind,
                    e.subject.as_str(),
                    e.what.as_str(),
                ]));
            }
            let text = format!(
                "History of {} ({}):\n{table}\n",
                args.plan.display(),
                history.path().display()
            );
            write_human(args.output.as_deref(), &text, false)?;
        }
    }
    Ok(ExitStatus::Passed)
}
