//! The `mailshift` binary: exit codes, output shapes, input errors — the contract CI relies on.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::collections::HashSet;
use support::{dns_server, fixture_server, fixtures, id_severities, json, mailshift, run_json};

fn check(server: &dns_server::TestDnsServer) -> Command {
    let mut cmd = mailshift();
    cmd.args([
        "check",
        "--nameserver",
        &server.nameserver_arg(),
        "--timeout",
        "2",
    ]);
    cmd
}

#[test]
fn exit_0_when_every_check_passes_and_json_has_the_documented_shape() {
    let server = fixture_server();
    let doc = run_json(
        check(&server).args(["clean.test", "clean-cname.test", "--format", "json"]),
        0,
    );
    let keys: HashSet<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["schema_version", "domains", "summary"])
    );
    assert_eq!(doc["schema_version"], 2);
    let domain = &doc["domains"][0];
    assert_eq!(domain["domain"], "clean.test");
    assert_eq!(domain["status"], "pass");
    for f in domain["findings"].as_array().unwrap() {
        for key in ["id", "severity", "message", "evidence", "fix"] {
            assert!(f.get(key).is_some(), "finding without {key}: {f}");
        }
    }
    let summary = &doc["summary"];
    for key in [
        "domains",
        "pass",
        "warn",
        "fail",
        "inconclusive",
        "queries",
        "elapsed_ms",
    ] {
        assert!(
            summary.get(key).is_some(),
            "summary without {key}: {summary}"
        );
    }
    assert_eq!(summary["domains"], 2);
    assert_eq!(summary["pass"], 2);
    assert!(summary["queries"].as_u64().unwrap() > 0);
    // The two domains share the ESP include and the DMARC report domain: nothing asked twice.
    let queries = server.queries();
    let unique: HashSet<_> = queries.iter().collect();
    assert_eq!(
        unique.len(),
        queries.len(),
        "a question was sent twice: {queries:?}"
    );
    assert_eq!(summary["queries"].as_u64().unwrap(), queries.len() as u64);
}

#[test]
fn exit_1_when_a_check_fails_and_fail_on_warn_makes_warnings_fail() {
    let server = fixture_server();
    check(&server).args(["spf-all-pass.test"]).assert().code(1);
    check(&server)
        .args(["dmarc-policy-none.test"])
        .assert()
        .code(0);
    check(&server)
        .args(["dmarc-policy-none.test", "--fail-on", "warn"])
        .assert()
        .code(1);
}

