//! Verdict classes a specialist found wrong in other checkers, each pinned on realistic zones
//! (`fixtures/zones/alpine-outfitters.*`: a UK retailer with a Google Workspace apex and a
//! SendGrid web shop, and its German sister domain mid-way through a DMARC rollout).

mod support;

use serde_json::Value;
use support::{fixtures, json, mailshift};

/// `check --offline` over the fixture zones: the domain's report.
fn check(domain: &str) -> Value {
    let out = mailshift()
        .args(["check", "--offline", "--format", "json", "--zone"])
        .arg(fixtures().join("zones"))
        .arg(domain)
        .output()
        .unwrap();
    let doc = json(&out.stdout);
    doc["domains"][0].clone()
}

fn finding<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

fn has(report: &Value, id: &str) -> bool {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == id)
}

const UK_RECORD: &str = "v=DMARC1; p=reject; sp=none; np=none; rua=mailto:dmarc@alpine-outfitters.co.uk; ruf=mailto:ruf@reports.dmarc-analytics.io; fo=1";

#[test]
fn an_inherited_sp_none_is_named_and_its_fix_edits_sp() {
    let shop = check("shop.alpine-outfitters.co.uk");
    assert_eq!(shop["status"], "warn", "{shop:#}");
    let none = finding(&shop, "dmarc.policy-none");
    let message = none["message"].as_str().unwrap();
    assert!(
        message.contains("governed by `sp=none` in the record at _dmarc.alpine-outfitters.co.uk")
            && message.contains("p=reject applies to alpine-outfitters.co.uk itself only"),
        "{message}"
    );
    // Never the parent's p=: that is already reject.
    assert!(!message.contains("The policy is p=none"), "{message}");
    let fix = &none["fix"];
    assert!(
        fix["text"]
            .as_str()
            .unwrap()
            .contains("change `sp=none` to `sp=reject`"),
        "{fix:#}"
    );
    assert_eq!(
        fix["records"][0],
        serde_json::json!({
            "action": "replace",
            "name": "_dmarc.alpine-outfitters.co.uk",
            "type": "TXT",
            "old": UK_RECORD,
            "value": UK_RECORD.replace("sp=none", "sp=reject"),
        })
    );
}

#[test]
fn the_parents_own_check_says_its_subdomains_and_invented_names_are_unenforced() {
    let apex = check("alpine-outfitters.co.uk");
    assert!(!has(&apex, "dmarc.policy-none"), "{apex:#}");
    let sub = finding(&apex, "dmarc.subdomains-unenforced");
    assert_eq!(sub["severity"], "warn");
    assert_eq!(
        sub["fix"]["records"][0]["value"],
        UK_RECORD.replace("sp=none; ", "")
    );
    let np = finding(&apex, "dmarc.nonexistent-unenforced");
    assert_eq!(np["severity"], "warn");
    assert_eq!(
        np["fix"]["records"][0]["value"],
        UK_RECORD.replace("np=none", "np=reject")
    );
}

#[test]
fn pct_below_100_and_testing_mode_are_warnings_that_say_which_receivers_do_what() {
    let de = check("alpine-outfitters.de");
    assert_eq!(de["status"], "warn", "{de:#}");
    let pct = finding(&de, "dmarc.pct-partial");
    assert_eq!(pct["severity"], "warn");
    let m = pct["message"].as_str().unwrap();
    assert!(
        m.contains("RFC 7489 apply p=quarantine to only 25%")
            && m.contains("RFC 9989 receivers ignore pct"),
        "{m}"
    );
    let t = finding(&de, "dmarc.testing");
    let m = t["message"].as_str().unwrap();
    assert!(
        m.contains("RFC 9989 apply one step less") && m.contains("RFC 7489 do not know t="),
        "{m}"
    );
    assert_eq!(
        t["fix"]["records"][0]["value"],
        "v=DMARC1; p=quarantine; pct=25; rua=mailto:dmarc@alpine-outfitters.co.uk"
    );
    // pct is a finding of its own, not also an "ignored tag".
    assert!(!has(&de, "dmarc.ignored-tags"), "{de:#}");
    // The reports go to the UK domain, which authorises them: nothing to say about rua.
    assert!(!has(&de, "dmarc.rua-unauthorized"), "{de:#}");
}

#[test]
fn an_unauthorised_failure_report_address_has_its_own_id() {
    let apex = check("alpine-outfitters.co.uk");
    assert!(!has(&apex, "dmarc.rua-unauthorized"), "{apex:#}");
    let ruf = finding(&apex, "dmarc.ruf-unauthorized");
    assert!(ruf["message"]
        .as_str()
        .unwrap()
        .starts_with("Failure reports go to ruf@reports.dmarc-analytics.io"));
    assert_eq!(
        ruf["fix"]["records"][0],
        serde_json::json!({"action": "add", "name": "alpine-outfitters.co.uk._report._dmarc.reports.dmarc-analytics.io", "type": "TXT", "value": "v=DMARC1"})
    );
}

#[test]
fn alignment_under_a_public_suffix_is_decided_offline_without_a_stub_for_it() {
    // No zone for co.uk or uk: the walk stops being the zones' business above the company's
    // own record, so the organisational domain is alpine-outfitters.co.uk and the em4821
    // return path aligns (relaxed) — the same as `gate` decides.
    let out = mailshift()
        .args(["check", "--offline", "--format", "json", "--zone"])
        .arg(fixtures().join("zones"))
        .args([
            "shop.alpine-outfitters.co.uk",
            "--provider",
            "sendgrid",
            "--return-path",
            "em4821.shop.alpine-outfitters.co.uk",
        ])
        .output()
        .unwrap();
    let report = json(&out.stdout)["domains"][0].clone();
    let align = finding(&report, "align.ok");
    let evidence = align["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("the return path em4821.shop.alpine-outfitters.co.uk is in the organisational domain alpine-outfitters.co.uk, so SPF aligns (relaxed)"),
        "{evidence}"
    );
    assert!(!has(&report, "align.inconclusive"), "{report:#}");
    assert!(!has(&report, "dmarc.inconclusive"), "{report:#}");
}

#[test]
fn fixes_whose_values_are_known_are_exact_records_that_clear_the_finding() {
    // (fixture domain, finding): the fix carries the exact change; applied to a copy of the
    // zones, the finding is gone.
    for (domain, id) in [
        ("spf-all-pass.test", "spf.all-pass"),
        ("spf-all-neutral.test", "spf.all-neutral"),
        ("spf-no-all.test", "spf.all-neutral"),
        ("spf-after-all.test", "spf.terms-after-all"),
        ("dkim-testing.test", "dkim.testing"),
        ("dkim-sha1.test", "dkim.hash-sha1"),
        ("mx-null.test", "mx.null"),
        ("alpine-outfitters.de", "dmarc.pct-partial"),
        ("alpine-outfitters.co.uk", "dmarc.nonexistent-unenforced"),
    ] {
        let before = check(domain);
        let records = finding(&before, id)["fix"]["records"]
            .as_array()
            .unwrap_or_else(|| panic!("{domain} {id}: no records"))
            .clone();
        assert!(!records.is_empty(), "{domain} {id}");
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixtures().join("zones")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        support::apply_changes(dir.path(), &records);
        let out = mailshift()
            .args(["check", "--offline", "--format", "json", "--zone"])
            .arg(dir.path())
            .arg(domain)
            .output()
            .unwrap();
        let after = json(&out.stdout)["domains"][0].clone();
        assert!(
            !has(&after, id),
            "{domain}: {id} is still there after {records:#?}"
        );
    }
}
