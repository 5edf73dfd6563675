//! Formatters for a gate decision: one file per format, behind [`GateFormatter`].

pub mod github;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod table;

use crate::gate::{Decision, GateReport, RequirementStatus};
use crate::output::Style;

/// The formats `mailshift gate` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GateFormat {
    /// Human-readable tables (the default on a terminal).
    Table,
    /// One JSON document.
    Json,
    /// JUnit XML: one test case per requirement, for CI test reports.
    Junit,
    /// GitHub Actions workflow annotations (and a step summary in $GITHUB_STEP_SUMMARY).
    Github,
    /// A Markdown report (for merge-request comments and wikis).
    Markdown,
}

pub trait GateFormatter {
    fn format(&self, report: &GateReport) -> String;
}

/// The formatter for a format; only the table uses `style` (colour, width).
pub fn formatter(format: GateFormat, style: Style) -> Box<dyn GateFormatter> {
    match format {
        GateFormat::Table => Box::new(table::TableFormatter { style }),
        GateFormat::Json => Box::new(json::JsonFormatter),
        GateFormat::Junit => Box::new(junit::JunitFormatter),
        GateFormat::Github => Box::new(github::GithubFormatter),
        GateFormat::Markdown => Box::new(markdown::MarkdownFormatter),
    }
}

pub(crate) fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Open => "OPEN",
        Decision::Closed => "CLOSED",
        Decision::Inconclusive => "INCONCLUSIVE",
    }
}

pub(crate) fn status_word(s: RequirementStatus) -> &'static str {
    match s {
        RequirementStatus::Passed => "passed",
        RequirementStatus::Deferred => "deferred",
        RequirementStatus::Inconclusive => "inconclusive",
        RequirementStatus::Failed => "failed",
    }
}

/// Which platforms send at the report's stage, in words that fit the stage.
pub(crate) fn stage_sentence(report: &GateReport) -> &'static str {
    if report.before_cutover {
        "Old and new platforms both send at this stage (it is before the cutover)."
    } else {
        "From this stage on only the new platforms send: the old ones are retired at the cutover."
    }
}

/// Sentences about the stage's history: forced past the order, opened before (and whether the
/// records changed since).
pub(crate) fn history_notes(report: &GateReport) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(reason) = &report.forced {
        notes.push(format!(
            "Forced past the stage order: {}",
            crate::output::escape::text(reason)
        ));
    }
    if let Some(before) = &report.opened_before {
        notes.push(match before.records_changed {
            Some(true) => format!(
                "This gate opened on {}; the DNS records read now differ from those it opened on.",
                before.opened_at
            ),
            Some(false) => format!(
                "This gate opened on {}; the DNS records read now are the ones it opened on.",
                before.opened_at
            ),
            None => format!("This gate opened on {}.", before.opened_at),
        });
    }
    if let Some(drift) = &report.drift {
        if !drift.findings.is_empty() {
            notes.push(format!(
                "Since the previous gate run ({}), {} in the records:",
                drift.since,
                crate::words::count(drift.findings.len(), "change", "changes")
            ));
        }
        for f in &drift.findings {
            notes.push(format!(
                "  {} {} ({}): {}",
                crate::output::escape::text(&f.finding.severity.to_string()),
                f.finding.id,
                crate::output::escape::text(&f.domain),
                crate::output::escape::text(&f.finding.message)
            ));
        }
    }
    notes
}

/// The one-line headline of a report.
pub(crate) fn headline(report: &GateReport) -> String {
    format!(
        "Gate for stage `{}` ({} of {}) of \"{}\": {}",
        report.stage,
        report.stage_number,
        report.stages,
        crate::output::escape::text(&report.plan),
        decision_word(report.decision)
    )
}
