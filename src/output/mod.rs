//! Output formats: one formatter per format, all over the same [`CheckRun`].
//!
//! A new format is one file here and one variant of [`Format`]. Formatters only render; colour
//! and width decisions are made by the caller and passed in [`Style`].

pub mod csv;
pub mod escape;
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
    /// A row per finding (domain, status, check, severity, message, fix, evidence), for
    /// spreadsheets; cells that would run as formulas get a leading `'`.
    Csv,
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
        Format::Csv => Box::new(csv::CsvFormatter),
    }
}

/// A table in mailshift's style: condensed UTF-8 borders; wrapped to the terminal (or 120
/// columns when the terminal reports a uselessly small width) when `wrap`; colour only when
/// `color`.
pub fn new_table(color: bool, wrap: bool) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    if wrap {
        table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
        // Some terminals (and pseudo-terminals under `script` or CI runners) report a width of
        // zero or a few columns; wrapping to that would print one character per line.
        if table.width().is_none_or(|w| w < 60) {
            table.set_width(120);
        }
    }
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table
}

/// A table cell holding outside text, control characters escaped ([`escape::text`]).
pub fn cell(text: impl AsRef<str>) -> comfy_table::Cell {
    comfy_table::Cell::new(escape::text(text.as_ref()))
}

/// A row of outside text, each cell escaped.
pub fn row<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Vec<comfy_table::Cell> {
    texts.into_iter().map(cell).collect()
}

/// A value as pretty JSON with a final newline (or a JSON error object, never a panic).
pub fn pretty_json<T: serde::Serialize>(value: &T) -> String {
    let mut out = serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise the report: {e}\"}}"));
    out.push('\n');
    out
}

/// The last line of a table report, the same for domains and messages:
/// `5 messages: 1 pass, 0 warn, 3 fail, 0 inconclusive, 1 not messages · 0 DNS queries, 8
/// answered from zone files · 0.03 s`. `unusable` (inputs that could not be judged, with their
/// label) is shown only when there are some.
pub struct SummaryLine<'a> {
    pub count: usize,
    /// Singular; an `s` is added for any count but one.
    pub noun: &'a str,
    /// pass, warn, fail, inconclusive.
    pub statuses: [usize; 4],
    pub unusable: (usize, &'a str),
    pub queries: u64,
    pub zone_answers: u64,
    pub elapsed_ms: u64,
}

impl std::fmt::Display for SummaryLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [pass, warn, fail, inconclusive] = self.statuses;
        write!(
            f,
            "{} {}{}: {pass} pass, {warn} warn, {fail} fail, {inconclusive} inconclusive",
            self.count,
            self.noun,
            if self.count == 1 { "" } else { "s" },
        )?;
        if self.unusable.0 > 0 {
            write!(f, ", {} {}", self.unusable.0, self.unusable.1)?;
        }
        write!(
            f,
            " · {} DNS queries, {} answered from zone files · {:.2} s",
            self.queries,
            self.zone_answers,
            self.elapsed_ms as f64 / 1000.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::SummaryLine;

    #[test]
    fn summary_line_counts_plural_and_unusable_inputs() {
        let mut line = SummaryLine {
            count: 5,
            noun: "message",
            statuses: [1, 0, 3, 0],
            unusable: (1, "not messages"),
            queries: 0,
            zone_answers: 8,
            elapsed_ms: 30,
        };
        assert_eq!(
            line.to_string(),
            "5 messages: 1 pass, 0 warn, 3 fail, 0 inconclusive, 1 not messages · 0 DNS queries, 8 answered from zone files · 0.03 s"
        );
        line.count = 1;
        line.noun = "domain";
        line.statuses = [1, 0, 0, 0];
        line.unusable = (0, "invalid");
        assert_eq!(
            line.to_string(),
            "1 domain: 1 pass, 0 warn, 0 fail, 0 inconclusive · 0 DNS queries, 8 answered from zone files · 0.03 s"
        );
    }
}
