//! `mailshift man`: manual pages generated from the clap definition, so they say what `--help`
//! says.
//!
//! Without `--output` the main page (`mailshift.1`) goes to standard output (`mailshift man |
//! man -l -`); with `--output DIR`, that page and one per subcommand, nested ones included
//! (`mailshift-check.1`, `mailshift-check-merge.1`, …), are written into DIR for packagers.
//! Each page has an EXIT STATUS section: the command's own exit codes where its `--help` lists
//! them, otherwise the codes every command shares.

use super::common::open_sink;
use super::{Cli, EXIT_CODES};
use crate::exit::ExitStatus;
use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::Man;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the pages were written, 2 bad invocation or a page could not be written."
)]
pub struct ManArgs {
    /// Write mailshift.1 and a page per subcommand (mailshift-check.1, …) into DIR, created if
    /// missing, instead of printing the main page.
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// One rendered page: its file name (`mailshift-check.1`) and its roff source.
pub struct Page {
    pub file_name: String,
    pub roff: Vec<u8>,
}

/// The command line as the pages describe it: built (so subcommands carry their full
/// `mailshift-check` names) and without the implicit `help` subcommand, which has no page.
fn command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// A page for `command`, in the usual section order, with EXIT STATUS before VERSION.
fn render(command: &clap::Command) -> std::io::Result<Page> {
    // Every page names the program and version it documents (clap_mangen would use the
    // subcommand's own name, which has no version).
    let man = Man::new(command.clone()).source(format!("mailshift {}", env!("CARGO_PKG_VERSION")));
    let mut roff = Vec::new();
    man.render_title(&mut roff)?;
    man.render_name_section(&mut roff)?;
    man.render_synopsis_section(&mut roff)?;
    man.render_description_section(&mut roff)?;
    man.render_options_section(&mut roff)?;
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut roff)?;
    }
    let codes = command
        .get_after_help()
        .map(|s| s.to_string())
        .unwrap_or_else(|| EXIT_CODES.to_string());
    let codes = codes.strip_prefix("Exit codes: ").unwrap_or(&codes);
    roff::Roff::new()
        .control("SH", ["EXIT STATUS"])
        .text([roff::roman(codes)])
        .to_writer(&mut roff)?;
    // clap_mangen's version section expects a version, which only the top command has.
    if command.get_version().is_some() {
        man.render_version_section(&mut roff)?;
    }
    Ok(Page {
        file_name: man.get_filename(),
        roff,
    })
}

/// The main page.
pub fn main_page() -> std::io::Result<Page> {
    render(&command())
}

/// The main page, then every visible subcommand's, depth first.
pub fn all_pages() -> std::io::Result<Vec<Page>> {
    fn walk(command: &clap::Command, pages: &mut Vec<Page>) -> std::io::Result<()> {
        pages.push(render(command)?);
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, pages)?;
        }
        Ok(())
    }
    let mut pages = Vec::new();
    walk(&command(), &mut pages)?;
    Ok(pages)
}

pub fn run(args: ManArgs) -> anyhow::Result<ExitStatus> {
    let Some(dir) = &args.output else {
        let page = main_page().context("cannot render the manual page")?;
        let mut sink = open_sink(None)?;
        sink.write_all(&page.roff)
            .and_then(|_| sink.flush())
            .context("cannot write the manual page")?;
        return Ok(ExitStatus::Passed);
    };
    let pages = all_pages().context("cannot render the manual pages")?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    for page in &pages {
        let path = dir.join(&page.file_name);
        std::fs::write(&path, &page.roff)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("{} manual pages written to {}", pages.len(), dir.display());
    Ok(ExitStatus::Passed)
}
