//! `mailshift check`: domains in, verdicts out; `check merge` joins the ndjson of shards.
//!
//! A domains file is read twice, streamed both times: once to validate every line (so bad
//! input stops the run before anything is checked) and count what this shard holds, then as
//! the engine pulls domains. A million-line file is never held in memory (standard input,
//! which cannot be read twice, is).

use super::common::{
    dnssec_request, open_sink, runtime, smtp_prober, style, to_terminal, CatalogArgs, ColorChoice,
    DnsArgs,
};
use crate::dns::Resolver;
use crate::domain::{parse_selector, DomainLines, DomainName, DomainRequest, InputError};
use crate::engine::{check_domains, check_domains_streaming, CheckOptions, ProviderCheck, Shard};
use crate::exit::{ExitStatus, FailOn};
use crate::files::{self, FileKind};
use crate::output::{self, ndjson, Format};
use anyhow::{bail, Context};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(after_help = super::EXIT_CODES, args_conflicts_with_subcommands = true)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub command: Option<CheckCommand>,

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

    /// Also look the domains up in DNS blocklists (checks/blocklists.toml: Spamhaus ZEN and DBL,
    /// Barracuda, SpamCop; --checks-dir adds or replaces lists). Off by default: lists refuse
    /// public resolvers, and the answers say nothing about the records.
    #[arg(long)]
    pub blocklists: bool,

    /// Also ask every authoritative server of each domain's zone (its NS set, each address)
    /// for the SOA serial and the mail records, and compare their copies with each other and
    /// with the resolver's: "the new records are visible everywhere".
    #[arg(long)]
    pub propagation: bool,

    /// Also connect to each MX host on port 25 (at most 10 hosts, 2 addresses each, 10 s per
    /// host): the greeting, EHLO, whether STARTTLS is offered and works, and the certificate,
    /// checked for the MX name (--https-ca applies) and against the MTA-STS policy. No mail is
    /// sent. Off by default: it is slow, and many networks block port 25.
    #[arg(long)]
    pub probe_smtp: bool,

    /// Also validate the answers the checks rely on with DNSSEC (the domain's TXT and MX, its
    /// DMARC record) from the root's trust anchor, and check the MX hosts' TLSA records (DANE).
    /// Off by default: it asks about twice as many questions per domain.
    #[arg(long)]
    pub dnssec: bool,

    /// Validate DNSSEC from the DS or DNSKEY records in FILE (zone-file or RFC 3597 form)
    /// instead of the root's keys: an internal signed zone, or a test zone. Implies --dnssec.
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,

    /// Leave these record families out (repeatable, or comma-separated): mta-sts, tls-rpt,
    /// bimi. Each costs a DNS question per domain (and an HTTPS fetch where published); a bulk
    /// run that only wants SPF, DKIM and DMARC can spare them. The summary names what was left
    /// out. Gates and snapshots never skip.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FAMILY")]
    pub skip: Vec<crate::fetch::Family>,

    /// Check these record families of a --domains-file's domains too (repeatable, or
    /// comma-separated): mta-sts, tls-rpt, bimi. Domains named on the command line get every
    /// family; a domains file is a bulk audit, which checks SPF, DKIM, DMARC and MX and leaves
    /// these out unless asked, so that three more questions per domain are paid only when
    /// wanted. The summary names what was left out.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FAMILY")]
    pub with: Vec<crate::fetch::Family>,

    /// A sending IP to look up in the blocklists (repeatable; implies --blocklists). With
    /// --provider, --sending-ip addresses are looked up too.
    #[arg(long = "ip", value_name = "IP")]
    pub ips: Vec<IpAddr>,

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

    /// Check only part K of N of the domains (1 ≤ K ≤ N), chosen by a stable hash of each
    /// name: N machines or CI jobs with K = 1..N cover every domain exactly once; join their
    /// ndjson with `mailshift check merge`.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,

    /// Keep each domain's records in DIR's history (`DIR/history.db`) and report what changed
    /// since the domain's last check there as drift.* findings.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum CheckCommand {
    /// Join the ndjson reports of a sharded run into one report and summary.
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = super::EXIT_CODES)]
pub struct MergeArgs {
    /// The ndjson reports of the shards (`check --shard K/N --format ndjson -o FILE`).
    #[arg(required = true, value_name = "FILE")]
    pub reports: Vec<PathBuf>,
    /// Output format [default: ndjson].
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: Format,
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The lowest severity that fails the merged run (exit 1).
    #[arg(long, value_enum, default_value = "fail")]
    pub fail_on: FailOn,
    /// Merge even when a shard of the run is missing or given twice (the summary says so).
    #[arg(long)]
    pub allow_partial: bool,
}

