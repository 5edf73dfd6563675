//! What the subcommands share: DNS options, colour and width, where output goes, the async
//! runtime.

use crate::dns::DnsConfig;
use anyhow::{bail, Context};
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

    /// Trust only the CA certificates in this PEM file (repeatable) for HTTPS fetches such as
    /// MTA-STS policies, and for the MX hosts' certificates with --probe-smtp, instead of the
    /// system's roots: a company's own CA, or a test CA.
    #[arg(long, value_name = "PEM")]
    pub https_ca: Vec<PathBuf>,

    /// Trust the mark certificate roots in this PEM file (repeatable) for BIMI certificates,
    /// besides the embedded DigiCert and Entrust roots: another authority's root, or a test CA.
    #[arg(long, value_name = "PEM")]
    pub bimi_ca: Vec<PathBuf>,

    /// Fetch HTTPS from this port instead of 443 (for test servers).
    #[arg(long, default_value_t = 443, value_name = "PORT", hide = true)]
    pub https_port: u16,

    /// Ask authoritative servers (propagation) on this port instead of 53 (for test servers).
    #[arg(long, default_value_t = 53, value_name = "PORT", hide = true)]
    pub authoritative_port: u16,

    /// Probe SMTP servers (--probe-smtp) on this port instead of 25 (for test servers).
    #[arg(long, default_value_t = 25, value_name = "PORT", hide = true)]
    pub smtp_port: u16,

    /// Seconds one MX host may take in all with --probe-smtp (for tests of silent servers).
    #[arg(long, default_value_t = 10.0, value_name = "SECS", hide = true)]
    pub smtp_deadline: f64,
}

