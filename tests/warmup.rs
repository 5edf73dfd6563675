//! Warmup and the history: attested steps, evidence imports, the daily decision, and the
//! gates that depend on them.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{json, mailshift};

/// A plan in `dir` from `text`.
fn write_plan(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const HANDOVER: &str = r#"
[migration]
name = "Lakeside Books: Mailchimp to SendGrid"
from = "mailchimp"
to = "sendgrid"

[[domain]]
name = "lakeside-books.co.uk"

[[stage]]
name = "handover"
requires = ["attested:suppression-list-imported", "attested:old-api-keys-revoked"]
"#;

#[test]
fn steps_no_dns_query_can_prove_are_attested_and_kept_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), HANDOVER);
    let gate = || {
        let out = mailshift()
            .arg("gate")
            .arg(&plan)
            .args(["--offline", "--format", "json"])
            .output()
            .unwrap();
        (out.status.code().unwrap(), json(&out.stdout))
    };
    let (code, report) = gate();
    assert_eq!(code, 1);
    assert!(report["requirements"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("mailshift attest PLAN suppression-list-imported"));
    let attest = |step: &str, by: &str, note: &str| {
        mailshift()
            .arg("attest")
            .arg(&plan)
            .arg(step)
            .args(["--by", by, "--note", note])
            .output()
            .unwrap()
    };
    // A step no stage names, or an attestation without a name, is refused.
    let out = attest("supression-list-imported", "Priya Shah", "done");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("steps it names: suppression-list-imported, old-api-keys-revoked"));
    assert_eq!(
        attest("old-api-keys-revoked", " ", "done").status.code(),
        Some(2)
    );
    assert!(attest(
        "suppression-list-imported",
        "Priya Shah",
        "18,204 suppressions exported from Mailchimp and imported into SendGrid (OPS-311)"
    )
    .status
    .success());
    let (code, report) = gate();
    assert_eq!(code, 1, "one step is still unconfirmed: {report:#}");
    assert_eq!(report["requirements"][0]["status"], "passed");
    assert!(report["requirements"][0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("confirmed by Priya Shah on 20"));
    assert!(attest(
        "old-api-keys-revoked",
        "Tom Okafor",
        "Mailchimp API keys deleted (OPS-312)"
    )
    .status
    .success());
    let (code, _) = gate();
    assert_eq!(code, 0);
    let history: Value = json(
        &mailshift()
            .arg("history")
            .arg(&plan)
            .args(["--format", "json"])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(history["attestations"].as_array().unwrap().len(), 2);
    assert_eq!(history["attestations"][1]["by"], "Tom Okafor");
    assert_eq!(history["openings"][0]["stage"], "handover");
    let table = mailshift()
        .arg("history")
        .arg(&plan)
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("attested") && text.contains("by Priya Shah"),
        "{text}"
    );
}

#[test]
fn concurrent_runs_share_the_history_without_losing_a_write() {
    // Eight processes write to one history at once (two CI jobs, an operator): every write
    // lands, the database stays consistent, and the schema was created once.
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), HANDOVER);
    let children: Vec<std::process::Child> = (0..8)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_mailshift"))
                .arg("attest")
                .arg(&plan)
                .arg(if i % 2 == 0 {
                    "suppression-list-imported"
                } else {
                    "old-api-keys-revoked"
                })
                .args(["--by", &format!("operator {i}"), "--note", "parallel"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let history: Value = json(
        &mailshift()
            .arg("history")
            .arg(&plan)
            .args(["--format", "json"])
            .output()
            .unwrap()
            .stdout,
    );
    let mut by: Vec<String> = history["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap().to_string())
        .collect();
    by.sort();
    assert_eq!(
        by,
        (0..8).map(|i| format!("operator {i}")).collect::<Vec<_>>()
    );
    let conn = rusqlite::Connection::open(dir.path().join("plan.state/history.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
