//! `mailshift check`: domains in, verdicts out.

use super::common::{open_sink, runtime, to_terminal, CatalogArgs, ColorChoice, DnsArgs};
use crate::dns::Resolver;
use crate::domain::{
    parse_domains_text, parse_selector, read_domains_file, DomainName, DomainRequest, InputError,
};
use crate::engine::{check_domains, check_domains_streaming, CheckOptions, ProviderCheck};
use crate::exit::{ExitStatus, FailOn};
use crate::output::{self, ndjson, Format, Style};
use anyhow::{bail, Context};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(after_help = super::EXIT_CODES)]
pub struct CheckArgs {
    /// Domains to check (internationalised names are accepted).
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,

    /// Read domains from FILE, one per line (`-` for stdin; `#` starts a comment;
    /// `example.com selectors=s1,s2` names a line's DKIM selectors).
    #[arg(long, value_name = "FILE")]
    pub domains_file: Option<PathBuf>,

    /// DKIM selector to check (repeatable). Without one, common selectors are probed.
    #[arg(long = "selector", value_name = "NAME")]
    pub selectors: Vec<String>,

    #[command(flatten)]
    pub dns: DnsArgs,

    /// Also check the domains against this sending platform's profile (`mailshift providers`
    /// lists them): its SPF include, DKIM selectors and their targets, return path, alignment.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// With --provider: the platform's return-path (bounce) host for the domain.
    #[arg(long, value_name = "HOST", requires = "provider")]
    pub return_path: Option<String>,

    /// With --provider: a dedicated sending IP of the platform (repeatable); SPF and reverse DNS
    /// are evaluated for it.
    #[arg(long = "sending-ip", value_name = "IP", requires = "provider")]
    pub sending_ips: Vec<IpAddr>,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    /// Domains checked at the same time.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The lowest severity that fails the run (exit 1).
    #[arg(long, value_enum, default_value = "fail")]
    pub fail_on: FailOn,

    /// Report invalid domains as errors in the output and check the others (exit 2 still
    /// signals the bad input).
    #[arg(long)]
    pub keep_going: bool,

    /// When to use colour in tables (NO_COLOR is honoured in `auto`).
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    /// Show the evidence of passing findings too.
    #[arg(long, short)]
    pub verbose: bool,
}

fn gather_inputs(args: &CheckArgs) -> anyhow::Result<Vec<Result<DomainRequest, InputError>>> {
    let mut inputs = Vec::new();
    for (i, text) in args.domains.iter().enumerate() {
        inputs.push(
            DomainName::parse(text)
                .map(|domain| DomainRequest {
                    domain,
                    selectors: Vec::new(),
                })
                .map_err(|error| InputError {
                    origin: format!("argument {}", i + 1),
                    text: text.clone(),
                    error,
                }),
        );
    }
    if let Some(path) = &args.domains_file {
        let (text, source) = read_domains_file(path)?;
        inputs.extend(parse_domains_text(&text, &source));
    }
    if inputs.is_empty() {
        bail!("no domains to check: give them as arguments or with --domains-file");
    }
    Ok(inputs)
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let inputs = gather_inputs(&args)?;
    let invalid: Vec<&InputError> = inputs.iter().filter_map(|i| i.as_ref().err()).collect();
    if !invalid.is_empty() && !args.keep_going {
        for e in &invalid {
            eprintln!("error: {}", crate::output::escape::text(&e.to_string()));
        }
        eprintln!("(fix these inputs, or use --keep-going to check the valid domains anyway)");
        return Ok(ExitStatus::BadInput);
    }
    let selectors = args
        .selectors
        .iter()
        .map(|s| parse_selector(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dns = args.dns.config()?;
    let provider = match &args.provider {
        None => None,
        Some(name) => {
            let catalog = args.catalog.load()?;
            let Some(profile) = catalog.provider(name) else {
                let known: Vec<&str> = catalog.providers.iter().map(|p| p.id.as_str()).collect();
                bail!("unknown provider `{name}` (known: {})", known.join(", "));
            };
            let return_path = match &args.return_path {
                Some(h) => Some(DomainName::parse(h).context("--return-path")?),
                None => None,
            };
            Some(ProviderCheck {
                profile: profile.clone(),
                return_path,
                sending_ips: args.sending_ips.clone(),
            })
        }
    };

    let to_terminal = to_terminal(args.output.as_deref());
    let format = args.format.unwrap_or(if to_terminal {
        Format::Table
    } else {
        Format::Json
    });
    let style = Style {
        color: args.color.enabled(to_terminal),
        verbose: args.verbose,
        wrap: to_terminal,
    };
    let mut sink = open_sink(args.output.as_deref())?;
    let runtime = runtime()?;
    let total = inputs.len();
    let progress = crate::progress::Progress::new(total);
    let options = CheckOptions {
        concurrency: usize::from(args.concurrency),
        selectors,
        provider,
        ..CheckOptions::default()
    };
    let mut write_error: Option<std::io::Error> = None;
    let mut write = |sink: &mut Box<dyn Write>, text: &str| {
        if write_error.is_none() {
            if let Err(e) = sink.write_all(text.as_bytes()).and_then(|_| sink.flush()) {
                write_error = Some(e);
            }
        }
    };
    let summary = runtime.block_on(async {
        let resolver = Resolver::new(&dns)?;
        let summary = if format == Format::Ndjson {
            // Streamed: each line is written as its domain completes, and nothing is kept.
            let summary = check_domains_streaming(&resolver, inputs, &options, |_, report| {
                progress.tick(&report.domain);
                write(&mut sink, &ndjson::domain_line(&report));
            })
            .await;
            write(&mut sink, &ndjson::summary_line(&summary));
            summary
        } else {
            let run = check_domains(&resolver, inputs, &options, |report| {
                progress.tick(&report.domain);
            })
            .await;
            progress.finish();
            let text = output::formatter(format, style).format(&run);
            let text = match format {
                Format::Table => output::escape::rendered(&text, style.color),
                Format::Json | Format::Ndjson => std::borrow::Cow::Borrowed(text.as_str()),
            };
            write(&mut sink, &text);
            run.summary
        };
        anyhow::Ok(summary)
    })?;
    progress.finish();
    if let Some(e) = write_error {
        return Err(e).context("cannot write the report");
    }
    Ok(ExitStatus::of(&summary, args.fail_on))
}
