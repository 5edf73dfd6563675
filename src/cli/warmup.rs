//! `mailshift warmup …`: the warmup's subcommands.

use crate::exit::ExitStatus;

#[derive(Debug, clap::Subcommand)]
pub enum WarmupCommand {
    /// Import warmup evidence into the plan's history: platform events (SendGrid, Amazon SES),
    /// daily metrics, Postmaster Tools and SNDS data; each file once.
    Import(super::warmup_import::ImportArgs),
}

pub fn run(command: WarmupCommand) -> anyhow::Result<ExitStatus> {
    match command {
        WarmupCommand::Import(args) => super::warmup_import::run(args),
    }
}
