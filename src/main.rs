//! The `mailshift` binary: parse the command line, run, map the outcome to an exit code.
//! Everything else lives in the library (`src/lib.rs`).

use clap::Parser;
use mailshift::cli::{run, Cli};
use mailshift::exit::ExitStatus;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: a bulk run allocates and frees millions of small
/// strings and records from several threads, where glibc's allocator spends a fifth of the time
/// (measured with `cargo bench --bench bulk_check`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (success) and usage errors to stderr.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(ExitStatus::BadInput.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(error) => {
            // Errors may quote file contents or DNS data: never let them drive the terminal.
            let message = format!("{error:#}");
            eprintln!("error: {}", mailshift::output::escape::text(&message));
            ExitCode::from(ExitStatus::BadInput.code())
        }
    }
}
