//! Plans, gates and snapshots through the binary: plans in `fixtures/plans/` against the zones in
//! `fixtures/zones/`, served by the in-process DNS server or read through the `--zone` overlay.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::{fixture_server, fixtures, id_severities, json, mailshift, run_json};

fn plan(name: &str) -> PathBuf {
    fixtures().join("plans").join(format!("{name}.toml"))
}

/// `gate PLAN --stage STAGE` through the zone overlay, never recording state.
fn gate_offline(name: &str, stage: &str) -> Command {
    let mut cmd = mailshift();
    cmd.arg("gate")
        .arg(plan(name))
        .args(["--stage", stage, "--no-record", "--offline"])
        .args([
            "--force",
            "evaluating this stage on its own in a test",
            "--zone",
        ])
        .arg(fixtures().join("zones"))
        .args(["--checks-dir"])
        .arg(fixtures().join("plans/checks"));
    cmd
}

fn failing_ids(report: &Value) -> BTreeSet<String> {
    report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .filter(|f| f["severity"] == "fail" || f["severity"] == "inconclusive")
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["requirement"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `plan validate PATH` exits 2 with exactly these problems, one per line, each after
/// `PATH:`.
fn assert_problems(path: &Path, expected: &[&str]) {
    let shown = path.display().to_string();
    let out = mailshift()
        .args(["plan", "validate"])
        .arg(path)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let text = String::from_utf8(out).unwrap();
    for e in expected {
        assert!(
            text.contains(&format!("{shown}:{e}")),
            "missing `{e}` in:\n{text}"
        );
    }
    assert_eq!(
        text.lines().count(),
        expected.len(),
        "one line per problem:\n{text}"
    );
}

#[test]
fn every_kind_of_authoring_error_is_named_with_file_line_and_field() {
    let path = plan("invalid-every-error");
    let expected = [
        "3:8: migration.name: the migration needs a name",
        "4:8: migration.from: unknown provider `mailchump`",
        "6:27: migration.policies[1]: unknown policy `hotmail-1999`",
        "7:20: migration.new_sending_ips[0]: `198.51.100.300` is not an IP address",
        "10:8: domain[0].name: `https://www.example.com/` is not a valid domain name: this looks like a URL",
        "15:14: domain[1].new.selectors[0]: `s 1` is not a valid DKIM selector",
        "16:15: domain[1].new.return_path: `user@bounce.example.com` is not a valid domain name",
        "19:8: domain[2].name: example.com is listed twice",
        "23:20: stage[0].requires[1]: unknown requirement `dnss`",
        "23:28: stage[0].requires[2]: requires a snapshot, but [migration] names no `snapshot` file",
        "23:40: stage[0].requires[3]: unknown policy `nope`",
        "26:8: stage[1].name: stage `seed` is defined twice",
        "30:1: stage[2]: more than one stage is marked as the cutover",
        "31:8: stage[2].name: `go live!` is not a stage name",
        "35:9: override[0].check: `dmarc` is not a check id or pattern",
        "35:9: override[0].reason: an override needs a `reason`",
        "36:10: override[0].action: `mute` is not an action",
        "41:10: override[1].reason: the reason is empty",
    ];
    assert_problems(&path, &expected);
    for (file, where_) in [
        ("invalid-syntax", ":4:17: invalid basic string"),
        (
            "invalid-unknown-field",
            ":6:1: migration: unknown field `polices` (did you mean `policies`?)",
        ),
    ] {
        mailshift()
            .args(["plan", "validate"])
            .arg(plan(file))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "{}{where_}",
                plan(file).display()
            )));
    }
    // The gate refuses a bad plan the same way.
    mailshift()
        .arg("gate")
        .arg(plan("invalid-syntax"))
        .arg("--offline")
        .assert()
        .code(2);
}

