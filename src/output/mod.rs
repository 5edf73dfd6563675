//! Output formats: one formatter per format, all over the same [`CheckRun`].
//!
//! A new format is one file here and one variant of [`Format`]. Formatters only render; colour
//! and width decisions are made by the caller and passed in [`Style`].

pub mod gate;
pub mod json;
pub mod ndjson;
pub mod table;

use crate::engine::CheckRun;

/// The formats `mailshift check` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables (the default on a terminal).
    Table,
    /// One JSON document (the default when output is not a terminal).
    Json,
    /// One JSON object per line: a line per domain as soon as it is done, then the summary.
    Ndjson,
}

/// Presentation choices made at the edge (terminal or not, NO_COLOR, --verbose).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Show evidence for passing and informational findings too.
    pub verbose: bool,
    /// Wrap tables to the terminal's width (only meaningful on a terminal).
    pub wrap: bool,
}

/// Renders a whole run.
pub trait RunFormatter {
    fn format(&self, run: &CheckRun) -> String;
}

/// The formatter for a format. Ndjson's whole-run form is its lines joined.
pub fn formatter(format: Format, style: Style) -> Box<dyn RunFormatter> {
    match format {
        Format::Table => Box::new(table::TableFormatter { style }),
        Format::Json => Box::new(json::JsonFormatter),
        Format::Ndjson => Box::new(ndjson::NdjsonFormatter),
    }
}
