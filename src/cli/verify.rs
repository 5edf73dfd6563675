//! `mailshift verify`: saved messages in, verdicts out.

use super::common::{open_sink, runtime, style, to_terminal, ColorChoice, DnsArgs};
use crate::dns::Resolver;
use crate::exit::{ExitStatus, FailOn};
use crate::verify::input::{expand, Messages};
use crate::verify::report::{self, VerifiedMessage, VerifyRun, VerifySummary};
use crate::verify::{error_verdict, verify_message, Envelope};
use anyhow::Context;
use futures::StreamExt;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

/// How `mailshift verify` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    /// A row per message, then the findings of the messages that did not pass.
    Table,
    /// `{"messages":[{"source":…,"verdict":{…}}],"summary":{…}}`.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = super::EXIT_CODES)]
pub struct VerifyArgs {
    /// Messages to verify: .eml files, mbox files, or directories (their *.eml files, or every
    /// file when there is none).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// The IP address of the client that delivered the messages, for SPF [default: the
    /// receiver's Received-SPF or Received header].
    #[arg(long, value_name = "IP")]
    pub ip: Option<IpAddr>,

    /// The client's HELO/EHLO name [default: from the same header as the IP].
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,

    /// The envelope sender (MAIL FROM; '' for the null sender) [default: the Return-Path
    /// header].
    #[arg(long, value_name = "ADDR")]
    pub mail_from: Option<String>,

    #[command(flatten)]
    pub dns: DnsArgs,

    /// Messages verified at the same time.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<VerifyFormat>,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The lowest severity that fails the run (exit 1).
    #[arg(long, value_enum, default_value = "fail")]
    pub fail_on: FailOn,

    /// When to use colour in tables (NO_COLOR is honoured in `auto`).
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    /// Show the findings of passing messages too.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitStatus> {
    let inputs = match expand(&args.paths) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {}", crate::output::escape::text(&e.to_string()));
            return Ok(ExitStatus::BadInput);
        }
    };
    let dns = args.dns.config()?;
    let envelope = Envelope {
        ip: args.ip,
        helo: args.helo.clone(),
        mail_from: args.mail_from.clone(),
        rcpt: Vec::new(),
    };
    let to_terminal = to_terminal(args.output.as_deref());
    let format = args.format.unwrap_or(if to_terminal {
        VerifyFormat::Table
    } else {
        VerifyFormat::Json
    });
    let style = style(args.color, args.verbose, args.output.as_deref());
    let started = Instant::now();
    let runtime = runtime()?;
    let run = runtime.block_on(async {
        let resolver = Resolver::new(&dns)?;
        // Each message is verified on its own task (so both cores work), at most
        // `--concurrency` at a time, in input order.
        let messages: Vec<VerifiedMessage> = futures::stream::iter(Messages::new(inputs))
            .map(|item| {
                let resolver = resolver.clone();
                let envelope = envelope.clone();
                tokio::spawn(async move {
                    let verdict = match &item.raw {
                        Ok(raw) => verify_message(&resolver, raw, &envelope).await,
                        Err(e) => error_verdict(e.clone()),
                    };
                    VerifiedMessage {
                        source: item.source,
                        verdict,
                    }
                })
            })
            .buffered(usize::from(args.concurrency))
            .map(|joined| {
                joined.unwrap_or_else(|e| VerifiedMessage {
                    source: "?".into(),
                    verdict: error_verdict(format!("the verification stopped: {e}")),
                })
            })
            .collect()
            .await;
        let mut summary = VerifySummary::default();
        for m in &messages {
            summary.add(m.verdict.status);
        }
        summary = summary.with_dns(resolver.stats());
        summary.elapsed_ms = started.elapsed().as_millis() as u64;
        anyhow::Ok(VerifyRun { messages, summary })
    })?;
    let text = match format {
        VerifyFormat::Json => report::json(&run),
        VerifyFormat::Table => report::table(&run, style),
    };
    let text = match format {
        VerifyFormat::Json => std::borrow::Cow::Borrowed(text.as_str()),
        VerifyFormat::Table => crate::output::escape::rendered(&text, style.color),
    };
    let mut sink = open_sink(args.output.as_deref())?;
    sink.write_all(text.as_bytes())
        .and_then(|_| sink.flush())
        .context("cannot write the report")?;
    if run.summary.messages == 0 {
        eprintln!("error: no messages found in the given paths");
        return Ok(ExitStatus::BadInput);
    }
    Ok(ExitStatus::of(
        &run.summary.as_check_summary(),
        args.fail_on,
    ))
}
