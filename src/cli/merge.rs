//! `mailshift check merge`: the ndjson reports of a sharded run in, one report out.

use super::check::MergeArgs;
use super::common::{open_sink, style, to_terminal, ColorChoice};
use crate::engine::CheckRun;
use crate::exit::ExitStatus;
use crate::merge::merge;
use crate::output::{self, ndjson, Format};
use anyhow::Context;
use std::io::Write;

pub fn run(args: MergeArgs) -> anyhow::Result<ExitStatus> {
    let mut sink = open_sink(args.output.as_deref())?;
    let mut reports = Vec::new();
    let mut write_error: Option<std::io::Error> = None;
    let merged = merge(
        &args.reports,
        args.allow_partial,
        |text, report| match args.format {
            // Streamed: each domain's line is copied as it is read.
            Format::Ndjson => {
                if write_error.is_none() {
                    if let Err(e) = sink
                        .write_all(text.as_bytes())
                        .and_then(|_| sink.write_all(b"\n"))
                    {
                        write_error = Some(e);
                    }
                }
            }
            Format::Json | Format::Table | Format::Csv => reports.push(report),
        },
    );
    let summary = match merged {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("error: {}", output::escape::text(&e.to_string()));
            return Ok(ExitStatus::BadInput);
        }
    };
    if let Some(e) = write_error {
        return Err(e).context("cannot write the merged report");
    }
    let text = match args.format {
        Format::Ndjson => ndjson::summary_line(&summary),
        Format::Json | Format::Table | Format::Csv => {
            let tty = to_terminal(args.output.as_deref());
            let style = style(ColorChoice::Never, false, args.output.as_deref());
            let run = CheckRun {
                domains: reports,
                summary: summary.clone(),
            };
            let text = output::formatter(args.format, style).format(&run);
            match args.format {
                Format::Table => output::escape::rendered(&text, false).into_owned(),
                // Exact strings for files and pipes; escaped on a terminal (see `check`).
                Format::Csv if tty => output::escape::rendered(&text, false).into_owned(),
                _ => text,
            }
        }
    };
    sink.write_all(text.as_bytes())
        .and_then(|_| sink.flush())
        .context("cannot write the merged report")?;
    let partial = summary.merged.as_ref().is_some_and(|m| m.partial());
    Ok(match ExitStatus::of(&summary, args.fail_on) {
        // A partial merge is an incomplete verdict, unless something failed anyway.
        ExitStatus::Passed if partial => ExitStatus::Inconclusive,
        status => status,
    })
}
