//! The demo plan's warmup end to end (`fixtures/plans/northwind.toml`): the evidence its
//! `[warmup] evidence` names (`fixtures/demo/warmup/`: daily metrics, Postmaster Tools traffic
//! stats, an SNDS export) is imported by the commands that judge it, once; the four incidents in
//! it are decided as the operators would; the cutover gate opens on the fixed zones once every
//! cohort finished clean; the cleanup gate opens once Mailchimp is gone from DNS and the three
//! hand-over steps are attested.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{fixtures, json, mailshift};

fn plan() -> PathBuf {
    fixtures().join("plans/northwind.toml")
}

/// Runs `mailshift COMMAND PLAN REST… --state STATE` on the demo plan: exit code, stdout,
/// stderr.
fn run(state: &Path, command: &[&str], rest: &[&str]) -> (i32, String, String) {
    let out = mailshift()
        .args(command)
        .arg(plan())
        .args(rest)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `warmup status --as-of DAY --format json`: exit code and the `warmup` object.
fn status(state: &Path, as_of: &str) -> (i32, Value, String) {
    let (code, out, err) = run(
        state,
        &["warmup", "status"],
        &["--as-of", as_of, "--format", "json"],
    );
    (code, json(out.as_bytes())["warmup"].clone(), err)
}

/// Every day that was not a plain advance: `cohort day provider decision: reasons`.
fn incidents(warmup: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for cohort in warmup["cohorts"].as_array().unwrap() {
        for track in cohort["providers"].as_array().unwrap() {
            for day in track["days"].as_array().unwrap() {
                if day["decision"] != "advance" {
                    out.push(format!(
                        "{} {} {} {}: {}",
                        cohort["name"].as_str().unwrap(),
                        day["day"].as_str().unwrap(),
                        track["provider"].as_str().unwrap(),
                        day["decision"].as_str().unwrap(),
                        day["reasons"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r.as_str().unwrap())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

fn requirement<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["requirement"] == name)
        .unwrap_or_else(|| panic!("no requirement {name} in {report:#}"))
}

#[test]
fn the_demo_evidence_is_imported_once_and_its_incidents_decided() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, warmup, err) = status(&state, "2026-11-07");
    assert_eq!(code, 0, "{err}");
    for (file, counted) in [
        ("metrics.csv", 260),
        ("postmaster-traffic-stats.json", 33),
        ("snds-export.csv", 33),
    ] {
        assert!(
            err.contains(&format!("demo/warmup/{file} ("))
                && err.contains(&format!(": {counted} counted, 0 duplicates, 0 rejected")),
            "{file} not reported imported:\n{err}"
        );
    }
    // Each cohort started the day after the one before finished, and finished clean.
    let cohorts: Vec<(String, String, String, String)> = warmup["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("state"), s("started"), s("finished"))
        })
        .collect();
    let expected = [
        ("engaged-30d", "2026-10-05", "2026-10-15"),
        ("engaged-90d", "2026-10-16", "2026-10-27"),
        ("rest", "2026-10-28", "2026-11-06"),
    ];
    for ((name, state, started, finished), (e_name, e_started, e_finished)) in
        cohorts.iter().zip(expected)
    {
        assert_eq!(
            (
                name.as_str(),
                state.as_str(),
                started.as_str(),
                finished.as_str()
            ),
            (e_name, "finished", e_started, e_finished)
        );
    }
    assert_eq!(warmup["finished"], true);
    // The four incidents the evidence holds, decided per provider; nothing else held.
    assert_eq!(
        incidents(&warmup),
        [
            "engaged-30d 2026-10-07 gmail hold: Postmaster user-reported spam 0.12% over the 0.10% target",
            "engaged-90d 2026-10-19 microsoft back-off: complaints 0.34% at or over the 0.30% ceiling",
            "engaged-90d 2026-10-21 yahoo hold: deferrals 6.99% over 5.00% (throttled)",
            "rest 2026-10-29 microsoft hold: SNDS filter result YELLOW",
        ]
    );

    // Run again: nothing is imported twice, and the decision is the same.
    let (code, again, err) = status(&state, "2026-11-07");
    assert_eq!(code, 0);
    assert!(!err.contains("imported"), "imported again:\n{err}");
    assert_eq!(again, warmup);
    let db = rusqlite::Connection::open(state.join("history.db")).unwrap();
    let (imports, rows): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM imports), (SELECT count(*) FROM daily)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((imports, rows), (3, 260));
}

#[test]
fn the_morning_after_a_back_off_says_so_and_plans_the_step_before() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // 2026-10-19: Microsoft's complaints of engaged-90d reached 0.34%.
    let (code, warmup, _) = status(&state, "2026-10-20");
    assert_eq!(code, 1, "a back-off is a failed check");
    let cohort = &warmup["cohorts"][1];
    assert_eq!(
        (&cohort["name"], &cohort["state"], &cohort["decision"]),
        (
            &Value::from("engaged-90d"),
            &Value::from("warming"),
            &Value::from("back-off")
        )
    );
    let (code, out, err) = run(
        &state,
        &["warmup", "next"],
        &["--date", "2026-10-20", "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let next = json(out.as_bytes());
    let volumes: Vec<(String, u64, u64)> = next["cohorts"][1]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap().to_string(),
                p["messages"].as_u64().unwrap(),
                p["step"].as_u64().unwrap(),
            )
        })
        .collect();
    // 5,000 a day ×1.6: step 4 is 32,768, step 2 12,800; Microsoft's 20% goes back a step.
    assert_eq!(
        volumes,
        [
            ("gmail".to_string(), 14746, 4),
            ("yahoo".to_string(), 4915, 4),
            ("microsoft".to_string(), 2560, 2),
            ("other".to_string(), 6554, 4),
        ]
    );
    assert_eq!(next["cohorts"][2]["messages"], 0, "rest waits");
}

