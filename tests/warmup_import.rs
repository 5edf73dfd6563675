//! `mailshift warmup import`: every evidence format counted exactly, each file and each event
//! once, bad rows reported at their line with the good ones kept, unreadable files refused by
//! name, a broken or interrupted import leaving nothing, and concurrent imports adding up.

mod support;

use mailshift::history::History;
use mailshift::warmup::import::{import_file, EvidenceKind, ImportOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{fixtures, json, mailshift};

fn plan() -> PathBuf {
    fixtures().join("plans/warmup-import.toml")
}

fn evidence(name: &str) -> PathBuf {
    fixtures().join("warmup").join(name)
}

/// Runs `warmup import` of `files` into `state`; its exit code, stdout and stderr.
fn import(state: &Path, files: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let out = mailshift()
        .args(["warmup", "import"])
        .arg(plan())
        .args(files)
        .arg("--state")
        .arg(state)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`import`], with `--format json`: the exit code and the report's files.
fn import_json(state: &Path, files: &[&Path], extra: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = import(state, files, &args);
    let doc = json(stdout.as_bytes());
    assert!(stderr.is_empty(), "{stderr}");
    (code, doc["files"].as_array().unwrap().clone())
}

fn db(state: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(state.join("history.db")).unwrap()
}

/// The `daily` rows of `source` as `day cohort provider: sent delivered hard soft complaints
/// deferrals blocks opens clicks` (`-` for NULL).
fn daily(state: &Path, source: &str) -> Vec<String> {
    let conn = db(state);
    let mut stmt = conn
        .prepare(
            "SELECT day, cohort, provider, sent, delivered, hard_bounces, soft_bounces, complaints,
             deferrals, blocks, opens, clicks FROM daily WHERE source = ?1
             ORDER BY day, cohort, provider",
        )
        .unwrap();
    let rows = stmt
        .query_map([source], |r| {
            let counts: Vec<String> = (3..12)
                .map(|i| {
                    r.get::<_, Option<i64>>(i)
                        .map(|v| v.map_or("-".to_string(), |n| n.to_string()))
                })
                .collect::<Result<_, _>>()?;
            Ok(format!(
                "{} {} {}: {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                counts.join(" ")
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn count(state: &Path, sql: &str) -> i64 {
    db(state).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The rows of `sendgrid-events-2026-11-02.json`: 23 events, all on the 2nd in Eastern time
/// (an open at 03:30 UTC on the 3rd included).
const SENDGRID_DAY_ONE: [&str; 7] = [
    "2026-11-02  other: 1 1 0 0 0 0 0 0 0",
    "2026-11-02 engaged-30d gmail: 1 1 0 0 0 0 0 1 1",
    "2026-11-02 engaged-30d microsoft: 2 1 0 0 1 0 1 0 0",
    "2026-11-02 engaged-30d other: 1 0 1 0 0 0 0 0 0",
    "2026-11-02 engaged-30d yahoo: 1 1 0 0 0 1 0 0 0",
    "2026-11-02 engaged-90d gmail: 1 1 0 0 0 0 0 1 0",
    "2026-11-02 engaged-90d yahoo: 1 1 0 0 0 0 0 0 0",
];

/// What `sendgrid-events-2026-11-03.ndjson` adds besides the three events it shares.
const SENDGRID_DAY_TWO: [&str; 3] = [
    "2026-11-03 engaged-30d gmail: 1 1 0 0 0 0 0 0 0",
    "2026-11-03 engaged-30d yahoo: 0 0 0 0 0 0 0 1 0",
    "2026-11-03 engaged-90d gmail: 0 0 0 0 1 0 0 0 0",
];

#[test]
fn sendgrid_events_count_on_the_plans_day_per_cohort_and_provider() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = evidence("sendgrid-events-2026-11-02.json");
    let (code, files) = import_json(&state, &[&file], &[]);
    assert_eq!(code, 0, "{files:#?}");
    let o = &files[0];
    assert_eq!(o["kind"], "sendgrid");
    for (field, n) in [
        ("records", 23),
        ("counted", 21),
        ("duplicates", 0),
        ("rejected", 0),
        ("dropped", 1),
        ("ignored", 1),
        ("without_cohort", 2),
    ] {
        assert_eq!(o[field], n, "{field}: {o:#}");
    }
    assert_eq!(o["days"], serde_json::json!(["2026-11-02"]));
    assert_eq!(daily(&state, "events"), SENDGRID_DAY_ONE);
    assert_eq!(count(&state, "SELECT count(*) FROM seen_events"), 22);
    let (kind, records): (String, i64) = db(&state)
        .query_row("SELECT kind, records FROM imports", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((kind.as_str(), records), ("sendgrid", 23));
}

#[test]
fn a_file_imported_twice_counts_once_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = evidence("sendgrid-events-2026-11-02.json");
    assert_eq!(import(&state, &[&file], &[]).0, 0);
    let copy = dir.path().join("webhook-post-copy.json");
    std::fs::copy(&file, &copy).unwrap();
    let (code, stdout, _) = import(&state, &[&copy, &file], &[]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout.matches("already imported on 20").count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains("2 files: all imported (2 of them before)."),
        "{stdout}"
    );
    assert_eq!(daily(&state, "events"), SENDGRID_DAY_ONE);
    assert_eq!(count(&state, "SELECT count(*) FROM imports"), 1);
}

#[test]
fn events_two_files_share_count_once_in_either_order() {
    let json_file = evidence("sendgrid-events-2026-11-02.json");
    let ndjson_file = evidence("sendgrid-events-2026-11-03.ndjson");
    let mut expected: Vec<String> = SENDGRID_DAY_ONE
        .iter()
        .chain(&SENDGRID_DAY_TWO)
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("a");
    let (code, files) = import_json(&state, &[&json_file, &ndjson_file], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        (
            &files[1]["records"],
            &files[1]["counted"],
            &files[1]["duplicates"]
        ),
        (&Value::from(7), &Value::from(4), &Value::from(3))
    );
    assert_eq!(files[1]["days"], serde_json::json!(["2026-11-03"]));
    assert_eq!(daily(&state, "events"), expected);
    let other = dir.path().join("b");
    let (code, files) = import_json(&other, &[&ndjson_file, &json_file], &[]);
    assert_eq!(code, 0);
    assert_eq!(files[1]["duplicates"], 3);
    assert_eq!(daily(&other, "events"), expected);
}

#[test]
fn ses_events_count_once_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, files) = import_json(&state, &[&evidence("ses-events.jsonl")], &[]);
    assert_eq!(code, 0, "{files:#?}");
    let o = &files[0];
    assert_eq!(o["kind"], "ses");
    for (field, n) in [
        ("records", 14),
        ("counted", 12),
        ("duplicates", 1),
        ("rejected", 0),
        ("rejected_by_platform", 1),
        ("ignored", 1),
        ("without_cohort", 0),
    ] {
        assert_eq!(o[field], n, "{field}: {o:#}");
    }
    assert_eq!(
        daily(&state, "events"),
        [
            "2026-11-02 engaged-90d gmail: 1 1 0 0 0 0 0 1 1",
            "2026-11-02 engaged-90d yahoo: 1 0 0 1 0 0 0 0 0",
            "2026-11-02 rest microsoft: 1 1 0 0 0 1 0 0 0",
            "2026-11-02 rest other: 1 0 1 0 0 0 0 0 0",
            "2026-11-03 rest microsoft: 0 0 0 0 1 0 0 0 0",
        ]
    );
}

#[test]
fn postmaster_days_and_snds_rows_are_stored_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, files) = import_json(
        &state,
        &[
            &evidence("postmaster-traffic-stats.json"),
            &evidence("snds-export.csv"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{files:#?}");
    assert_eq!(
        (&files[0]["kind"], &files[0]["counted"]),
        (&"postmaster".into(), &3.into())
    );
    assert_eq!(
        (&files[1]["kind"], &files[1]["counted"]),
        (&"snds".into(), &6.into())
    );
    let conn = db(&state);
    let mut stmt = conn
        .prepare(
            "SELECT day, domain, spam_ratio, domain_reputation, spf_success, dkim_success,
             dmarc_success FROM postmaster ORDER BY day",
        )
        .unwrap();
    let shown = |v: Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
    let rows: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {} spam {} domain {} spf {} dkim {} dmarc {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                shown(r.get(2)?),
                r.get::<_, Option<String>>(3)?.unwrap_or("-".into()),
                shown(r.get(4)?),
                shown(r.get(5)?),
                shown(r.get(6)?),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Google leaves out what it has too little traffic for: unknown, not zero.
    assert_eq!(
        rows,
        [
            "2026-11-01 news.bluefinprovisions.com spam - domain - spf 1 dkim 1 dmarc 1",
            "2026-11-02 news.bluefinprovisions.com spam 0.0004 domain HIGH spf 1 dkim 1 dmarc 1",
            "2026-11-03 news.bluefinprovisions.com spam 0.0012 domain HIGH spf 1 dkim 0.998 dmarc 0.998",
        ]
    );
    let (reputations, errors): (String, String) = conn
        .query_row(
            "SELECT ip_reputations, delivery_errors FROM postmaster WHERE day = '2026-11-03'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let reputations: Value = serde_json::from_str(&reputations).unwrap();
    assert_eq!(reputations[1]["reputation"], "MEDIUM");
    assert_eq!(reputations[1]["sampleIps"][0], "198.51.100.26");
    assert_eq!(
        errors,
        r#"[{"errorClass":"TEMPORARY_ERROR","errorRatio":0.012,"errorType":"RATE_LIMIT_EXCEEDED"}]"#
    );
    let mut stmt = conn
        .prepare(
            "SELECT day, ip, rcpt, data, recipients, filter, complaint_rate, trap_hits FROM snds
             ORDER BY day, ip",
        )
        .unwrap();
    let snds: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        snds,
        [
            "2026-11-01 198.51.100.25 1912 1907 1907 GREEN < 0.1% 0",
            "2026-11-01 198.51.100.26 1044 1040 1040 GREEN < 0.1% 0",
            "2026-11-02 198.51.100.25 3120 3101 3101 GREEN < 0.1% 0",
            "2026-11-02 198.51.100.26 2870 2833 2833 YELLOW 0.3% 1",
            "2026-11-03 198.51.100.25 4688 4652 4652 GREEN < 0.1% 0",
            "2026-11-03 198.51.100.26 4311 4270 4270 RED 0.6% 3",
        ]
    );
}

#[test]
fn bad_metrics_rows_are_reported_at_their_line_and_the_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let csv = evidence("metrics.csv");
    let (code, stdout, _) = import(&state, &[&csv], &[]);
    assert_eq!(code, 2, "{stdout}");
    let shown = csv.display().to_string();
    for problem in [
        ":7: `delivered` is -3: counts are whole numbers from 0",
        ":8: `cohort` `engaged-7d` is not one of the plan's cohorts (engaged-30d, engaged-90d, rest)",
        ":9: `day` is `2026-11-31`, not a date (write it as 2026-11-02)",
        ":10: `delivered` (640) is more than `sent` (630)",
    ] {
        assert!(stdout.contains(&format!("{shown}{problem}")), "{problem} in {stdout}");
    }
    assert!(
        stdout.contains("records 10, counted 6, duplicates 0, rejected 4"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 with rejected rows (their good rows are kept): exit 2"),
        "{stdout}"
    );
    let day_one = [
        "2026-11-02 engaged-30d gmail: 900 884 6 3 1 12 2 412 61",
        "2026-11-02 engaged-30d microsoft: 420 405 4 2 1 31 5 150 19",
        "2026-11-02 engaged-30d other: 380 374 5 1 0 2 0 160 22",
        "2026-11-02 engaged-30d yahoo: 300 291 3 2 0 9 1 118 14",
    ];
    let mut expected: Vec<&str> = day_one.to_vec();
    expected.extend([
        "2026-11-03 engaged-30d gmail: 1350 1329 8 4 1 15 3 620 88",
        "2026-11-03 engaged-30d other: 570 560 6 2 0 3 1 240 30",
    ]);
    assert_eq!(daily(&state, "metrics"), expected);
    // The JSON export corrects the 3rd for Gmail and adds the 4th: the corrected row replaces.
    let (code, files) = import_json(&state, &[&evidence("metrics.json")], &[]);
    assert_eq!(code, 0);
    assert_eq!(files[0]["counted"], 3);
    let mut expected: Vec<&str> = day_one.to_vec();
    expected.extend([
        "2026-11-03 engaged-30d gmail: 1350 1331 8 4 1 15 3 622 88",
        "2026-11-03 engaged-30d other: 570 560 6 2 0 3 1 240 30",
        "2026-11-04 engaged-30d gmail: 2000 1968 12 5 2 24 4 905 131",
        "2026-11-04 engaged-30d yahoo: 660 648 4 2 1 14 2 - -",
    ]);
    assert_eq!(daily(&state, "metrics"), expected);
}

#[test]
fn what_cannot_be_read_is_refused_by_name_and_the_other_files_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fifo = dir.path().join("events.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo does not keep the pointer.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let garbage = dir.path().join("export.bin");
    std::fs::write(
        &garbage,
        b"PK\x03\x04\x14\x00\x08\x00\x08\x00\xff\xfe\x00\x00",
    )
    .unwrap();
    let unknown = dir.path().join("contacts.json");
    std::fs::write(
        &unknown,
        r#"[{"id": 7, "first_name": "Ann", "list": "weekly"}]"#,
    )
    .unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let good = evidence("snds-export.csv");
    let (code, stdout, _) = import(&state, &[&fifo, &garbage, &unknown, &empty, &good], &[]);
    assert_eq!(code, 2, "{stdout}");
    for expected in [
        format!(
            "{}: the evidence file is a FIFO (named pipe), not a regular file",
            fifo.display()
        ),
        format!(
            "{}: the evidence file is not UTF-8 text (first bad byte at offset 10)",
            garbage.display()
        ),
        format!(
            "{}: JSON with fields first_name, id, list is none of the formats mailshift reads",
            unknown.display()
        ),
        format!(
            "{}: the file is empty: nothing tells its format (give --kind;",
            empty.display()
        ),
        "4 not imported, 0 with rejected rows".to_string(),
    ] {
        assert!(stdout.contains(&expected), "{expected}\nnot in\n{stdout}");
    }
    assert_eq!(count(&state, "SELECT count(*) FROM snds"), 6);
    assert_eq!(count(&state, "SELECT count(*) FROM imports"), 1);
    // An empty file of a named kind holds nothing, which is no error.
    assert_eq!(import(&state, &[&empty], &["--kind", "metrics"]).0, 0);
    // A file over the evidence cap is refused with the cap and how to raise it.
    let out = mailshift()
        .args(["warmup", "import"])
        .arg(plan())
        .arg(evidence("ses-events.jsonl"))
        .arg("--state")
        .arg(&state)
        .args(["--max-file-size", "evidence=1KiB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ses-events.jsonl: the evidence file is 15.0 KiB or more; evidence files are limited to 1 KiB (raise it with --max-file-size evidence=SIZE)"),
        "{stdout}"
    );
}

#[test]
fn a_file_whose_json_breaks_leaves_nothing_and_its_repaired_copy_imports() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let text = std::fs::read_to_string(evidence("sendgrid-events-2026-11-02.json")).unwrap();
    // The POST was cut off in the middle of its last event.
    let cut_at = text.rfind("\"sg_event_id\"").unwrap();
    let broken = dir.path().join("post.json");
    std::fs::write(&broken, &text[..cut_at]).unwrap();
    let (code, stdout, _) = import(&state, &[&broken], &[]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains(&format!(
            "{}:24: the file ends inside a value: it is cut short; nothing of the file was imported",
            broken.display()
        )),
        "{stdout}"
    );
    assert_eq!(count(&state, "SELECT count(*) FROM daily"), 0);
    assert_eq!(count(&state, "SELECT count(*) FROM seen_events"), 0);
    assert_eq!(count(&state, "SELECT count(*) FROM imports"), 0);
    // Importing it again is refused again (it was never recorded), and the complete POST counts
    // in full: none of its events was taken for seen.
    assert_eq!(import(&state, &[&broken], &[]).0, 2);
    std::fs::write(&broken, &text).unwrap();
    let (code, files) = import_json(&state, &[&broken], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        (&files[0]["counted"], &files[0]["duplicates"]),
        (&21.into(), &0.into())
    );
    assert_eq!(daily(&state, "events"), SENDGRID_DAY_ONE);
}

/// `n` SendGrid events as ndjson, ids `first..first + n`: each a `processed` at Gmail for
/// `engaged-30d` on 2026-11-02.
fn generated_events(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| {
            format!(
                "{{\"email\":\"subscriber{i}@gmail.com\",\"timestamp\":1793628000,\"event\":\"processed\",\"sg_event_id\":\"ev{i:08}\",\"sg_message_id\":\"msg{i}.filterdrecv-1\",\"cohort\":\"engaged-30d\"}}\n"
            )
        })
        .collect()
}

#[test]
fn a_killed_import_leaves_all_of_its_file_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("events.ndjson");
    let n = 60_000;
    std::fs::write(&file, generated_events(0, n)).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mailshift"))
        .args(["warmup", "import"])
        .arg(plan())
        .arg(&file)
        .arg("--state")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed while it reads (or, on a fast machine, after it finished): never half of it.
    std::thread::sleep(std::time::Duration::from_millis(400));
    child.kill().unwrap();
    child.wait().unwrap();
    if state.join("history.db").exists() {
        let seen = count(&state, "SELECT count(*) FROM seen_events");
        let sent = count(&state, "SELECT coalesce(sum(sent), 0) FROM daily");
        let imports = count(&state, "SELECT count(*) FROM imports");
        assert!(
            (seen, sent, imports) == (0, 0, 0) || (seen, sent, imports) == (n as i64, n as i64, 1),
            "a killed import left part of its file: {seen} events seen, {sent} sent, {imports} imports"
        );
    }
    assert_eq!(import(&state, &[&file], &[]).0, 0);
    assert_eq!(
        daily(&state, "events"),
        [format!("2026-11-02 engaged-30d gmail: {n} 0 0 0 0 0 0 0 0")]
    );
}

#[test]
fn imports_at_the_same_time_queue_and_count_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    History::open_dir(&state).unwrap();
    let a = dir.path().join("a.ndjson");
    let b = dir.path().join("b.ndjson");
    let c = dir.path().join("c.ndjson");
    std::fs::write(&a, generated_events(0, 6_000)).unwrap();
    std::fs::write(&b, generated_events(4_000, 6_000)).unwrap();
    std::fs::write(&c, generated_events(20_000, 3_000)).unwrap();
    let opts = ImportOptions {
        utc_offset_minutes: -300,
        cohorts: vec!["engaged-30d".into(), "engaged-90d".into(), "rest".into()],
        ..ImportOptions::default()
    };
    // Four importers, each with its own connection: two different files that share 2,000
    // events, and the same file twice.
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&a, &b, &c, &c]
            .into_iter()
            .map(|path| {
                let state = &state;
                let opts = &opts;
                scope.spawn(move || {
                    let mut history = History::open_dir(state).unwrap();
                    import_file(&mut history, path, Some(EvidenceKind::SendGrid), opts).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let counted: u64 = outcomes.iter().map(|o| o.counted).sum();
    let duplicates: u64 = outcomes.iter().map(|o| o.duplicates).sum();
    assert_eq!((counted, duplicates), (13_000, 2_000), "{outcomes:#?}");
    let again: Vec<bool> = outcomes[2..]
        .iter()
        .map(|o| o.already_imported.is_some())
        .collect();
    assert!(
        again == [true, false] || again == [false, true],
        "{again:?}"
    );
    assert_eq!(
        daily(&state, "events"),
        ["2026-11-02 engaged-30d gmail: 13000 0 0 0 0 0 0 0 0"]
    );
    assert_eq!(count(&state, "SELECT count(*) FROM imports"), 3);
}

#[test]
fn the_plan_needs_a_warmup_and_cohort_names_must_be_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = evidence("snds-export.csv");
    let (code, _, stderr) = import(&state, &[&file], &["--cohort", "vip"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "--cohort vip: the plan has no such cohort (cohorts: engaged-30d, engaged-90d, rest)"
        ),
        "{stderr}"
    );
    let no_warmup = dir.path().join("plan.toml");
    std::fs::write(
        &no_warmup,
        "[migration]\nname = \"x\"\nfrom = \"mailchimp\"\nto = \"sendgrid\"\n[[domain]]\nname = \"news.bluefinprovisions.com\"\n[[stage]]\nname = \"setup\"\nrequires = [\"dns\"]\n",
    )
    .unwrap();
    let out = mailshift()
        .args(["warmup", "import"])
        .arg(&no_warmup)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no [warmup] section"));
    assert!(
        !dir.path().join("plan.state").exists(),
        "nothing is created for a refused import"
    );
}

#[test]
fn a_file_of_one_cohort_takes_it_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("rest.ndjson");
    std::fs::write(
        &file,
        "{\"email\":\"zoe.king@gmail.com\",\"timestamp\":1793628000,\"event\":\"delivered\",\"sg_event_id\":\"r1\"}\n\
         {\"email\":\"zoe.king@gmail.com\",\"timestamp\":1793628000,\"event\":\"open\",\"sg_event_id\":\"r2\",\"segment\":\"engaged-90d\"}\n",
    )
    .unwrap();
    let (code, files) = import_json(
        &state,
        &[&file],
        &["--cohort", "rest", "--cohort-field", "segment"],
    );
    assert_eq!(code, 0);
    assert_eq!(files[0]["without_cohort"], 0);
    assert_eq!(
        daily(&state, "events"),
        [
            "2026-11-02 engaged-90d gmail: 0 0 0 0 0 0 0 1 0",
            "2026-11-02 rest gmail: 0 1 0 0 0 0 0 0 0"
        ]
    );
}