impl DnsArgs {
    pub fn config(&self) -> anyhow::Result<DnsConfig> {
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 300.0) {
            bail!(
                "--timeout must be between 0 and 300 seconds (got {})",
                self.timeout
            );
        }
        let ca_certs = crate::web::read_ca_files(&self.https_ca).context("--https-ca")?;
        let mark_roots = crate::web::read_ca_files(&self.bimi_ca).context("--bimi-ca")?;
        Ok(DnsConfig {
            nameservers: self.nameserver.clone(),
            zones: self.zone.clone(),
            offline: self.offline,
            timeout: Duration::from_secs_f64(self.timeout),
            attempts: self.retries.saturating_add(1).min(10),
            web: crate::web::WebConfig {
                ca_certs,
                mark_roots,
                port: self.https_port,
                ..crate::web::WebConfig::default()
            },
            authoritative_port: self.authoritative_port,
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

impl ColorChoice {
    /// `auto` colours a terminal unless `NO_COLOR` is set.
    pub fn enabled(self, to_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// Widths below this are not believed: pseudo-terminals under `script` or CI runners report
/// zero or a few columns, and wrapping to that would print a character per line.
pub const MIN_WIDTH: u16 = 40;

/// `COLUMNS` above this is taken for a mistake rather than a screen.
pub const MAX_WIDTH: u16 = 1000;

/// The display columns human reports are wrapped to, decided once per run: `COLUMNS` when it is
/// a number from [`MIN_WIDTH`] to [`MAX_WIDTH`] (as `ls` and clap honour it); otherwise the
/// terminal's width when the report goes to a terminal that reports at least [`MIN_WIDTH`];
/// otherwise [`PIPED_WIDTH`](crate::output::PIPED_WIDTH), so piped and `--output` reports never
/// have unbounded lines. Colour plays no part.
pub fn output_width(to_terminal: bool) -> u16 {
    let terminal = if to_terminal {
        terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0)
    } else {
        None
    };
    choose_width(std::env::var("COLUMNS").ok().as_deref(), terminal)
}

/// [`output_width`] without the environment: `COLUMNS`' value, then the terminal's width.
pub fn choose_width(columns: Option<&str>, terminal: Option<u16>) -> u16 {
    let sane = |w: &u16| (MIN_WIDTH..=MAX_WIDTH).contains(w);
    columns
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(sane)
        .or(terminal.filter(|w| *w >= MIN_WIDTH))
        .unwrap_or(crate::output::PIPED_WIDTH)
}

/// How a human report to `output` (standard output when `None`) is drawn: colour per `color`
/// and whether it reaches a terminal, the width per [`output_width`].
pub fn style(color: ColorChoice, verbose: bool, output: Option<&Path>) -> crate::output::Style {
    let to_terminal = to_terminal(output);
    crate::output::Style {
        color: color.enabled(to_terminal),
        verbose,
        width: Some(output_width(to_terminal)),
    }
}

/// The style of the plain lists (`plan show`, `providers`, `seed`): no colour, the width
/// [`output_width`] decides for `output`.
pub fn plain_style(output: Option<&Path>) -> crate::output::Style {
    style(ColorChoice::Never, false, output)
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

/// True when the report goes to a terminal (no `--output`, stdout is a tty).
pub fn to_terminal(output: Option<&Path>) -> bool {
    output.is_none() && std::io::stdout().is_terminal()
}

/// Standard output, or the `--output` file.
pub fn open_sink(output: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the output file {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    })
}

/// Writes a whole report and flushes.
pub fn write_report(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
    let mut sink = open_sink(output)?;
    sink.write_all(text.as_bytes())
        .and_then(|_| sink.flush())
        .context("cannot write the report")
}

/// Writes a human-readable report (table, Markdown, annotations): control characters that came
/// from outside are escaped; with `color`, mailshift's own colour sequences are kept.
pub fn write_human(output: Option<&Path>, text: &str, color: bool) -> anyhow::Result<()> {
    write_report(output, &crate::output::escape::rendered(text, color))
}

/// The multi-threaded runtime the commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Where answers come from, for headers ("127.0.0.1:5300", "zone files …", "the system resolver").
pub fn describe_source(config: &DnsConfig) -> String {
    let mut parts = Vec::new();
    if !config.zones.is_empty() {
        let zones: Vec<String> = config
            .zones
            .iter()
            .map(|z| z.display().to_string())
            .collect();
        parts.push(format!("zone files {}", zones.join(", ")));
    }
    if config.offline {
        parts.push("no network (--offline)".to_string());
    } else if config.nameservers.is_empty() {
        parts.push("the system resolver".to_string());
    } else {
        let ns: Vec<String> = config.nameservers.iter().map(|n| n.to_string()).collect();
        parts.push(format!("nameserver {}", ns.join(", ")));
    }
    parts.join(" and ")
}

/// `--checks-dir`: extra provider profiles and policies.
#[derive(Debug, Clone, clap::Args)]
pub struct CatalogArgs {
    /// Add provider profiles and policies from DIR/providers/*.toml and DIR/policies/*.toml
    /// (they replace built-in ones with the same id).
    #[arg(long, value_name = "DIR")]
    pub checks_dir: Option<PathBuf>,
}

impl CatalogArgs {
    pub fn load(&self) -> anyhow::Result<crate::catalog::Catalog> {
        Ok(crate::catalog::Catalog::load(self.checks_dir.as_deref())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_is_columns_then_the_terminal_then_one_fixed_width() {
        assert_eq!(choose_width(None, None), crate::output::PIPED_WIDTH);
        assert_eq!(choose_width(None, Some(132)), 132);
        assert_eq!(choose_width(Some("60"), Some(132)), 60);
        assert_eq!(choose_width(Some(" 80 "), None), 80);
        // Zero or a few columns from a pseudo-terminal, or nonsense in COLUMNS, are not believed.
        assert_eq!(choose_width(None, Some(0)), crate::output::PIPED_WIDTH);
        assert_eq!(choose_width(None, Some(12)), crate::output::PIPED_WIDTH);
        for bad in ["39", "0", "-80", "wide", "", "1001", "99999999"] {
            assert_eq!(choose_width(Some(bad), Some(90)), 90, "COLUMNS={bad:?}");
            assert_eq!(choose_width(Some(bad), None), 100, "COLUMNS={bad:?}");
        }
        assert_eq!(choose_width(Some("40"), None), 40);
        assert_eq!(choose_width(Some("1000"), None), 1000);
    }
}

/// `--state DIR`: where a plan's history lives.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// The plan's state directory, holding its history (gate openings and decisions,
    /// attestations, warmup evidence) in `history.db` [default: PLAN-NAME.state/ beside the
    /// plan].
    #[arg(long, value_name = "DIR")]
    pub state: Option<std::path::PathBuf>,
}

impl StateArgs {
    /// The state directory of the plan at `plan`.
    pub fn dir(&self, plan: &Path) -> std::path::PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| crate::history::default_state_dir(plan))
    }

    /// The gate openings, read without creating anything.
    pub fn gate_state(&self, plan: &Path) -> anyhow::Result<crate::gate::GateState> {
        Ok(crate::gate::GateState::read(&self.dir(plan), plan)?)
    }

    /// Opens the history for writing (creating the directory and database if needed), and
    /// adopts the openings of an earlier mailshift's `PLAN.state.json`, once.
    pub fn open(&self, plan: &Path) -> anyhow::Result<crate::history::History> {
        let dir = self.dir(plan);
        let mut history = crate::history::History::open_dir(&dir)?;
        let legacy = crate::gate::legacy_state_path(plan);
        let adopted = history.adopt_legacy_state(&legacy)?;
        if adopted > 0 {
            eprintln!(
                "note: {} from {} now live in {}",
                crate::words::count(adopted, "gate opening", "gate openings"),
                legacy.display(),
                history.path().display()
            );
        }
        Ok(history)
    }
}

/// One file's result in an import command (`warmup import`, `reports import`).
pub trait ImportedFile: serde::Serialize {
    fn rejected(&self) -> u64;
    fn imported_before(&self) -> bool;
}

/// Why a file was not imported at all, naming it.
pub trait FailedFile: std::fmt::Display {
    fn file(&self) -> &Path;
}

impl FailedFile for crate::import::ImportError {
    fn file(&self) -> &Path {
        self.path()
    }
}

/// Writes an import command's results as `format` asks (the table with `file` for each file
/// and `rejected` naming what may be rejected, see [`imports_table`]) and returns its exit
/// status: passed when every file was imported (or had been) with nothing rejected, bad input
/// otherwise.
pub fn write_imports<O: ImportedFile, E: FailedFile>(
    format: super::providers::ListFormat,
    results: &[Result<O, E>],
    file: impl Fn(&mut String, &O),
    rejected: &str,
) -> anyhow::Result<crate::exit::ExitStatus> {
    use super::providers::ListFormat;
    match format {
        ListFormat::Json => write_imports_json(results)?,
        ListFormat::Table => write_human(None, &imports_table(results, file, rejected), false)?,
    }
    Ok(if imports_clean(results) {
        crate::exit::ExitStatus::Passed
    } else {
        crate::exit::ExitStatus::BadInput
    })
}

/// True when every file was imported (or had been) with nothing rejected.
pub fn imports_clean<O: ImportedFile, E>(results: &[Result<O, E>]) -> bool {
    results
        .iter()
        .all(|r| r.as_ref().is_ok_and(|o| o.rejected() == 0))
}

/// `{"files": [...]}`: each file's outcome, or its path and why it was not imported.
#[derive(serde::Serialize)]
struct ImportsJson<'a, O> {
    files: Vec<FileJson<'a, O>>,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum FileJson<'a, O> {
    Imported(&'a O),
    NotImported {
        #[serde(serialize_with = "crate::output::lossy_path")]
        path: &'a Path,
        error: String,
    },
}

/// Writes [`ImportsJson`] to standard output as it is serialised.
fn write_imports_json<O: ImportedFile, E: FailedFile>(
    results: &[Result<O, E>],
) -> anyhow::Result<()> {
    let files = results
        .iter()
        .map(|r| match r {
            Ok(outcome) => FileJson::Imported(outcome),
            Err(e) => FileJson::NotImported {
                path: e.file(),
                error: e.to_string(),
            },
        })
        .collect();
    crate::output::write_pretty_json(open_sink(None)?, &ImportsJson { files })
        .context("cannot write the report")
}

/// Each file as `file` writes it (or why it was not imported), then the totals; `rejected`
/// names what may be rejected (`rejected rows (their good rows are kept)`).
pub fn imports_table<O: ImportedFile, E: FailedFile>(
    results: &[Result<O, E>],
    file: impl Fn(&mut String, &O),
    rejected: &str,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let (mut failed, mut with_rejects, mut before) = (0, 0, 0);
    for result in results {
        match result {
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "{}\n  not imported: {e}\n", e.file().display());
            }
            Ok(o) => {
                if o.rejected() > 0 {
                    with_rejects += 1;
                }
                if o.imported_before() {
                    before += 1;
                }
                file(&mut out, o);
            }
        }
    }
    let files = crate::words::count(results.len(), "file", "files");
    let _ = match (failed, with_rejects, before) {
        (0, 0, 0) => writeln!(out, "{files}: all imported."),
        (0, 0, n) => writeln!(out, "{files}: all imported ({n} of them before)."),
        _ => writeln!(
            out,
            "{files}: {failed} not imported, {with_rejects} with {rejected}: exit 2."
        ),
    };
    out
}

/// The SMTP prober of `--probe-smtp` and the `smtp` gate requirement: the run's trust
/// (`--https-ca`) and `--offline`, and the hidden test options for the port and the deadline.
pub fn smtp_prober(
    args: &DnsArgs,
    dns: &DnsConfig,
) -> anyhow::Result<std::sync::Arc<crate::smtp_probe::SmtpProber>> {
    let deadline = args.smtp_deadline;
    if !(deadline.is_finite() && deadline > 0.0 && deadline <= 300.0) {
        bail!("--smtp-deadline must be between 0 and 300 seconds (got {deadline})");
    }
    let deadline = Duration::from_secs_f64(deadline);
    let defaults = crate::smtp_probe::SmtpConfig::default();
    Ok(std::sync::Arc::new(crate::smtp_probe::SmtpProber::new(
        crate::smtp_probe::SmtpConfig {
            port: args.smtp_port,
            connect_timeout: defaults.connect_timeout.min(deadline),
            deadline,
            ca_certs: dns.web.ca_certs.clone(),
            offline: dns.offline,
            ..defaults
        },
    )))
}

/// What DNSSEC validates against: the `--trust-anchor` file's records, or the root's keys
/// when `enabled`; `None` otherwise.
pub fn dnssec_request(
    trust_anchor: Option<&Path>,
    enabled: bool,
) -> anyhow::Result<Option<std::sync::Arc<crate::fetch::DnssecRequest>>> {
    let anchors = match trust_anchor {
        Some(path) => {
            let text = crate::files::read_text(path, crate::files::FileKind::Zone)?;
            crate::dnssec::anchor::Anchors::parse(&text)
                .with_context(|| format!("--trust-anchor {}", path.display()))?
        }
        None if enabled => crate::dnssec::anchor::Anchors::root(),
        None => return Ok(None),
    };
    Ok(Some(std::sync::Arc::new(crate::fetch::DnssecRequest {
        anchors,
    })))
}
