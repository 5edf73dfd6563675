//! Drift across gate runs: each run keeps what it read in the plan's history, and the next
//! one reports what changed since — here the demo's zones edited between two runs the way
//! migrations go wrong (a sender's include dropped in a tidy-up, a DMARC policy relaxed after a
//! complaint, a DKIM selector lost in a DNS provider move).

mod support;

use serde_json::Value;
use std::path::Path;
use support::{fixtures, json, mailshift};

/// A copy of the demo's fixed zones, `edit` applied to northwind.example's zone file.
fn zones(dir: &Path, edit: impl Fn(String) -> String) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(fixtures().join("demo/after")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap();
        let text = if name == "northwind.example.zone" {
            edit(text)
        } else {
            text
        };
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn gate(state: &Path, zones: &Path, extra: &[&str]) -> (i32, Value) {
    let out = mailshift()
        .arg("gate")
        .arg(fixtures().join("plans/northwind.toml"))
        .args([
            "--stage",
            "cutover",
            "--offline",
            "--format",
            "json",
            "--force",
            "drift test",
        ])
        .args(extra)
        .arg("--state")
        .arg(state)
        .arg("--zone")
        .arg(zones)
        .output()
        .unwrap();
    (out.status.code().unwrap(), json(&out.stdout))
}

fn drift(report: &Value) -> Vec<(String, String, String)> {
    report["drift"]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no drift section: {report:#}"))
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["domain"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_next_gate_run_reports_what_changed_in_the_records_since_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = dir.path().join("first");
    zones(&first, |t| {
        t.replace(
            "_dmarc  IN TXT  \"v=DMARC1; p=none;",
            "_dmarc  IN TXT  \"v=DMARC1; p=quarantine;",
        )
    });
    // The first run has nothing to compare with.
    let (code, report) = gate(&state, &first, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(report.get("drift").is_none(), "{:#}", report["drift"]);

    // Unchanged records: a drift section without changes.
    let (_, report) = gate(&state, &first, &[]);
    assert_eq!(drift(&report), []);

    // Between runs: Google Workspace's include dropped, DMARC relaxed back to monitoring and one
    // report address lost, SendGrid's s2 selector lost.
    let second = dir.path().join("second");
    zones(&second, |t| {
        let t = t.replace(
            "\"v=spf1 include:_spf.google.com include:servers.mcsv.net include:sendgrid.net ~all\"",
            "\"v=spf1 include:servers.mcsv.net include:sendgrid.net ~all\"",
        );
        let t = t.replace(
            "rua=mailto:dmarc@northwind.example,mailto:agg@reports.reportly.example",
            "rua=mailto:dmarc@northwind.example",
        );
        t.lines()
            .filter(|l| !l.trim_start().starts_with("s2._domainkey "))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let (_, report) = gate(&state, &second, &[]);
    let found = drift(&report);
    for expected in [
        ("drift.spf-include-removed", "northwind.example", "warn"),
        ("drift.dmarc-weakened", "northwind.example", "warn"),
        ("drift.dmarc-reports-dropped", "northwind.example", "warn"),
        ("drift.dkim-removed", "northwind.example", "warn"),
    ] {
        assert!(
            found
                .iter()
                .any(|(id, d, s)| (id.as_str(), d.as_str(), s.as_str()) == expected),
            "{expected:?} not in {found:?}"
        );
    }
    let messages: Vec<&str> = report["drift"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("dropped include:_spf.google.com")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("p=quarantine → p=none")),
        "{messages:?}"
    );
    assert!(report["drift"]["since"].as_str().unwrap().starts_with("20"));

    // The table says it too, without changing the decision's words.
    let out = mailshift()
        .arg("gate")
        .arg(fixtures().join("plans/northwind.toml"))
        .args(["--stage", "cutover", "--offline", "--format", "table"])
        .args(["--force", "drift test", "--no-record", "--state"])
        .arg(&state)
        .arg("--zone")
        .arg(&first)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    // Against the second run's records, the first's are the change: the include is back.
    assert!(table.contains("Since the previous gate run ("), "{table}");
    assert!(table.contains("drift.spf-include-added"), "{table}");

    // --no-record kept nothing: the next recorded run still compares with the second.
    let (_, report) = gate(&state, &second, &[]);
    assert_eq!(drift(&report), []);
}

fn check(state: &Path, zones: &Path) -> (i32, Vec<String>) {
    check_with(state, zones, &[])
}

fn check_with(state: &Path, zones: &Path, extra: &[&str]) -> (i32, Vec<String>) {
    let out = mailshift()
        .args([
            "check",
            "northwind.example",
            "--offline",
            "--format",
            "json",
        ])
        .args(["--selector", "s1", "--selector", "s2"])
        .args(extra)
        .arg("--state")
        .arg(state)
        .arg("--zone")
        .arg(zones)
        .output()
        .unwrap();
    let report = json(&out.stdout);
    let ids = report["domains"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("drift."))
        .map(|f| {
            format!(
                "{} {}",
                f["id"].as_str().unwrap(),
                f["severity"].as_str().unwrap()
            )
        })
        .collect();
    (out.status.code().unwrap(), ids)
}

#[test]
fn check_with_a_state_directory_reports_drift_per_domain() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let before = dir.path().join("before");
    zones(&before, |t| t);
    let (_, ids) = check(&state, &before);
    assert_eq!(ids, Vec::<String>::new(), "nothing to compare with yet");
    let (_, ids) = check(&state, &before);
    assert_eq!(ids, Vec::<String>::new(), "nothing changed");

    // One report address dropped: nothing else about the domain changes.
    let after = dir.path().join("after");
    zones(&after, |t| {
        t.replace(
            "rua=mailto:dmarc@northwind.example,mailto:agg@reports.reportly.example",
            "rua=mailto:dmarc@northwind.example",
        )
    });
    let (_, ids) = check(&state, &after);
    assert_eq!(ids, ["drift.dmarc-reports-dropped warn"]);
    // Kept: the next check compares with the records without s2.
    let (_, ids) = check(&state, &after);
    assert_eq!(ids, Vec::<String>::new());
}

/// A check that left a family out (`--skip`) read nothing of it, so it neither reports a
/// change there nor forgets what the runs before it saw: the next full check compares with
/// the last record known.
#[test]
fn a_skipped_family_keeps_its_last_known_records_for_the_next_check() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let before = dir.path().join("before");
    zones(&before, |t| t);
    let after = dir.path().join("after");
    zones(&after, |t| {
        format!(
            "{t}\ndefault._bimi IN TXT \"v=BIMI1; l=https://northwind.example/bimi/logo.svg\"\n"
        )
    });
    let (_, ids) = check(&state, &before);
    assert_eq!(ids, Vec::<String>::new());
    let (_, ids) = check_with(&state, &after, &["--skip", "bimi"]);
    assert_eq!(ids, Vec::<String>::new(), "BIMI was not read");
    let (_, ids) = check(&state, &after);
    assert_eq!(ids, ["drift.bimi-added info"]);
    let (_, ids) = check(&state, &after);
    assert_eq!(ids, Vec::<String>::new());
}