#[test]
fn the_cutover_opens_on_the_demo_evidence_and_the_cleanup_once_mailchimp_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let gate = |stage: &str, zones: &str| {
        let (code, out, err) = run(
            &state,
            &["gate"],
            &[
                "--stage",
                stage,
                "--offline",
                "--format",
                "json",
                // The seed stages need real seed messages; this test is about what follows.
                "--force",
                "seed tests passed on the staging plan (ticket DLV-7)",
                "--zone",
                &fixtures().join(zones).to_string_lossy(),
            ],
        );
        (code, json(out.as_bytes()), err)
    };

    // The demo zones as they are: the cutover stays closed on their DNS mistakes, but its
    // warmup requirement already passes on the imported evidence.
    let (code, report, err) = gate("cutover", "demo/zones");
    assert_eq!(code, 1, "{err}");
    assert_eq!(requirement(&report, "warmup")["status"], "passed");
    assert_eq!(requirement(&report, "dns")["status"], "failed");

    // The zones with the mistakes fixed: the cutover opens.
    let (code, report, err) = gate("cutover", "demo/after");
    assert_eq!(code, 0, "{err}\n{report:#}");
    let warmup = requirement(&report, "warmup");
    assert_eq!(warmup["status"], "passed");
    assert!(
        warmup["summary"]
            .as_str()
            .unwrap()
            .contains("engaged-30d on 2026-10-15, engaged-90d on 2026-10-27, rest on 2026-11-06"),
        "{warmup:#}"
    );

    // Mailchimp still published: old-removed fails with the exact records to remove.
    let (code, report, _) = gate("cleanup", "demo/after");
    assert_eq!(code, 1);
    let old = requirement(&report, "old-removed");
    assert_eq!(old["status"], "failed");
    let include = old["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "retired.include-present")
        .unwrap_or_else(|| panic!("{old:#}"));
    // The budget the removal regains, and the exact record without Mailchimp's include.
    assert!(
        include["message"]
            .as_str()
            .unwrap()
            .ends_with("Removing it regains 1 of the 10 DNS lookups SPF allows (6 now, 5 after)."),
        "{include:#}"
    );
    assert_eq!(
        include["fix"]["records"][0]["value"],
        "v=spf1 include:_spf.google.com include:sendgrid.net ~all"
    );

    // Removed from DNS, but the hand-over steps not yet confirmed.
    let (code, report, _) = gate("cleanup", "demo/cleanup");
    assert_eq!(code, 1);
    assert_eq!(requirement(&report, "old-removed")["status"], "passed");
    assert_eq!(
        requirement(&report, "attested:webhooks-moved")["status"],
        "failed"
    );
    for step in [
        "suppression-list-imported",
        "webhooks-moved",
        "mailchimp-api-keys-revoked",
    ] {
        let (code, _, err) = run(
            &state,
            &["attest"],
            &[
                step,
                "--by",
                "Dana Whitfield",
                "--note",
                "done in the Mailchimp and SendGrid consoles",
            ],
        );
        assert_eq!(code, 0, "{step}: {err}");
    }
    let (code, report, err) = gate("cleanup", "demo/cleanup");
    assert_eq!(code, 0, "{err}\n{report:#}");
    assert_eq!(report["decision"], "open");
}