#[test]
fn wrong_types_missing_fields_unknown_keys_and_bad_relays_are_all_reported_at_once() {
    let path = plan("invalid-types");
    let expected = [
        "4:8: migration.name: expected a string, found an integer",
        "6:6: migration.to: expected a string, found an array",
        "7:12: migration.policies: expected an array, found a string",
        "8:37: migration.new_sending_ips[1]: expected a string, found an integer",
        "9:12: migration.snapshot: expected a string, found a boolean",
        "13:1: domain[0]: unknown field `selector` (`selectors` belongs in [domain.new] or [domain.old])",
        "15:20: domain[0].new.selectors[1]: expected a string, found an integer",
        "16:12: domain[0].new.tracking: expected an array, found a string",
        "18:1: domain[1].name: missing `name`",
        "23:20: stage[0].requires[1]: expected a string, found an integer",
        "24:11: stage[0].cutover: expected a boolean, found a string",
        "26:1: stage[1].name: missing `name`",
        "32:10: override[0].reason: expected a string, found an integer",
        "37:9: seed.relay: `http://evil/:25` looks like a URL",
        "38:18: seed.within_minutes: expected a whole number, found a string",
    ];
    assert_problems(&path, &expected);
    // Relays that are not HOST:PORT are refused by `plan validate` (exit 2), not found out by
    // `seed send` (exit 3).
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(plan("mig-open")).unwrap();
    for (relay, expect) in [
        ("a b:25", "seed.relay: relay host: `a b` is not a host name"),
        ("user@smtp.example.net:587", "seed.relay: relay host:"),
        ("smtp.example.net:99999", "`99999` is not a port number"),
        ("2001:db8::25:587", "write an IPv6 relay as [ADDRESS]:PORT"),
        ("[2001:db8::x]:587", "is not an IPv6 address"),
    ] {
        let p = dir.path().join("relay.toml");
        std::fs::write(&p, base.replace("smtp.sendgrid.net:587", relay)).unwrap();
        let out = mailshift()
            .args(["plan", "validate"])
            .arg(&p)
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(expect), "{relay}: {text}");
        mailshift().args(["seed", "send"]).arg(&p).assert().code(2);
    }
    for relay in [
        "[2001:db8::25]:587",
        "192.0.2.25:2525",
        "smtp.example.net",
        "localhost:2525",
    ] {
        let p = dir.path().join("relay.toml");
        std::fs::write(&p, base.replace("smtp.sendgrid.net:587", relay)).unwrap();
        mailshift()
            .args(["plan", "validate"])
            .arg(&p)
            .assert()
            .code(0);
    }
}

