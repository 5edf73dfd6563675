//! `check --format csv` over the fixture zones, offline: a header, one row per finding, whole
//! cells for multi-line evidence, exact strings in files, the same rows through `check merge`.

mod support;

use std::collections::BTreeSet;
use support::{fixtures, mailshift};

const HEADER: [&str; 7] = [
    "domain", "status", "check", "severity", "message", "fix", "evidence",
];

fn check_offline() -> assert_cmd::Command {
    let mut cmd = mailshift();
    cmd.args(["check", "--offline", "--zone"])
        .arg(fixtures().join("zones"));
    cmd
}

/// Every record of a CSV document, the header included.
fn records(text: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text)
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("bad CSV ({e}):\n{}", String::from_utf8_lossy(text)))
                .iter()
                .map(String::from)
                .collect()
        })
        .collect()
}

#[test]
fn a_row_per_finding_with_the_failing_check_and_its_severity() {
    let out = check_offline()
        .args(["spf-lookup-limit.test", "clean.test", "--format", "csv"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let rows = records(&out);
    assert_eq!(rows[0], HEADER);
    assert!(
        rows.iter().all(|r| r.len() == HEADER.len()),
        "ragged rows: {rows:?}"
    );
    let limit = rows
        .iter()
        .find(|r| r[2] == "spf.lookup-limit")
        .unwrap_or_else(|| panic!("no spf.lookup-limit row in {rows:?}"));
    assert_eq!(
        limit[..4],
        ["spf-lookup-limit.test", "fail", "spf.lookup-limit", "fail"]
    );
    assert!(limit[4].contains("11 DNS lookups"), "{limit:?}");
    assert!(limit[5].starts_with("Bring it to 10 or fewer"), "{limit:?}");
    // The whole lookup tree is one cell.
    assert!(
        limit[6].contains("include:inc11.esp.test") && limit[6].lines().count() > 10,
        "{limit:?}"
    );
    let clean: Vec<_> = rows.iter().filter(|r| r[0] == "clean.test").collect();
    assert!(!clean.is_empty());
    assert!(clean.iter().all(|r| r[1] == "pass"), "{clean:?}");
    assert!(clean.iter().any(|r| r[2] == "spf.ok" && r[3] == "pass"));
}

#[test]
fn invalid_input_is_one_row_with_its_error() {
    let out = check_offline()
        .args(["clean.test", "https://www.example.com/", "--keep-going"])
        .args(["--format", "csv"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let rows = records(&out);
    let bad: Vec<_> = rows
        .iter()
        .filter(|r| r[0] == "https://www.example.com/")
        .collect();
    assert_eq!(bad.len(), 1, "{rows:?}");
    assert_eq!(bad[0][1..4], ["error", "", ""]);
    assert!(bad[0][4].contains("looks like a URL"), "{:?}", bad[0]);
}

#[test]
fn output_file_holds_the_same_exact_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.csv");
    let args = [
        "hostile-escape.test",
        "dmarc-missing.test",
        "--format",
        "csv",
    ];
    check_offline()
        .args(args)
        .arg("--output")
        .arg(&file)
        .assert()
        .code(1)
        .stdout("");
    let written = std::fs::read(&file).unwrap();
    let piped = check_offline().args(args).output().unwrap().stdout;
    assert_eq!(written, piped, "the file and the pipe get the same report");
    let rows = records(&written);
    assert!(rows
        .iter()
        .any(|r| r[2] == "dmarc.missing" && r[3] == "fail"));
    // Not a terminal: the hostile record's bytes are kept exactly, as JSON keeps them.
    assert!(
        rows.iter().flatten().any(|cell| cell.contains('\u{1b}')),
        "{rows:?}"
    );
}

#[test]
fn merge_writes_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = dir.path().join("run.ndjson");
    let domains = ["spf-lookup-limit.test", "clean.test", "dmarc-missing.test"];
    check_offline()
        .args(domains)
        .args(["--format", "ndjson", "-o"])
        .arg(&ndjson)
        .assert()
        .code(1);
    let merged = mailshift()
        .args(["check", "merge", "--format", "csv"])
        .arg(&ndjson)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let direct = check_offline()
        .args(domains)
        .args(["--format", "csv"])
        .output()
        .unwrap()
        .stdout;
    // ndjson is in completion order, so compare the rows as sets.
    let set = |text: &[u8]| records(text).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(set(&merged), set(&direct));
    assert_eq!(records(&merged)[0], HEADER);
}
