//! `mailshift providers`: the sending platforms mailshift knows, and what each needs in DNS.

use super::common::{write_human, write_report, CatalogArgs};
use crate::catalog::providers::{DkimRecordKind, ReturnPathKind, SpfPlacement};
use crate::exit::ExitStatus;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ProvidersArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(serde::Serialize)]
struct Row<'a> {
    id: &'a str,
    name: &'a str,
    kind: crate::catalog::providers::ProviderKind,
    spf_includes: Vec<&'a str>,
    spf_placement: Option<SpfPlacement>,
    dkim_selectors: Vec<&'a str>,
    per_account_selectors: bool,
    dkim_record: Option<DkimRecordKind>,
    return_path: Option<ReturnPathKind>,
    spf_can_align: Option<bool>,
    docs: &'a str,
}

pub fn run(args: ProvidersArgs) -> anyhow::Result<ExitStatus> {
    let catalog = args.catalog.load()?;
    let mut providers: Vec<_> = catalog.providers.iter().collect();
    providers.sort_by(|a, b| a.id.cmp(&b.id));
    let rows: Vec<Row> = providers
        .iter()
        .map(|p| Row {
            id: &p.id,
            name: &p.name,
            kind: p.kind,
            spf_includes: p
                .spf
                .iter()
                .flat_map(|s| s.includes.iter().map(String::as_str))
                .collect(),
            spf_placement: p.spf.as_ref().map(|s| s.placement),
            dkim_selectors: p
                .dkim
                .iter()
                .flat_map(|d| d.selectors.iter().map(String::as_str))
                .collect(),
            per_account_selectors: p.dkim.as_ref().is_some_and(|d| d.per_account_selectors),
            dkim_record: p.dkim.as_ref().map(|d| d.record),
            return_path: p.return_path.as_ref().map(|r| r.kind),
            spf_can_align: p.return_path.as_ref().map(|r| r.aligns),
            docs: p.docs.first().map(String::as_str).unwrap_or_default(),
        })
        .collect();
    let text = match args.format {
        ListFormat::Json => crate::output::pretty_json(&serde_json::json!({ "providers": rows })),
        ListFormat::Table => {
            let width = super::common::plain_style(args.output.as_deref()).width;
            let mut table = crate::output::new_table(false, width);
            table.set_header(vec![
                "id",
                "platform",
                "SPF include (where)",
                "DKIM selectors",
                "return path",
            ]);
            let name = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            for r in &rows {
                let spf = if r.spf_includes.is_empty() {
                    "-".to_string()
                } else {
                    format!(
                        "{} ({})",
                        r.spf_includes.join(", "),
                        name(r.spf_placement.map(|p| {
                            serde_json::to_value(p)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default()
                        }))
                    )
                };
                let dkim = if r.per_account_selectors {
                    "per account".to_string()
                } else if r.dkim_selectors.is_empty() {
                    "-".to_string()
                } else {
                    r.dkim_selectors.join(", ")
                };
                let rp = match (r.return_path, r.spf_can_align) {
                    (Some(kind), Some(aligns)) => format!(
                        "{}{}",
                        serde_json::to_value(kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        if aligns {
                            ", aligns"
                        } else {
                            ", SPF cannot align"
                        }
                    ),
                    _ => "-".into(),
                };
                table.add_row(crate::output::row(vec![
                    r.id.to_string(),
                    r.name.to_string(),
                    spf,
                    dkim,
                    rp,
                ]));
            }
            let note = format!(
                "{} platforms. Details: checks/providers/<id>.toml; add your own with --checks-dir.",
                rows.len()
            );
            format!("{table}\n{}\n", crate::output::wrap(&note, width, ""))
        }
    };
    match args.format {
        ListFormat::Json => write_report(args.output.as_deref(), &text)?,
        ListFormat::Table => write_human(args.output.as_deref(), &text, false)?,
    }
    Ok(ExitStatus::Passed)
}
