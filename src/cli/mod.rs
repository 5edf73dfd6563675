//! The command line: clap definitions and one module per subcommand.
//!
//! Each subcommand is a short composition of the engine's parts (inputs → resolver → check →
//! output) and returns an [`ExitStatus`]; `main` only maps it to the process exit code.

pub mod attest;
pub mod check;
pub mod common;
pub mod completions;
pub mod gate;
pub mod history;
pub mod man;
pub mod merge;
pub mod plan;
pub mod providers;
pub mod reports;
pub mod seed;
pub mod snapshot;
pub mod verify;
pub mod warmup;
pub mod warmup_import;

use crate::exit::ExitStatus;
use clap::{Parser, Subcommand};

/// mailshift: make an email-platform migration safe.
///
/// Checks the DNS authentication of sending domains (SPF, DKIM, DMARC, MX), explains every
/// problem with its fix, gates each stage of a migration plan, and exits with a code CI can
/// gate on.
#[derive(Debug, Parser)]
#[command(name = "mailshift", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Raise or lower the size cap of one kind of input file: KIND=SIZE (repeatable, or
    /// comma-separated). Kinds: plan (1 MiB), zone (256 MiB), state (16 MiB), checks (1 MiB),
    /// domains (512 MiB), message (64 MiB), pem (1 MiB), secret (64 KiB), report (64 GiB),
    /// evidence (64 GiB), feedback (DMARC and TLS reports, 4 GiB).
    #[arg(
        long,
        global = true,
        value_name = "KIND=SIZE",
        env = "MAILSHIFT_MAX_FILE_SIZE",
        value_delimiter = ','
    )]
    pub max_file_size: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the DNS authentication records of sending domains.
    Check(check::CheckArgs),
    /// Evaluate the gate of a migration stage: open, closed or inconclusive.
    Gate(gate::GateArgs),
    /// The plan's timeline: gate evaluations and openings, attestations, evidence imports.
    History(history::HistoryArgs),
    /// Record that someone confirmed a step no DNS query can prove (`attested:STEP` gates).
    Attest(attest::AttestArgs),
    /// Warmup cohorts: the daily decision, today's volumes, and importing each day's evidence.
    #[command(subcommand)]
    Warmup(warmup::WarmupCommand),
    /// DMARC aggregate and SMTP TLS reports: what they say of the plan's platforms
    /// (`reports PLAN`), and importing them (`reports import PLAN FILES`).
    Reports(reports::ReportsArgs),
    /// Validate a migration plan, or show its stages.
    #[command(subcommand)]
    Plan(plan::PlanCommand),
    /// List the sending platforms (provider profiles) mailshift knows.
    Providers(providers::ProvidersArgs),
    /// Back up every mail-related record of domains as a zone file; `snapshot diff` compares two.
    Snapshot(snapshot::SnapshotArgs),
    /// Seed tests: send through the new platform, receive in mailshift's own inbox, see results.
    #[command(subcommand)]
    Seed(seed::SeedCommand),
    /// Verify saved messages offline: SPF, DKIM, DMARC, ARC and the bulk-sender header rules.
    Verify(verify::VerifyArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions(completions::CompletionsArgs),
    /// Print the manual page, or write every page (one per subcommand) with --output DIR.
    Man(man::ManArgs),
}

pub const EXIT_CODES: &str = "Exit codes: 0 passed, 1 checks failed, 2 bad invocation or input, \
3 could not complete (DNS errors made a verdict inconclusive).";

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let mut limits = crate::files::Limits::default();
    for setting in &cli.max_file_size {
        limits
            .apply(setting)
            .map_err(|e| anyhow::anyhow!("--max-file-size: {e}"))?;
    }
    crate::files::set_limits(limits);
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Gate(args) => gate::run(args),
        Command::History(args) => history::run(args),
        Command::Attest(args) => attest::run(args),
        Command::Warmup(command) => warmup::run(command),
        Command::Reports(command) => reports::run(command),
        Command::Plan(command) => plan::run(command),
        Command::Providers(args) => providers::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Seed(command) => seed::run(command),
        Command::Verify(args) => verify::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}
