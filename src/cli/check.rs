//! `mailshift check`: domains in, verdicts out.

use crate::dns::{DnsConfig, Resolver};
use crate::domain::{
    parse_domains_text, parse_selector, read_domains_file, DomainName, DomainRequest, InputError,
};
use crate::engine::{check_domains, check_domains_streaming, CheckOptions};
use crate::exit::{ExitStatus, FailOn};
use crate::output::{self, ndjson, Format, Style};
use anyhow::{bail, Context};
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

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

/// Where DNS answers come from.
#[derive(Debug, Clone, clap::Args)]
pub struct DnsArgs {
    /// Ask this server instead of the system resolver: IP, IP:PORT or [IPv6]:PORT
    /// (repeatable; point it at the domain's authoritative servers to check unpropagated records).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
    pub nameserver: Vec<SocketAddr>,

    /// Answer names inside these zones from an RFC 1035 zone file, or a directory of *.zone
    /// files (repeatable): checks draft records before they are published.
    #[arg(long, value_name = "PATH")]
    pub zone: Vec<PathBuf>,

    /// Never use the network; names outside --zone files are inconclusive.
    #[arg(long)]
    pub offline: bool,

    /// Seconds to wait for each DNS answer.
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    pub timeout: f64,

    /// Extra attempts after a DNS timeout or SERVFAIL.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub retries: usize,
}

impl DnsArgs {
    pub fn config(&self) -> anyhow::Result<DnsConfig> {
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 300.0) {
            bail!(
                "--timeout must be between 0 and 300 seconds (got {})",
                self.timeout
            );
        }
        Ok(DnsConfig {
            nameservers: self.nameserver.clone(),
            zones: self.zone.clone(),
            offline: self.offline,
            timeout: Duration::from_secs_f64(self.timeout),
            attempts: self.retries.saturating_add(1).min(10),
            ..DnsConfig::default()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT` → a socket address (port 53 by default).
pub fn parse_nameserver(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "`{text}` is not an IP address with an optional port (e.g. 192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53)"
    ))
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
        let (text, source) = read_domains_file(path)
            .with_context(|| format!("cannot read the domains file {}", path.display()))?;
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
            eprintln!("error: {e}");
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

    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(if to_terminal {
        Format::Table
    } else {
        Format::Json
    });
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let style = Style {
        color,
        verbose: args.verbose,
        wrap: to_terminal,
    };
    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the output file {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let total = inputs.len();
    let progress = crate::progress::Progress::new(total);
    let options = CheckOptions {
        concurrency: usize::from(args.concurrency),
        selectors,
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
            write(&mut sink, &output::formatter(format, style).format(&run));
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
