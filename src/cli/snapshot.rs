//! `mailshift snapshot DOMAIN… --output FILE.zone` and `mailshift snapshot diff OLD NEW`.

use super::common::{describe_source, runtime, write_human, write_report, CatalogArgs, DnsArgs};
use super::plan::load_plan;
use crate::dns::Resolver;
use crate::domain::{parse_selector, DomainName};
use crate::exit::ExitStatus;
use crate::fetch::{probe_selectors, Selector};
use crate::snapshot::Request;
use anyhow::{bail, Context};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: Option<SnapshotCommand>,

    /// Domains to back up.
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,

    /// Also back up the plan's domains, its platforms' selectors (at the domain each signs as),
    /// return-path and tracking hosts.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,

    /// More DKIM selectors to look up at every domain (repeatable); the plan's and the common
    /// ones (checks/dkim-selectors.toml) are always looked up.
    #[arg(long = "selector", value_name = "NAME")]
    pub selectors: Vec<String>,

    /// The zone file to write (`-` for standard output).
    #[arg(long, short, value_name = "FILE.zone")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub dns: DnsArgs,

    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// What changed between two snapshots, in words (exit 0 when nothing did, 1 when something did).
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// `text` lines, or a JSON list of changes.
        #[arg(long, value_enum, default_value = "text")]
        format: DiffFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
}

pub fn run(args: SnapshotArgs) -> anyhow::Result<ExitStatus> {
    if let Some(SnapshotCommand::Diff { old, new, format }) = &args.command {
        let changes = match crate::snapshot::diff(old, new) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {}", crate::output::escape::text(&e.to_string()));
                return Ok(ExitStatus::BadInput);
            }
        };
        let text = match format {
            DiffFormat::Json => {
                crate::output::pretty_json(&serde_json::json!({ "changes": changes }))
            }
            DiffFormat::Text if changes.is_empty() => "No changes.\n".to_string(),
            DiffFormat::Text => changes
                .iter()
                .map(|c| format!("{:<8} {}\n", c.kind, c.summary))
                .collect(),
        };
        match format {
            DiffFormat::Json => write_report(None, &text)?,
            DiffFormat::Text => write_human(None, &text, false)?,
        }
        return Ok(if changes.is_empty() {
            ExitStatus::Passed
        } else {
            ExitStatus::ChecksFailed
        });
    }
    let Some(output) = &args.output else {
        bail!("say where to write the snapshot: --output FILE.zone (or --output - for standard output)");
    };
    let explicit: Vec<Selector> = args
        .selectors
        .iter()
        .map(|s| {
            parse_selector(s)
                .map(|name| Selector {
                    name,
                    used_by: None,
                    explicit: true,
                })
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut request = Request::new(probe_selectors(&crate::catalog::common_dkim_selectors()));
    for text in &args.domains {
        request.add_domain(DomainName::parse(text)?, explicit.iter().cloned());
    }
    if let Some(plan_path) = &args.plan {
        let Some((plan, catalog)) = load_plan(plan_path, &args.catalog)? else {
            return Ok(ExitStatus::BadInput);
        };
        request.add_plan(&plan, &catalog);
        // `--selector` names selectors for every domain, the plan's too.
        for d in &plan.domains {
            request.add_domain(d.name.clone(), explicit.iter().cloned());
        }
    }
    if request.domains.is_empty() {
        bail!("no domains to back up: name them, or give --plan");
    }
    let dns = args.dns.config()?;
    let source = describe_source(&dns);
    let snapshot = runtime()?.block_on(async {
        let resolver = Resolver::new(&dns)?;
        anyhow::Ok(crate::snapshot::take(&resolver, &request, source).await)
    })?;
    let text = crate::snapshot::render(&snapshot);
    let target = (output.as_os_str() != "-").then_some(output.as_path());
    write_report(target, &text)
        .with_context(|| format!("cannot write the snapshot to {}", output.display()))?;
    if let Some(path) = target {
        eprintln!(
            "Wrote {} records for {} domain(s) to {}.",
            snapshot.record_count(),
            snapshot.domains.len(),
            path.display()
        );
        if !snapshot.notes.is_empty() {
            eprintln!(
                "Not everything was kept as it was live; the file's header says what ({} note(s)).",
                snapshot.notes.len()
            );
        }
    }
    Ok(ExitStatus::Passed)
}
