//! `mailshift seed send|inbox|results`: seed tests through the new platform.

use super::common::{runtime, write_human, write_report, CatalogArgs, DnsArgs};
use super::plan::load_plan;
use super::providers::ListFormat;
use crate::dns::Resolver;
use crate::exit::ExitStatus;
use crate::gate::GateState;
use crate::plan::{Plan, Requirement, SeedSetup};
use crate::seed::inbox::{tls_config, Inbox, InboxConfig};
use crate::seed::results::load;
use crate::seed::send::{build, new_token, send, transport, RelayOptions, SendError, Signer};
use crate::seed::store::{SentSeed, Store, StoreLimits};
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Debug, clap::Subcommand)]
pub enum SeedCommand {
    /// Send one seed message per seed address of the plan through the new platform's relay.
    Send(SendArgs),
    /// Run the seed inbox: an SMTP server that receives, verifies and stores seed messages.
    Inbox(InboxArgs),
    /// Show, per seed token, whether it arrived and each verdict.
    Results(ResultsArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every seed was accepted by the relay, 1 the relay refused one, 2 bad plan or invocation, 3 the relay could not be reached."
)]
pub struct SendArgs {
    pub plan: PathBuf,
    /// The stage the seeds are for [default: the first stage not yet opened whose gate requires seeds].
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    /// Sign locally with this DKIM private key (PEM, RSA or Ed25519), as d=<From domain>.
    #[arg(long, value_name = "FILE", requires = "selector")]
    pub dkim_key: Option<PathBuf>,
    /// The selector for --dkim-key.
    #[arg(long, value_name = "NAME", requires = "dkim_key")]
    pub selector: Option<String>,
    /// Send through this relay (HOST:PORT) instead of the plan's, e.g. a test inbox.
    #[arg(long, value_name = "HOST:PORT")]
    pub relay: Option<String>,
    /// Allow a relay without TLS (the plan must say tls = "none").
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Trust this CA certificate (PEM) for the relay instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The seed store [default: the plan's, or PLAN.seed.db].
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Seconds to wait for the relay.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub timeout: f64,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, clap::Args)]
pub struct InboxArgs {
    pub plan: PathBuf,
    /// Address to listen on (e.g. 0.0.0.0:25, or 127.0.0.1:0 for any free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Offer STARTTLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name in the greeting and Received headers.
    #[arg(long, default_value = "mailshift-seed-inbox", value_name = "NAME")]
    pub hostname: String,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 25 * 1024 * 1024, value_name = "BYTES")]
    pub max_size: usize,
    /// Connections served at once; more are told to come back later (421).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a client has to send each whole command, from the previous reply (reading a
    /// byte at a time does not extend it).
    #[arg(
        long,
        alias = "idle-timeout",
        default_value_t = 120,
        value_name = "SECS"
    )]
    pub command_timeout: u64,
    /// Seconds the whole DATA phase of one message may take.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub data_timeout: u64,
    /// After the first 30 s, DATA must arrive at least this fast (bytes per second on average).
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub min_data_rate: u64,
    /// Seconds one session (all its messages) may last.
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    pub session_timeout: u64,
    /// Connections served at once from one client address (an IPv6 /64).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_connections_per_client: usize,
    /// 5xx replies one session may get before it is closed.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_errors: usize,
    /// Messages without a known seed token kept at most (the oldest are dropped first).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_unknown_messages: u64,
    /// Total size of messages without a known seed token kept at most (e.g. 256MiB).
    #[arg(long, default_value = "256MiB", value_name = "SIZE", value_parser = crate::files::parse_size)]
    pub max_unknown_size: u64,
    /// Seconds DNS answers (DKIM keys, SPF, DMARC) are reused before they are asked again.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub dns_cache: u64,
    /// The seed store [default: the plan's, or PLAN.seed.db].
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub dns: DnsArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every seed passed, 1 one failed, 2 bad plan or invocation, 3 seeds still waiting, none sent, or verdicts inconclusive."
)]
pub struct ResultsArgs {
    pub plan: PathBuf,
    /// Only the seeds sent for this stage.
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

pub fn run(command: SeedCommand) -> anyhow::Result<ExitStatus> {
    match command {
        SeedCommand::Send(args) => send_seeds(args),
        SeedCommand::Inbox(args) => inbox(args),
        SeedCommand::Results(args) => results(args),
    }
}

/// The plan and its [seed] section, or exit 2 after saying what is missing.
fn seed_plan(
    path: &std::path::Path,
    catalog: &CatalogArgs,
) -> anyhow::Result<Option<(Plan, SeedSetup)>> {
    let Some((plan, _)) = load_plan(path, catalog)? else {
        return Ok(None);
    };
    match plan.seed.clone() {
        Some(seed) => Ok(Some((plan, seed))),
        None => {
            eprintln!(
                "error: {} has no [seed] section: add `from`, `recipients` and `relay` (see README, Seed tests)",
                path.display()
            );
            Ok(None)
        }
    }
}

fn send_seeds(args: SendArgs) -> anyhow::Result<ExitStatus> {
    let Some((plan, mut seed)) = seed_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    if let Some(relay) = &args.relay {
        let (host, port) = crate::plan::parse_relay(relay, seed.relay_port)
            .map_err(|e| anyhow::anyhow!("--relay: {e}"))?;
        seed.relay_host = host;
        seed.relay_port = port;
    }
    let stage = match &args.stage {
        Some(s) if plan.stage(s).is_some() => s.clone(),
        Some(s) => bail!("the plan has no stage `{s}`"),
        None => {
            let state =
                GateState::read(&crate::history::default_state_dir(&args.plan), &args.plan)?;
            plan.stages
                .iter()
                .find(|s| s.requires.contains(&Requirement::Seed) && !state.has_passed(&s.name))
                .map(|s| s.name.clone())
                .context("no stage left whose gate requires seeds: name one with --stage")?
        }
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let signer = match (&args.dkim_key, &args.selector) {
        (Some(key), Some(selector)) => {
            let pem = crate::files::read_text(key, crate::files::FileKind::Pem)
                .context("the DKIM key (--dkim-key)")?;
            let selector = crate::domain::parse_selector(selector).map_err(anyhow::Error::msg)?;
            Some(
                Signer::load(&pem, seed.from_domain.as_str(), &selector)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?,
            )
        }
        _ => None,
    };
    let ca_pem = match &args.ca_file {
        Some(p) => Some(
            crate::files::read(p, crate::files::FileKind::Pem)
                .context("the CA file (--ca-file)")?,
        ),
        None => None,
    };
    let options = RelayOptions {
        allow_plaintext: args.allow_plaintext,
        ca_pem,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let store_path = args.store.clone().unwrap_or_else(|| seed.store.clone());
    let (rows, status) = runtime()?.block_on(async {
        let transport = match transport(&seed, &options) {
            Ok(t) => t,
            Err(SendError::Setup(e)) => bail!(e),
            Err(e) => bail!(e.to_string()),
        };
        let store = Store::open(&store_path)?;
        let mut rows = Vec::new();
        let mut status = ExitStatus::Passed;
        for recipient in &seed.recipients {
            let token = new_token();
            let message = build(&seed, &stage, recipient, &token, SystemTime::now())?;
            let bytes = match &signer {
                Some(s) => s.sign(&message.bytes).map_err(anyhow::Error::msg)?,
                None => message.bytes.clone(),
            };
            let sent_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let outcome = send(&transport, &seed, &message, &bytes).await;
            let (accepted, response) = match &outcome {
                Ok(r) => (true, r.clone()),
                Err(e) => {
                    status = match (status, e) {
                        (ExitStatus::ChecksFailed, _) | (_, SendError::Refused(_)) => {
                            ExitStatus::ChecksFailed
                        }
                        _ => ExitStatus::Inconclusive,
                    };
                    (false, e.to_string())
                }
            };
            store
                .record_sent(SentSeed {
                    token: token.clone(),
                    stage: stage.clone(),
                    recipient: recipient.clone(),
                    from: seed.from.clone(),
                    message_id: message.message_id.clone(),
                    sent_at,
                    relay_response: response.clone(),
                    accepted,
                })
                .await?;
            rows.push(serde_json::json!({
                "token": token,
                "recipient": recipient,
                "stage": stage,
                "accepted": accepted,
                "relay_response": response,
            }));
        }
        anyhow::Ok((rows, status))
    })?;
    let text = match args.format {
        ListFormat::Json => crate::output::pretty_json(
            &serde_json::json!({ "sent": rows, "store": store_path.to_string_lossy() }),
        ),
        ListFormat::Table => {
            let width = super::common::plain_style(None).width;
            let mut table = crate::output::new_table(false, width);
            table.set_header(vec!["token", "seed address", "relay"]);
            for r in &rows {
                table.add_row(crate::output::row(vec![
                    r["token"].as_str().unwrap_or_default().to_string(),
                    r["recipient"].as_str().unwrap_or_default().to_string(),
                    format!(
                        "{}: {}",
                        if r["accepted"] == true {
                            "accepted"
                        } else {
                            "NOT SENT"
                        },
                        r["relay_response"].as_str().unwrap_or_default()
                    ),
                ]));
            }
            let head = format!(
                "Seeds for stage `{stage}` via {}:{} (recorded in {}):",
                seed.relay_host,
                seed.relay_port,
                store_path.display()
            );
            format!("{}\n{table}\n", crate::output::wrap(&head, width, "  "))
        }
    };
    match args.format {
        ListFormat::Json => write_report(None, &text)?,
        ListFormat::Table => write_human(None, &text, false)?,
    }
    Ok(status)
}

fn inbox(args: InboxArgs) -> anyhow::Result<ExitStatus> {
    let Some((_, seed)) = seed_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    let mut config = InboxConfig::new(seed.recipients.clone());
    config.hostname = args.hostname.clone();
    config.max_message_size = args.max_size.max(1024);
    config.max_connections = args.max_connections.max(1);
    config.command_timeout = Duration::from_secs(args.command_timeout.max(1));
    config.data_timeout = Duration::from_secs(args.data_timeout.max(1));
    config.min_data_rate = args.min_data_rate;
    config.session_timeout = Duration::from_secs(args.session_timeout.max(1));
    config.max_connections_per_client = args.max_connections_per_client.max(1);
    config.max_errors = args.max_errors.max(1);
    config.dns_cache_lifetime = Duration::from_secs(args.dns_cache.max(1));
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(tls_config(cert, key).map_err(anyhow::Error::msg)?);
    }
    let store_path = args.store.clone().unwrap_or_else(|| seed.store.clone());
    let dns = args.dns.config()?;
    runtime()?.block_on(async {
        let resolver = Resolver::new(&dns)?;
        // The first message should not pay for setting up the shared verifier.
        crate::verify::prepare().map_err(anyhow::Error::msg)?;
        let store = Arc::new(Store::open_with(
            &store_path,
            StoreLimits {
                unknown_messages: args.max_unknown_messages,
                unknown_bytes: args.max_unknown_size,
            },
        )?);
        let inbox = Inbox::bind(args.listen, config, store, resolver)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "mailshift seed inbox listening on {} for {} seed address(es); storing in {}",
            inbox.local_addr()?,
            seed.recipients.len(),
            store_path.display()
        );
        inbox
            .serve(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        anyhow::Ok(())
    })?;
    Ok(ExitStatus::Passed)
}

fn results(args: ResultsArgs) -> anyhow::Result<ExitStatus> {
    let Some((plan, seed)) = seed_plan(&args.plan, &args.catalog)? else {
        return Ok(ExitStatus::BadInput);
    };
    if let Some(s) = &args.stage {
        if plan.stage(s).is_none() {
            bail!("the plan has no stage `{s}`");
        }
    }
    let store_path = args.store.clone().unwrap_or_else(|| seed.store.clone());
    let within = Duration::from_secs(seed.within_minutes * 60);
    let redactor = crate::seed::send::redactor(&seed);
    let Some(results) = load(&store_path, args.stage.as_deref(), within, &redactor)? else {
        eprintln!("No seeds sent yet (no store at {}).", store_path.display());
        return Ok(ExitStatus::Inconclusive);
    };
    let (sent, arrivals, outcomes, dropped) = (
        results.sent,
        results.arrivals,
        results.outcomes,
        results.dropped,
    );
    let unexpected: Vec<_> = arrivals
        .iter()
        .filter(|a| {
            !a.token
                .as_ref()
                .is_some_and(|t| sent.iter().any(|s| &s.token == t))
        })
        .collect();
    let text = match args.format {
        ListFormat::Json => crate::output::pretty_json(&serde_json::json!({
            "seeds": outcomes,
            "other_arrivals": unexpected.iter().map(|a| serde_json::json!({
                "id": a.id, "token": a.token, "received_at": a.received_at, "remote_ip": a.remote_ip,
                "mail_from": a.mail_from, "rcpt": a.rcpt, "status": a.status,
            })).collect::<Vec<_>>(),
            "dropped": dropped,
        })),
        ListFormat::Table => {
            let width = super::common::plain_style(None).width;
            let mut table = crate::output::new_table(false, width);
            table.set_header(vec![
                "token",
                "stage",
                "seed address",
                "arrived",
                "SPF",
                "DKIM",
                "DMARC",
                "one-click",
                "verdict",
            ]);
            for o in &outcomes {
                let (arrived, spf, dkim, dmarc, unsub) = match &o.arrival {
                    Some(a) => (
                        format!(
                            "{} (+{} s){}",
                            a.received_at,
                            a.delay_seconds.unwrap_or(0),
                            if a.tls { ", TLS" } else { "" }
                        ),
                        a.spf.clone(),
                        a.dkim.clone(),
                        a.dmarc.clone(),
                        if a.one_click_unsubscribe { "yes" } else { "no" }.to_string(),
                    ),
                    None => (
                        "not arrived".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ),
                };
                let problems: Vec<String> = o
                    .findings
                    .iter()
                    .filter(|f| f.severity >= crate::finding::Severity::Warn)
                    .map(|f| format!("{}: {}", f.id, f.message))
                    .collect();
                let verdict = if problems.is_empty() {
                    o.status.as_str().to_string()
                } else {
                    format!("{}\n{}", o.status.as_str(), problems.join("\n"))
                };
                table.add_row(crate::output::row(vec![
                    o.sent.token.clone(),
                    o.sent.stage.clone(),
                    o.sent.recipient.clone(),
                    arrived,
                    spf,
                    dkim,
                    dmarc,
                    unsub,
                    verdict,
                ]));
            }
            let mut notes = Vec::new();
            if !unexpected.is_empty() {
                notes.push(format!(
                    "{} other message(s) arrived without a known seed token.",
                    unexpected.len()
                ));
            }
            if dropped.messages > 0 {
                notes.push(format!(
                    "{} message(s) from unknown senders ({}, arrived {} to {}) were dropped, oldest first, to keep the store within its quota (seed inbox --max-unknown-messages, --max-unknown-size).",
                    dropped.messages,
                    crate::files::show_size(dropped.bytes),
                    dropped.first_received_at.as_deref().unwrap_or("?"),
                    dropped.last_received_at.as_deref().unwrap_or("?"),
                ));
            }
            let mut text = format!("{table}\n");
            for note in notes {
                text.push_str(&crate::output::wrap(&note, width, ""));
                text.push('\n');
            }
            text
        }
    };
    match args.format {
        ListFormat::Json => write_report(None, &text)?,
        ListFormat::Table => write_human(None, &text, false)?,
    }
    let worst = outcomes.iter().map(|o| o.status).max();
    Ok(match worst {
        None => ExitStatus::Inconclusive,
        Some(crate::finding::Status::Fail | crate::finding::Status::Error) => {
            ExitStatus::ChecksFailed
        }
        Some(crate::finding::Status::Inconclusive) => ExitStatus::Inconclusive,
        _ => ExitStatus::Passed,
    })
}