#[test]
fn no_record_judges_the_evidence_without_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, out, err) = run(
        &state,
        &["gate"],
        &[
            "--stage",
            "cutover",
            "--offline",
            "--no-record",
            "--format",
            "json",
            "--force",
            "a pull request's check",
            "--zone",
            &fixtures().join("demo/after").to_string_lossy(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        requirement(&json(out.as_bytes()), "warmup")["status"],
        "passed"
    );
    assert!(err.contains("metrics.csv"), "{err}");
    assert!(!state.exists(), "--no-record wrote the state directory");
}

/// A copy of the demo plan in `dir` whose evidence is `evidence` (paths relative to `dir`).
fn plan_with_evidence(dir: &Path, evidence: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(plan()).unwrap();
    let start = text.find("evidence = [").unwrap();
    let end = start + text[start..].find("]\n").unwrap() + 2;
    let list: Vec<String> = evidence.iter().map(|e| format!("{e:?}")).collect();
    let text = format!(
        "{}evidence = [{}]\n{}",
        &text[..start],
        list.join(", "),
        &text[end..]
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn evidence_that_cannot_be_imported_is_named_and_bad_rows_are_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let demo = fixtures().join("demo/warmup");
    let mut csv = std::fs::read_to_string(demo.join("metrics.csv")).unwrap();
    csv.push_str("2026-11-07,rest,gmail,-5,0,0,0,0,0,0,0,0\n");
    std::fs::write(dir.path().join("metrics.csv"), csv).unwrap();

    // A file the plan names that is not there: nothing is judged on less than the plan says.
    // The other file is imported, its bad row reported with its file and line.
    let plan = plan_with_evidence(dir.path(), &["metrics.csv", "snds-missing.csv"]);
    let out = mailshift()
        .args(["warmup", "status"])
        .arg(&plan)
        .args(["--as-of", "2026-11-07"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        out.stdout.is_empty(),
        "a status was printed without its evidence"
    );
    assert!(
        err.contains("snds-missing.csv") && err.contains("could not be imported"),
        "{err}"
    );
    assert!(
        err.contains("260 counted, 0 duplicates, 1 rejected"),
        "{err}"
    );
    assert!(
        err.contains("metrics.csv:262: `sent` is -5") && err.contains("(row rejected)"),
        "{err}"
    );
    // The default state directory is beside the plan.
    assert!(dir.path().join("plan.state/history.db").is_file());

    // Without the missing file: the metrics were imported already (reported that once), and
    // the warmup is judged on their good rows.
    let plan = plan_with_evidence(dir.path(), &["metrics.csv"]);
    let out = mailshift()
        .args(["warmup", "status"])
        .arg(&plan)
        .args(["--as-of", "2026-11-07", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out.stdout)["warmup"]["finished"], true);
}