#[test]
fn exit_2_for_bad_invocation_and_bad_input() {
    mailshift()
        .args(["check", "--no-such-flag"])
        .assert()
        .code(2);
    mailshift()
        .args(["check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no domains"));
    mailshift()
        .args(["check", "user@example.com", "--offline"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("argument 1").and(predicate::str::contains("email address")),
        );
    mailshift()
        .args(["check", "example.com", "--nameserver", "not-an-ip"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not-an-ip"));
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("domains.txt");
    std::fs::write(
        &list,
        "# ours\nclean.test\nhttps://www.example.com/\nexa mple.com\n",
    )
    .unwrap();
    mailshift()
        .args(["check", "--offline", "--domains-file"])
        .arg(&list)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("domains.txt:3")
                .and(predicate::str::contains("URL"))
                .and(predicate::str::contains("domains.txt:4")),
        );
    mailshift()
        .args(["check", "--domains-file", "/nonexistent/list.txt"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/list.txt"));
}

#[test]
fn malformed_zone_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("draft.test.zone");
    std::fs::write(
        &zone,
        "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN TXT \"v=spf1 -all\"\n@ IN MX ten mx1\n",
    )
    .unwrap();
    mailshift()
        .args(["check", "draft.test", "--offline", "--zone"])
        .arg(&zone)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("draft.test.zone:4:"));
}

#[test]
fn keep_going_reports_invalid_lines_and_checks_the_rest() {
    let server = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("domains.txt");
    std::fs::write(&list, "clean.test\nbad domain.test\n").unwrap();
    let doc = run_json(
        check(&server)
            .args(["--keep-going", "--format", "json", "--domains-file"])
            .arg(&list),
        2,
    );
    assert_eq!(doc["domains"][0]["status"], "pass");
    assert_eq!(doc["domains"][1]["status"], "error");
    assert!(doc["domains"][1]["error"]
        .as_str()
        .unwrap()
        .contains("domains.txt:2"));
    assert_eq!(doc["summary"]["invalid"], 1);
}

#[test]
fn exit_3_when_dns_fails_servfail_or_unreachable() {
    let server = fixture_server();
    let out = check(&server)
        .args([support::SERVFAIL_DOMAIN, "--format", "json"])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["domains"][0]["status"], "inconclusive");
    let (_socket, addr) = dns_server::unreachable_nameserver();
    let doc = run_json(
        mailshift().args([
            "check",
            "clean.test",
            "--format",
            "json",
            "--timeout",
            "0.3",
            "--retries",
            "0",
            "--nameserver",
            &addr,
        ]),
        3,
    );
    assert_eq!(doc["domains"][0]["status"], "inconclusive");
    assert!(doc["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["severity"] != "fail"));
}

#[test]
fn a_failure_outranks_an_inconclusive_verdict() {
    let server = fixture_server();
    check(&server)
        .args([support::SERVFAIL_DOMAIN, "spf-all-pass.test"])
        .assert()
        .code(1);
}

#[test]
fn ndjson_streams_one_line_per_domain_then_the_summary() {
    let server = fixture_server();
    let out = check(&server)
        .args([
            "clean.test",
            "spf-missing.test",
            "dmarc-missing.test",
            "--format",
            "ndjson",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| json(l.as_bytes())).collect();
    assert_eq!(lines.len(), 4);
    let domains: HashSet<&str> = lines[..3]
        .iter()
        .map(|l| l["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains,
        HashSet::from(["clean.test", "spf-missing.test", "dmarc-missing.test"])
    );
    assert_eq!(lines[3]["summary"]["fail"], 2);
}

#[test]
fn output_file_and_domains_from_stdin() {
    let server = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    check(&server)
        .args(["--domains-file", "-", "--output"])
        .arg(&report)
        .write_stdin("clean.test selectors=s1\n# comment\n")
        .assert()
        .code(0)
        .stdout(predicate::str::is_empty());
    let doc = json(&std::fs::read(&report).unwrap());
    assert_eq!(doc["domains"][0]["domain"], "clean.test");
    let dkim: Vec<&Value> = doc["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "dkim.ok")
        .collect();
    assert_eq!(dkim.len(), 1, "only the named selector is checked");
}

#[test]
fn table_shows_message_fix_and_evidence_without_colour_when_piped() {
    let server = fixture_server();
    let out = check(&server)
        .args(["spf-lookup-limit.test", "--format", "table"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains('\x1b'), "colour codes in piped output");
    for expected in [
        "spf.lookup-limit",
        "Fix:",
        "Evidence:",
        "include:inc11.esp.test",
        "Total: 11 of 10",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let coloured = check(&server)
        .args([
            "spf-lookup-limit.test",
            "--format",
            "table",
            "--color",
            "always",
        ])
        .assert()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(coloured).unwrap().contains('\x1b'));
}

#[test]
fn internationalised_names_are_checked_as_a_labels() {
    let server = fixture_server();
    let doc = run_json(check(&server).args(["bücher.test", "--format", "json"]), 0);
    assert_eq!(doc["domains"][0]["domain"], "xn--bcher-kva.test");
    assert_eq!(doc["domains"][0]["unicode"], "bücher.test");
}

#[test]
fn zone_overlay_checks_drafts_offline() {
    let doc = run_json(
        mailshift()
            .args([
                "check",
                "clean.test",
                "--offline",
                "--format",
                "json",
                "--zone",
            ])
            .arg(fixtures().join("zones")),
        0,
    );
    assert_eq!(doc["summary"]["queries"], 0);
    assert!(doc["summary"]["zone_answers"].as_u64().unwrap() > 0);
}

#[test]
fn falls_back_to_a_second_nameserver_when_the_first_does_not_answer() {
    let server = fixture_server();
    let (_socket, dead) = dns_server::unreachable_nameserver();
    mailshift()
        .args(["check", "clean.test", "--timeout", "0.5", "--retries", "2"])
        .args([
            "--nameserver",
            &dead,
            "--nameserver",
            &server.nameserver_arg(),
        ])
        .assert()
        .code(0);
}

#[test]
fn a_question_waits_at_most_its_budget_however_many_nameservers_are_silent() {
    // Ten servers that never answer. Before the budget, one question waited servers × attempts
    // × timeout (10 × 2 × 0.4 s = 8 s, and a check asks several in a row); now at most 2 × 0.4 s.
    let silent: Vec<std::net::UdpSocket> = (0..10)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut cmd = mailshift();
    cmd.args([
        "check",
        "silent.test",
        "--selector",
        "s1",
        "--timeout",
        "0.4",
        "--retries",
        "1",
    ]);
    for s in &silent {
        cmd.args(["--nameserver", &s.local_addr().unwrap().to_string()]);
    }
    let out = cmd
        .args(["--format", "json"])
        .timeout(std::time::Duration::from_secs(6))
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let report = support::json(&out);
    assert_eq!(report["domains"][0]["status"], "inconclusive", "{report}");
}

#[test]
fn the_readme_demo_runs_offline_and_finds_its_deliberate_mistakes() {
    let demo = fixtures().join("demo");
    let doc = run_json(
        mailshift()
            .args(["check", "--offline", "--format", "json", "--zone"])
            .arg(demo.join("zones"))
            .arg("--domains-file")
            .arg(demo.join("domains.txt")),
        1,
    );
    assert_eq!(
        doc["summary"]["queries"], 0,
        "the demo must not use the network"
    );
    let ids = |domain: usize| id_severities(&doc["domains"][domain]["findings"]);
    let main = ids(0);
    for expected in [
        "dkim.cname-dangling:fail",
        "dmarc.policy-none:warn",
        "dmarc.rua-unauthorized:warn",
        "spf.ok:pass",
    ] {
        assert!(
            main.contains(&expected.to_string()),
            "northwind.example: {main:?}"
        );
    }
    let news = ids(1);
    for expected in [
        "spf.lookup-limit:fail",
        "dkim.key-weak:warn",
        "dmarc.inherited:info",
    ] {
        assert!(
            news.contains(&expected.to_string()),
            "news.northwind.example: {news:?}"
        );
    }
    assert_eq!(doc["domains"][2]["status"], "pass");
    // The demo shows a fix as the exact record to publish.
    let none = doc["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "dmarc.policy-none")
        .unwrap();
    assert_eq!(
        none["fix"]["records"][0],
        serde_json::json!({
            "action": "replace",
            "name": "_dmarc.northwind.example",
            "type": "TXT",
            "old": "v=DMARC1; p=none; rua=mailto:dmarc@northwind.example,mailto:agg@reports.reportly.example",
            "value": "v=DMARC1; p=quarantine; rua=mailto:dmarc@northwind.example,mailto:agg@reports.reportly.example",
        })
    );
    let table = mailshift()
        .args([
            "check",
            "--offline",
            "--format",
            "table",
            "--color",
            "never",
            "--zone",
        ])
        .arg(demo.join("zones"))
        .arg("--domains-file")
        .arg(demo.join("domains.txt"))
        .env("COLUMNS", "1000")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains(
        "Fix: Once aggregate reports show all legitimate mail passes, move to p=quarantine (`v=DMARC1; p=quarantine; rua=mailto:dmarc@northwind.example,mailto:agg@reports.reportly.example` at _dmarc.northwind.example)"
    ));
}

#[test]
fn a_closed_port_is_reported_as_refused_and_inconclusive() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let doc = run_json(
        mailshift()
            .args(["check", "clean.test", "--format", "json", "--retries", "0"])
            .args(["--nameserver", &format!("127.0.0.1:{port}")]),
        3,
    );
    let text = doc["domains"][0]["findings"].to_string();
    assert!(text.contains("connection refused"), "{text}");
}