/// Where the domains come from: the arguments, and a domains file (streamed) or standard
/// input (read once, kept).
struct Inputs {
    arguments: Vec<Result<DomainRequest, InputError>>,
    file: Option<DomainsFile>,
    shard: Option<Shard>,
}

enum DomainsFile {
    Path(PathBuf),
    Stdin(String),
}

impl Inputs {
    fn gather(args: &CheckArgs) -> anyhow::Result<Inputs> {
        let arguments = args
            .domains
            .iter()
            .enumerate()
            .map(|(i, text)| {
                DomainName::parse(text)
                    .map(|domain| DomainRequest {
                        domain,
                        selectors: Vec::new(),
                    })
                    .map_err(|error| InputError {
                        origin: format!("argument {}", i + 1),
                        text: text.clone(),
                        error,
                    })
            })
            .collect();
        let file = match &args.domains_file {
            None => None,
            Some(path) if path.as_os_str() == "-" => {
                let bytes = files::read_stdin(FileKind::Domains)?;
                Some(DomainsFile::Stdin(files::text(
                    bytes,
                    std::path::Path::new("stdin"),
                    FileKind::Domains,
                )?))
            }
            Some(path) => {
                // Checked now (regular file, size cap) so a bad path fails before anything runs.
                files::open(path, FileKind::Domains)?;
                Some(DomainsFile::Path(path.clone()))
            }
        };
        Ok(Inputs {
            arguments,
            file,
            shard: args.shard,
        })
    }

    /// Every input of this shard, in order: the arguments, then the file's lines.
    fn iter(&self) -> anyhow::Result<impl Iterator<Item = Result<DomainRequest, InputError>> + '_> {
        let lines: Box<dyn Iterator<Item = Result<DomainRequest, InputError>>> = match &self.file {
            None => Box::new(std::iter::empty()),
            Some(DomainsFile::Stdin(text)) => Box::new(DomainLines::new(text.as_bytes(), "stdin")),
            Some(DomainsFile::Path(path)) => {
                let (file, _) = files::open(path, FileKind::Domains)?;
                let limit = files::limits().get(FileKind::Domains);
                let reader =
                    std::io::BufReader::with_capacity(64 * 1024, std::io::Read::take(file, limit));
                Box::new(DomainLines::new(reader, path.display().to_string()))
            }
        };
        let shard = self.shard;
        Ok(self
            .arguments
            .iter()
            .cloned()
            .chain(lines)
            .filter(move |input| {
                shard.is_none_or(|s| {
                    s.contains(match input {
                        Ok(request) => request.domain.as_str(),
                        Err(error) => &error.text,
                    })
                })
            }))
    }
}

/// Invalid lines printed before the run stops (the rest are counted).
const MAX_ERRORS_SHOWN: usize = 100;