#[test]
fn valid_plans_validate_and_show_their_stages() {
    for name in ["northwind", "mig-open", "mig-nodmarc-override"] {
        mailshift()
            .args(["plan", "validate"])
            .arg(plan(name))
            .assert()
            .code(0)
            .stdout(predicate::str::contains("is valid"));
    }
    mailshift()
        .args(["plan", "show"])
        .arg(plan("northwind"))
        .args(["--state", "/nonexistent/state.json"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("warmup-2")
                .and(predicate::str::contains("cutover (cutover)"))
                .and(predicate::str::contains("mailchimp + sendgrid"))
                .and(predicate::str::contains("sendgrid only")),
        );
}

/// (plan, stage, decision, requirement statuses, failing finding ids)
type GateCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

#[test]
fn gates_open_or_close_by_each_kind_of_requirement() {
    let cases: &[GateCase] = &[
        (
            "mig-open",
            "seed",
            "open",
            &[
                ("dns", "passed"),
                ("coexistence", "passed"),
                ("policies", "passed"),
            ],
            &[],
        ),
        (
            "mig-nodmarc",
            "dns-only",
            "closed",
            &[("dns", "failed")],
            &["dmarc.missing"],
        ),
        (
            "mig-nodmarc",
            "policy-only",
            "closed",
            &[("policy:gmail-2024", "failed")],
            &["dmarc.missing"],
        ),
        (
            "mig-removed",
            "seed",
            "closed",
            &[
                ("dns", "passed"),
                ("coexistence", "failed"),
                ("policies", "passed"),
            ],
            &["coexist.premature-removal"],
        ),
        (
            "mig-removed",
            "cutover",
            "open",
            &[("dns", "passed"), ("coexistence", "passed")],
            &[],
        ),
        (
            "mig-dangling",
            "seed",
            "closed",
            &[
                ("dns", "failed"),
                ("coexistence", "failed"),
                ("policies", "failed"),
            ],
            &["coexist.dkim-new-missing", "dkim.selector-missing"],
        ),
        (
            "mig-budget",
            "seed",
            "closed",
            &[("coexistence", "failed")],
            &["coexist.spf-budget", "coexist.spf-new-missing"],
        ),
        (
            "mig-open",
            "warmup-1",
            "inconclusive",
            &[("dns", "passed"), ("seed", "inconclusive")],
            &[],
        ),
        (
            "mig-nodmarc-override",
            "dns-only",
            "open",
            &[("dns", "passed")],
            &[],
        ),
    ];
    for (name, stage, decision, expected_statuses, expected_ids) in cases {
        let code = match *decision {
            "open" => 0,
            "closed" => 1,
            _ => 3,
        };
        let report = run_json(gate_offline(name, stage).args(["--format", "json"]), code);
        assert_eq!(report["decision"], *decision, "{name}/{stage}");
        let want: Vec<(String, String)> = expected_statuses
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(statuses(&report), want, "{name}/{stage}");
        let want: BTreeSet<String> = expected_ids.iter().map(|s| s.to_string()).collect();
        assert_eq!(failing_ids(&report), want, "{name}/{stage}");
    }
}

#[test]
fn the_merged_spf_budget_is_priced_before_publishing() {
    let report = run_json(
        gate_offline("mig-budget", "seed").args(["--format", "json"]),
        1,
    );
    let findings = report["requirements"][0]["findings"].as_array().unwrap();
    let budget = findings
        .iter()
        .find(|f| f["id"] == "coexist.spf-budget")
        .unwrap();
    assert_eq!(budget["severity"], "fail");
    let evidence = budget["evidence"].as_str().unwrap();
    assert!(evidence.contains("current record: 8 lookups"), "{evidence}");
    assert!(
        evidence.contains("+ include:_spf.acme-esp.test (Acme ESP): 3"),
        "{evidence}"
    );
    assert!(
        evidence.contains("merged record: 11 of 10 lookups"),
        "{evidence}"
    );
    let fix = budget["fix"]["text"].as_str().unwrap();
    assert!(
        fix.contains("include:inc1.esp.test"),
        "names the includes to drop: {fix}"
    );
    // After the cutover the old platform's records may go, and nothing needs merging.
    let report = run_json(
        gate_offline("mig-budget", "cutover").args(["--format", "json"]),
        1,
    );
    assert!(failing_ids(&report).contains("coexist.spf-new-missing"));
}

#[test]
fn overrides_are_applied_and_reported_with_their_reason() {
    let report = run_json(
        gate_offline("mig-nodmarc-override", "dns-only").args(["--format", "json"]),
        0,
    );
    let findings = report["requirements"][0]["findings"].as_array().unwrap();
    let overridden = findings
        .iter()
        .find(|f| f["id"] == "dmarc.missing")
        .expect("the overridden finding is still listed");
    assert_eq!(overridden["severity"], "info");
    assert!(overridden["overridden"]
        .as_str()
        .unwrap()
        .starts_with("ignored: DMARC is published by the parent company"));
}

#[test]
fn through_a_real_dns_server_open_and_inconclusive() {
    let server = fixture_server();
    let gate = |name: &str, stage: &str| {
        let mut cmd = mailshift();
        cmd.arg("gate")
            .arg(plan(name))
            .args([
                "--stage",
                stage,
                "--no-record",
                "--format",
                "json",
                "--timeout",
                "1",
                "--force",
                "evaluating this stage on its own in a test",
            ])
            .args(["--nameserver", &server.nameserver_arg()]);
        cmd
    };
    let report = run_json(&mut gate("mig-open", "seed"), 0);
    assert!(report["queries"].as_u64().unwrap() > 0);
    // SERVFAIL everywhere: inconclusive (exit 3), never closed.
    let report = run_json(&mut gate("mig-servfail", "seed"), 3);
    assert_eq!(report["decision"], "inconclusive");
    // Every inconclusive finding names the lookup that failed.
    let mut inconclusive = 0;
    for r in report["requirements"].as_array().unwrap() {
        for f in r["findings"].as_array().unwrap() {
            if f["severity"] == "inconclusive" {
                inconclusive += 1;
                let evidence = f["evidence"].as_str().unwrap();
                assert!(!evidence.is_empty(), "no evidence: {f:#}");
            }
        }
    }
    assert!(inconclusive > 0, "{report:#}");
    assert!(
        statuses(&report).iter().all(|(_, s)| s != "failed"),
        "{:?}",
        statuses(&report)
    );
}

#[test]
fn snapshot_gate_state_and_next_stage() {
    let server = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("mig-open.toml");
    std::fs::copy(plan("mig-open"), &plan_path).unwrap();
    let ns = server.nameserver_arg();
    // No backup yet: the setup gate is closed, and says how to take one.
    mailshift()
        .arg("gate")
        .arg(&plan_path)
        .args(["--stage", "setup", "--format", "table", "--nameserver", &ns])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "mailshift snapshot mig-open.test --plan",
        ));
    let snapshot = dir.path().join("mig-open-before.zone");
    mailshift()
        .args(["snapshot", "--plan"])
        .arg(&plan_path)
        .args(["--nameserver", &ns, "--output"])
        .arg(&snapshot)
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&snapshot).unwrap();
    for record in [
        "mig-open.test.\t3600\tIN\tTXT\t\"v=spf1 include:_spf.google.com ~all\"",
        "s1._domainkey.mig-open.test.\t3600\tIN\tCNAME\ts1.domainkey.u7777777.wl100.sendgrid.net.",
        "em100.mig-open.test.\t3600\tIN\tCNAME\tu7777777.wl100.sendgrid.net.",
        "url100.mig-open.test.\t3600\tIN\tCNAME\tsendgrid.net.",
        "_dmarc.mig-open.test.\t3600\tIN\tTXT\t\"v=DMARC1; p=reject; rua=mailto:dmarc@mig-open.test\"",
        "google._domainkey.mig-open.test.\t3600\tIN\tTXT\t\"v=DKIM1; k=rsa; p=",
    ] {
        assert!(text.contains(record), "snapshot lacks {record:?}:\n{text}");
    }
    assert!(
        text.starts_with("; mailshift snapshot of mig-open.test\n; taken 20"),
        "{text}"
    );
    assert!(text.contains(&format!("from nameserver {ns}")), "{text}");
    // With the backup, setup opens and is recorded; the next gate is seed.
    mailshift()
        .arg("gate")
        .arg(&plan_path)
        .args(["--format", "json", "--nameserver", &ns])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"stage\": \"setup\""));
    let history = run_json(
        mailshift()
            .arg("history")
            .arg(&plan_path)
            .args(["--format", "json"]),
        0,
    );
    assert_eq!(history["openings"][0]["stage"], "setup");
    assert!(dir.path().join("mig-open.state/history.db").is_file());
    // Each evaluation is in the timeline: the closed one (no backup yet) and the open one.
    let decisions: Vec<&str> = history["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["closed", "open"]);
    let report = run_json(
        mailshift()
            .arg("gate")
            .arg(&plan_path)
            .args(["--format", "json", "--nameserver", &ns]),
        0,
    );
    assert_eq!(report["stage"], "seed");
}

