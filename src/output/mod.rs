//! Output formats: one formatter per format, all over the same [`CheckRun`].
//!
//! A new format is one file here and one variant of [`Format`]. Formatters only render; colour
//! and width decisions are made by the caller, once, and passed in [`Style`].

pub mod csv;
pub mod escape;
pub mod gate;
pub mod json;
pub mod ndjson;
pub mod reports;
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

/// Presentation choices made at the edge (terminal or not, NO_COLOR, --verbose, the width).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Show evidence for passing and informational findings too.
    pub verbose: bool,
    /// The display columns tables and the lines around them are wrapped to. `None` leaves
    /// lines as long as their content, for a program embedding the library; the command line
    /// always decides one (`cli::common::output_width`).
    pub width: Option<u16>,
}

/// The width of human reports that do not go to a terminal (piped, `--output FILE`), unless
/// `COLUMNS` says otherwise: one fixed width, so a report in a CI log or a file reads the same
/// on every machine.
pub const PIPED_WIDTH: u16 = 100;

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

/// A table in mailshift's style: condensed UTF-8 borders; wrapped to `width` when there is
/// one; colour only when `color`.
pub fn new_table(color: bool, width: Option<u16>) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    // Colour and width were decided at the edge; left to itself comfy-table would ask the
    // terminal again, and only when styling is off would it stop asking.
    table.force_no_tty();
    if let Some(width) = width {
        table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
        table.set_width(width);
    }
    if color {
        table.enforce_styling();
    }
    table
}

/// Lines of a human report outside its tables, wrapped to the same `width`: each line on its
/// own, at spaces where it can (a long word is split), with the lines it wraps onto indented by
/// `indent`. Colour sequences take no room. Without a width the text is unchanged.
pub fn wrap(text: &str, width: Option<u16>, indent: &str) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    // Words are broken only when longer than a line: splitting `List-Unsubscribe-Post` at its
    // hyphens would print a header name that does not exist.
    let options = textwrap::Options::new(usize::from(width))
        .subsequent_indent(indent)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    text.split('\n')
        .map(|line| {
            // textwrap keeps a line's own leading spaces only as a word; as the first line's
            // indent they survive wrapping.
            let body = line.trim_start_matches(' ');
            let lead = &line[..line.len() - body.len()];
            textwrap::fill(body, options.clone().initial_indent(lead))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fix for people: its words, then each exact DNS change the words do not already quote
/// (`Change: replace _dmarc.example.com TXT "…"`).
pub fn fix_text(fix: &crate::finding::Fix) -> String {
    let mut text = fix.text.clone();
    for change in &fix.records {
        if !fix.text.contains(&change.value) || !fix.text.contains(change.name.as_str()) {
            text.push_str(&format!(
                "\nChange: {} {} {} {}",
                match change.action {
                    crate::finding::RecordAction::Add => "add",
                    crate::finding::RecordAction::Replace => "replace",
                    crate::finding::RecordAction::Remove => "remove",
                },
                change.name,
                change.rtype,
                crate::fixes::zone_data(&change.rtype, &change.value)
            ));
        }
    }
    text
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
/// Version of every JSON document mailshift writes, first field `schema_version`. Raised when a
/// field changes meaning or shape (2: `fix` became `{text, records}`; lists became objects);
/// adding fields does not raise it. See README, "JSON schema".
pub const SCHEMA_VERSION: u32 = 2;

/// A document with its schema version as first field.
#[derive(serde::Serialize)]
struct Versioned<'a, T: serde::Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    document: &'a T,
}

impl<'a, T: serde::Serialize> Versioned<'a, T> {
    fn of(document: &'a T) -> Versioned<'a, T> {
        Versioned {
            schema_version: SCHEMA_VERSION,
            document,
        }
    }
}

/// [`pretty_json`] written to `out` as it is made: a document of thousands of entries is
/// neither built as a value nor held as text first.
pub fn write_pretty_json<T: serde::Serialize>(
    out: impl std::io::Write,
    value: &T,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    serde_json::to_writer_pretty(&mut out, &Versioned::of(value)).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Serialises a path as a string, with U+FFFD for bytes that are not UTF-8 (serde's own
/// `Path` impl fails on them, and a file name is outside input).
pub fn lossy_path<S: serde::Serializer>(
    path: &std::path::Path,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// [`lossy_path`] for a path that may be absent (`null`).
pub fn lossy_optional_path<S: serde::Serializer>(
    path: &Option<std::path::PathBuf>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => lossy_path(path, serializer),
        None => serializer.serialize_none(),
    }
}

/// A JSON document (a struct or map: its fields follow `schema_version`), pretty-printed with a
/// final newline.
pub fn pretty_json<T: serde::Serialize>(value: &T) -> String {
    let mut out = serde_json::to_string_pretty(&Versioned::of(value))
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
    use super::{wrap, SummaryLine};
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn text_lines_wrap_like_the_tables() {
        let text = "  argument 2: `https://www.example.com/path` is not a valid domain name: this looks like a URL\nnext line";
        assert_eq!(wrap(text, None, "  "), text);
        let wrapped = wrap(text, Some(30), "  ");
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines.len() > 3, "{wrapped}");
        assert!(lines.iter().all(|l| l.width() <= 30), "{wrapped}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("  ") || *l == "next line"),
            "{wrapped}"
        );
        assert_eq!(lines.last(), Some(&"next line"));
        // Colour sequences take no room; hyphenated names are not split at their hyphens.
        let coloured = "\u{1b}[1mexample.com\u{1b}[0m  \u{1b}[1;31mFAIL\u{1b}[0m";
        assert_eq!(wrap(coloured, Some(17), ""), coloured);
        assert_eq!(
            wrap("see List-Unsubscribe-Post", Some(22), ""),
            "see\nList-Unsubscribe-Post"
        );
    }

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