pub fn run(args: CheckArgs) -> anyhow::Result<ExitStatus> {
    if let Some(CheckCommand::Merge(merge)) = args.command {
        return super::merge::run(merge);
    }
    if args.domains.is_empty() && args.domains_file.is_none() {
        bail!("no domains to check: give them as arguments or with --domains-file");
    }
    let inputs = Inputs::gather(&args)?;
    // First pass: every line is validated (and this shard's domains counted) before anything
    // is checked.
    let (mut total, mut invalid) = (0usize, 0usize);
    for input in inputs.iter()? {
        total += 1;
        if let Err(e) = input {
            invalid += 1;
            if !args.keep_going && invalid <= MAX_ERRORS_SHOWN {
                eprintln!("error: {}", crate::output::escape::text(&e.to_string()));
            }
        }
    }
    if invalid > 0 && !args.keep_going {
        if invalid > MAX_ERRORS_SHOWN {
            eprintln!("… and {} more invalid lines", invalid - MAX_ERRORS_SHOWN);
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
    let wants_blocklists = args.blocklists || !args.ips.is_empty();
    let catalog = if args.provider.is_some() || wants_blocklists {
        Some(args.catalog.load()?)
    } else {
        None
    };
    let provider = match (&args.provider, &catalog) {
        (Some(name), Some(catalog)) => {
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
        _ => None,
    };
    let blocklists = match &catalog {
        Some(catalog) if wants_blocklists => {
            let ips = (args.ips.iter().map(|ip| (ip, "--ip")))
                .chain(args.sending_ips.iter().map(|ip| (ip, "--sending-ip")));
            let mut addresses: Vec<crate::fetch::SendingAddress> = Vec::new();
            for (ip, from) in ips {
                if !addresses.iter().any(|a| a.ip == *ip) {
                    addresses.push(crate::fetch::SendingAddress {
                        ip: *ip,
                        from: from.to_string(),
                    });
                }
            }
            Some(std::sync::Arc::new(crate::fetch::BlocklistRequest {
                lists: catalog.blocklists.clone(),
                ips: addresses,
            }))
        }
        _ => None,
    };

    let to_terminal = to_terminal(args.output.as_deref());
    let format = args.format.unwrap_or(if to_terminal {
        Format::Table
    } else {
        Format::Json
    });
    let style = style(args.color, args.verbose, args.output.as_deref());
    let mut sink = open_sink(args.output.as_deref())?;
    let runtime = runtime()?;
    let progress = crate::progress::Progress::new(total);
    let drift = match &args.state {
        Some(dir) => Some(std::sync::Arc::new(crate::history::DriftStore::new(
            crate::history::History::open_dir(dir)?,
        ))),
        None => None,
    };
    let options = CheckOptions {
        concurrency: usize::from(args.concurrency),
        selectors,
        provider,
        drift,
        blocklists,
        propagation: args.propagation,
        dnssec: dnssec_request(args.trust_anchor.as_deref(), args.dnssec)?,
        probe_smtp: args
            .probe_smtp
            .then(|| smtp_prober(&args.dns, &dns))
            .transpose()?,
        skip: skipped(&args)?,
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
            let mut summary =
                check_domains_streaming(&resolver, inputs.iter()?, &options, |_, report| {
                    progress.tick(&report.domain);
                    write(&mut sink, &ndjson::domain_line(&report));
                })
                .await;
            summary.shard = args.shard;
            write(&mut sink, &ndjson::summary_line(&summary));
            summary
        } else {
            let mut run = check_domains(&resolver, inputs.iter()?, &options, |report| {
                progress.tick(&report.domain);
            })
            .await;
            run.summary.shard = args.shard;
            progress.finish();
            let text = output::formatter(format, style).format(&run);
            let text = match format {
                Format::Table => output::escape::rendered(&text, style.color),
                // CSV keeps the exact strings for spreadsheets, but what reaches a terminal
                // must not carry the control characters a hostile record can hold.
                Format::Csv if to_terminal => output::escape::rendered(&text, false),
                Format::Csv | Format::Json | Format::Ndjson => {
                    std::borrow::Cow::Borrowed(text.as_str())
                }
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

/// The families this run leaves out, each once, in a stable order: `--skip`'s, and with a
/// domains file those `--with` does not ask for.
fn skipped(args: &CheckArgs) -> anyhow::Result<Vec<crate::fetch::Family>> {
    if let Some(both) = args.with.iter().find(|f| args.skip.contains(f)) {
        bail!(
            "{} is given to both --with and --skip: check it or leave it out",
            both.id()
        );
    }
    let mut out = args.skip.clone();
    if args.domains_file.is_some() {
        out.extend(
            crate::fetch::Family::ALL
                .into_iter()
                .filter(|f| !args.with.contains(f)),
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}
