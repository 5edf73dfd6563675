//! `mailshift completions SHELL`: a completion script generated from the clap definition, so
//! it completes exactly the subcommands and flags this binary has.
//!
//! The script is rendered into memory first: clap_complete's writers panic on a write error,
//! and a closed pipe (`mailshift completions bash | head`) must be an error, not a panic.

use super::common::open_sink;
use super::Cli;
use crate::exit::ExitStatus;
use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the script was written, 2 bad invocation (an unknown shell) or it could not be written."
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "mailshift", &mut out);
    out
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut sink = open_sink(None)?;
    sink.write_all(&script(args.shell))
        .and_then(|_| sink.flush())
        .context("cannot write the completion script")?;
    Ok(ExitStatus::Passed)
}