/// The ids and severities of `check` for some domains.
fn verdicts(args: &[&str], zone: Option<&Path>, ns: &str) -> BTreeSet<(String, String, String)> {
    let mut cmd = mailshift();
    cmd.arg("check")
        .args(args)
        .args(["--format", "json", "--nameserver", ns]);
    if let Some(z) = zone {
        cmd.arg("--zone").arg(z);
    }
    let doc = json(&cmd.assert().get_output().stdout);
    doc["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["findings"].as_array().unwrap().iter().map(move |f| {
                (
                    d["domain"].as_str().unwrap().to_string(),
                    f["id"].as_str().unwrap().to_string(),
                    f["severity"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn a_snapshot_fed_back_reproduces_the_verdict() {
    let server = fixture_server();
    let ns = server.nameserver_arg();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snap.zone");
    let domains = [
        "clean.test",
        "mig-dangling.test",
        "dkim-weak-1024.test",
        "spf-lookup-limit.test",
    ];
    mailshift()
        .arg("snapshot")
        .args(domains)
        .args([
            "--selector",
            "s1",
            "--selector",
            "s2",
            "--nameserver",
            &ns,
            "--output",
        ])
        .arg(&snapshot)
        .assert()
        .code(0);
    let mut args: Vec<&str> = domains.to_vec();
    args.extend(["--selector", "s1", "--selector", "s2"]);
    let live = verdicts(&args, None, &ns);
    // The server is still asked for what lies outside the domains (ESP records), not for them.
    let replayed = verdicts(&args, Some(&snapshot), &ns);
    assert_eq!(live, replayed);
    assert!(live.iter().any(|(_, id, _)| id == "dkim.selector-missing"));
}

#[test]
fn snapshot_diff_reports_changes_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.zone");
    let new = dir.path().join("new.zone");
    std::fs::write(&old, "$ORIGIN ex.test.\nex.test. 300 IN TXT \"v=spf1 include:sendgrid.net ~all\"\ns2._domainkey.ex.test. 300 IN CNAME s2.example.net.\n").unwrap();
    std::fs::write(
        &new,
        "$ORIGIN ex.test.\nex.test. 300 IN TXT \"v=spf1 ~all\"\n",
    )
    .unwrap();
    mailshift()
        .args(["snapshot", "diff"])
        .arg(&old)
        .arg(&new)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("DKIM selector s2 removed from ex.test").and(
                predicate::str::contains("SPF of ex.test lost include:sendgrid.net"),
            ),
        );
    mailshift()
        .args(["snapshot", "diff"])
        .arg(&old)
        .arg(&old)
        .assert()
        .code(0)
        .stdout("No changes.\n");
    mailshift()
        .args(["snapshot", "diff"])
        .arg(&old)
        .arg(dir.path().join("missing.zone"))
        .assert()
        .code(2);
}

#[test]
fn gate_formats_junit_github_markdown() {
    let out = gate_offline("mig-dangling", "seed")
        .args(["--format", "junit"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let xml = String::from_utf8(out).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    // One test case per requirement and domain, and per policy rule and domain: CI shows
    // what failed where.
    let case = |name: &str| -> String {
        let start = xml
            .find(&format!("<testcase name=\"{name}\""))
            .unwrap_or_else(|| panic!("no case {name}:\n{xml}"));
        let end = xml[start..]
            .find("</testcase>")
            .map_or(xml.len(), |e| start + e);
        xml[start..end].to_string()
    };
    let coexist = case("coexistence: mig-dangling.test");
    assert!(
        coexist.contains("<failure message=\"mig-dangling.test: coexist.dkim-new-missing\""),
        "{coexist}"
    );
    assert!(case("dns: mig-dangling.test").contains("<failure"));
    assert!(case("gmail-2024/spf-and-dkim: mig-dangling.test").contains("<failure"));
    assert!(!case("gmail-2024/spf-or-dkim: mig-dangling.test").contains("<failure"));
    // Rules proven elsewhere are skipped, not passed.
    assert!(
        case("gmail-2024/spam-rate: Spam rate below 0.10%, never 0.30% or more")
            .contains("<skipped")
    );
    assert_eq!(xml.matches("<testcase ").count(), 19, "{xml}");

    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let out = gate_offline("mig-dangling", "seed")
        .args(["--format", "github"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("::error file=") && l.contains("coexist.dkim-new-missing")),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("::error title=mailshift gate::Gate for stage `seed`"),
        "{text}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## ❌ Gate `seed`"), "{md}");
    assert!(md.contains("| failed | `coexistence` |"), "{md}");

    let out = gate_offline("mig-open", "seed")
        .args(["--format", "markdown"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("## ✅ Gate `seed`"));
}

#[test]
fn check_against_one_provider_profile() {
    let doc = run_json(
        mailshift()
            .args([
                "check",
                "mig-open.test",
                "--provider",
                "sendgrid",
                "--return-path",
                "em100.mig-open.test",
            ])
            .args([
                "--sending-ip",
                "198.51.100.25",
                "--sending-ip",
                "198.51.100.26",
                "--sending-ip",
                "198.51.100.27",
            ])
            .args(["--format", "json", "--offline", "--zone"])
            .arg(fixtures().join("zones")),
        1,
    );
    let ids: BTreeSet<String> = id_severities(&doc["domains"][0]["findings"])
        .into_iter()
        .collect();
    for expected in [
        "spf.ip-authorized:pass",
        "align.ok:pass",
        "ptr.ok:pass",
        "ptr.mismatch:fail",
        "ptr.missing:fail",
        "dkim.ok:pass",
    ] {
        assert!(ids.contains(expected), "missing {expected}: {ids:?}");
    }
    mailshift()
        .args([
            "check",
            "mig-open.test",
            "--provider",
            "nosuch",
            "--offline",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown provider `nosuch`"));
}

#[test]
fn providers_are_listed() {
    let list = run_json(mailshift().args(["providers", "--format", "json"]), 0);
    assert_eq!(list["schema_version"], 2);
    let ids: Vec<&str> = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for id in [
        "sendgrid",
        "mailgun",
        "amazon-ses",
        "postmark",
        "mandrill",
        "sparkpost",
        "brevo",
        "klaviyo",
        "google-workspace",
        "microsoft-365",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    mailshift()
        .args(["providers", "--checks-dir"])
        .arg(fixtures().join("plans/checks"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("acme-esp"));
}
