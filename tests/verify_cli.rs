//! `mailshift verify`: exit codes, the JSON shape, directories, mbox files, garbage.
//!
//! DNS comes from `fixtures/messages/zones/` through `--zone` with `--offline`.
//!
//! Input that is not a message (binary, no header section, over the size limits) gets a verdict
//! with status `error` and is reported like any other message; the run then exits 2 (bad input),
//! as `check --keep-going` does for invalid domains, after verifying everything else. A path
//! that does not exist (or an empty directory) stops the run before anything is verified, also
//! with exit 2.

mod support;

use support::{json, mailshift};

fn messages() -> std::path::PathBuf {
    support::fixtures().join("messages")
}

fn verify() -> assert_cmd::Command {
    let mut cmd = mailshift();
    cmd.arg("verify")
        .arg("--zone")
        .arg(messages().join("zones"))
        .arg("--offline");
    cmd
}

#[test]
fn a_passing_message_exits_0_with_the_json_shape() {
    let out = verify()
        .arg(messages().join("good.eml"))
        .args(["--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let m = &v["messages"][0];
    assert!(m["source"].as_str().unwrap().ends_with("good.eml"));
    let verdict = &m["verdict"];
    assert_eq!(verdict["status"], "pass");
    for key in ["spf", "dmarc", "arc"] {
        assert!(verdict[key]["result"].is_string(), "{key}");
        assert!(verdict[key]["detail"].is_string(), "{key}");
    }
    assert_eq!(verdict["dkim"].as_array().unwrap().len(), 2);
    assert_eq!(verdict["dkim"][0]["domain"], "shop.test");
    assert_eq!(verdict["dkim"][0]["aligned"], true);
    assert_eq!(verdict["one_click_unsubscribe"], true);
    assert_eq!(verdict["spf_inputs"]["ip_source"], "Received header #1");
    assert!(verdict["receiver_results"][0]
        .as_str()
        .unwrap()
        .starts_with("mx.example.net;"));
    assert_eq!(verdict["receivers"][0]["results"][0]["method"], "spf");
    assert!(verdict["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["id"].as_str().unwrap().starts_with("msg.")));
    let s = &v["summary"];
    assert_eq!(
        (s["messages"].as_u64(), s["pass"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(s["zone_answers"].as_u64().unwrap() > 0);
    assert_eq!(s["queries"], 0);
}

#[test]
fn a_failing_message_exits_1() {
    verify()
        .arg(messages().join("tampered.eml"))
        .args(["--format", "json"])
        .assert()
        .code(1);
}

#[test]
fn dns_failures_exit_3() {
    // No zones: every lookup fails offline, so the verdict is inconclusive, not failed.
    let out = mailshift()
        .args(["verify", "--offline", "--format", "json"])
        .arg(messages().join("good.eml"))
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        json(&out)["messages"][0]["verdict"]["status"],
        "inconclusive"
    );
}

#[test]
fn an_mbox_is_split_into_its_messages() {
    let out = verify()
        .arg(messages().join("inbox.mbox"))
        .args(["--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let sources: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 3);
    assert!(sources[0].ends_with("inbox.mbox#1") && sources[2].ends_with("inbox.mbox#3"));
    let statuses: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["verdict"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pass", "fail", "fail"]);
}

#[test]
fn a_directory_with_garbage_verifies_the_rest_and_exits_2() {
    let out = verify()
        .arg(messages())
        .args(["--format", "json", "--concurrency", "2"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let list = v["messages"].as_array().unwrap();
    // The directory's *.eml files, in name order.
    let names: Vec<&str> = list
        .iter()
        .map(|m| m["source"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "garbage.eml",
            "good.eml",
            "receipt.eml",
            "spoofed.eml",
            "tampered.eml"
        ]
    );
    assert_eq!(list[0]["verdict"]["status"], "error");
    assert!(list[0]["verdict"]["error"]
        .as_str()
        .unwrap()
        .contains("binary"));
    assert_eq!(list[1]["verdict"]["status"], "pass");
    assert_eq!(v["summary"]["error"], 1);
    assert_eq!(v["summary"]["fail"], 3);
}

#[test]
fn garbage_alone_is_bad_input_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 3] = [
        ("empty.eml", b""),
        ("zeros.eml", &[0u8; 4096]),
        ("text.eml", b"just some text\nwithout any header\n"),
    ];
    for (name, bytes) in cases {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let out = verify()
            .arg(dir.path().join(name))
            .args(["--format", "json"])
            .assert()
            .code(2)
            .get_output()
            .stdout
            .clone();
        assert_eq!(
            json(&out)["messages"][0]["verdict"]["status"],
            "error",
            "{name}"
        );
    }
}

#[test]
fn a_missing_path_stops_before_verifying() {
    verify()
        .arg(messages().join("no-such-file.eml"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no-such-file.eml"));
    let empty = tempfile::tempdir().unwrap();
    verify()
        .arg(empty.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("holds no files"));
}

#[test]
fn envelope_flags_replace_the_trace_fields() {
    let out = verify()
        .arg(messages().join("spoofed.eml"))
        .args([
            "--ip",
            "198.51.100.30",
            "--helo",
            "out-30.mailer.test",
            "--mail-from",
            "bounce@mailer.test",
            "--format",
            "json",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let verdict = &json(&out)["messages"][0]["verdict"];
    assert_eq!(verdict["spf"]["result"], "pass");
    assert_eq!(verdict["spf_inputs"]["ip_source"], "envelope");
    assert_eq!(verdict["dmarc"]["result"], "fail");
}

#[test]
fn the_table_shows_a_row_per_message_and_the_failures() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.txt");
    verify()
        .arg(messages().join("good.eml"))
        .arg(messages().join("spoofed.eml"))
        .args(["--format", "table", "--color", "never", "-o"])
        .arg(&report)
        // A file gets 100 columns, where nine columns split paths and results mid-word; as
        // wide as allowed, each value below is on one line.
        .env("COLUMNS", "1000")
        .assert()
        .code(1);
    let text = std::fs::read_to_string(report).unwrap();
    assert!(
        text.contains("good.eml") && text.contains("spoofed.eml"),
        "{text}"
    );
    assert!(text.contains("Receivers said"), "{text}");
    assert!(text.contains("mx.example.net: spf=pass"), "{text}");
    assert!(text.contains("FAIL msg.dmarc"), "{text}");
    assert!(
        text.contains("2 messages: 1 pass, 0 warn, 1 fail"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour with --color never");
}
