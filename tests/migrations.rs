//! Plans that model real migrations, through the gate: Harbor & Pine
//! (`fixtures/plans/harborandpine.toml`) moves marketing from Mailchimp to Klaviyo and
//! transactional mail from Mandrill to Postmark, keeps staff mail (Google Workspace) and its help
//! desk (Zendesk) authorised, has a domain new on Klaviyo, a defensive registration that sends
//! nothing, a dedicated Klaviyo pool and a shared Postmark one, and Klaviyo signing as the root
//! domain. The zones (`fixtures/zones/harborandpine.*`, and test copies of the platforms' own
//! records) are read through the `--zone` overlay; variants are made by editing a copy.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{apply_changes, fixtures, json, mailshift};

fn plan() -> PathBuf {
    fixtures().join("plans/harborandpine.toml")
}

/// `gate --stage STAGE` over these zones, as JSON, with its exit code.
fn gate(plan: &Path, zones: &Path, stage: &str) -> (i32, Value) {
    let out = mailshift()
        .arg("gate")
        .arg(plan)
        .args([
            "--stage",
            stage,
            "--offline",
            "--no-record",
            "--format",
            "json",
            "--force",
            "evaluating this stage on its own in a test",
            "--zone",
        ])
        .arg(zones)
        .output()
        .unwrap();
    (out.status.code().unwrap(), json(&out.stdout))
}

/// Every finding of every requirement, with its domain.
fn findings(report: &Value) -> Vec<Value> {
    report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter().cloned())
        .collect()
}

fn find<'a>(all: &'a [Value], domain: &str, id: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|f| f["domain"] == domain && f["id"] == id)
        .collect()
}

/// A copy of the fixture zones with one file's text edited.
fn zones_with(file: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("zones")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if name == file {
            text = edit(text);
        }
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_multi_platform_migration_validates_and_its_seed_gate_opens() {
    mailshift()
        .args(["plan", "validate"])
        .arg(plan())
        .assert()
        .code(0);
    let (code, report) = gate(&plan(), &fixtures().join("zones"), "seed");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["decision"], "open");
    let all = findings(&report);
    // Nothing failed anywhere, and the per-domain platforms are the ones named.
    assert!(
        all.iter().all(|f| f["severity"] != "fail"),
        "{:#?}",
        all.iter()
            .filter(|f| f["severity"] == "fail")
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_domain_that_sends_nothing_is_judged_on_what_protects_it() {
    let (_, report) = gate(&plan(), &fixtures().join("zones"), "seed");
    let all = findings(&report);
    // The parked domain is protected: every parked.* finding passes, and it is judged on nothing else.
    let parked: Vec<&Value> = all
        .iter()
        .filter(|f| f["domain"] == "harborandpine.net")
        .collect();
    assert!(!parked.is_empty(), "{all:#?}");
    for f in &parked {
        assert!(f["id"].as_str().unwrap().starts_with("parked."), "{f:#}");
        assert_eq!(f["severity"], "pass", "{f:#}");
    }
    // A variant that gives spoofers a free hand: p=none and no null MX.
    let zones = zones_with("harborandpine.net.zone", |t| {
        t.replace("p=reject; sp=reject; adkim=s; aspf=s", "p=none")
            .replace("@       IN MX   0 .\n", "")
    });
    let (code, report) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 1);
    let all = findings(&report);
    let dmarc = find(&all, "harborandpine.net", "parked.dmarc");
    assert_eq!(dmarc[0]["severity"], "fail", "{dmarc:#?}");
    assert!(dmarc[0]["fix"]["text"]
        .as_str()
        .unwrap()
        .contains("v=DMARC1; p=reject; sp=reject"));
    let mx = find(&all, "harborandpine.net", "parked.mx");
    assert_eq!(mx[0]["severity"], "warn");
    // The checks for senders never run there: a null MX or `-all` is no failure.
    assert!(find(&all, "harborandpine.net", "mx.null").is_empty());
    assert!(find(&all, "harborandpine.net", "dkim.missing").is_empty());
}

#[test]
fn budget_advice_keeps_the_kept_senders_and_proposes_the_exact_record() {
    let (_, report) = gate(&plan(), &fixtures().join("zones"), "seed");
    let all = findings(&report);
    let budget = find(&all, "harborandpine.com", "coexist.spf-budget");
    assert_eq!(budget.len(), 1, "{all:#?}");
    let fix = budget[0]["fix"]["text"].as_str().unwrap();
    // The include of a platform whose mail uses its own return path is named as unneeded…
    assert!(
        fix.contains("remove `include:spf.mandrillapp.com` (1 lookup)")
            && fix.contains("mta.harborandpine.com"),
        "{fix}"
    );
    // …the exact record is proposed, with its count…
    let proposal = "v=spf1 include:_spf.google.com include:mail.zendesk.com include:_spf.crm-tool.net a mx ~all";
    assert!(fix.contains(&format!("`{proposal}` (9 lookups)")), "{fix}");
    assert_eq!(budget[0]["data"]["proposal"]["value"], proposal);
    assert_eq!(budget[0]["data"]["proposal"]["lookups"], 9);
    // …own a/mx terms come with the addresses already looked up…
    assert!(fix.contains("`a` (1) by `ip4:192.0.2.80`"), "{fix}");
    assert!(
        fix.contains("`mx` (1) by `ip4:142.250.4.27 ip4:142.250.4.26`"),
        "{fix}"
    );
    // …and no suggestion ever drops a sender the plan keeps.
    for kept in ["include:_spf.google.com", "include:mail.zendesk.com"] {
        for phrase in ["remove `", "nothing in the plan needs `"] {
            assert!(!fix.contains(&format!("{phrase}{kept}")), "{kept}: {fix}");
        }
    }
    assert!(
        fix.contains("(Google Workspace, Help desk (Zendesk)) stay"),
        "{fix}"
    );
    // The plain check's budget finding defers to the plan-aware one.
    let plain = find(&all, "harborandpine.com", "spf.lookup-budget");
    assert!(plain[0]["fix"]["text"]
        .as_str()
        .unwrap()
        .contains("coexist.spf-budget"));
    // Drop the help desk's include: the kept sender is missing, a failure of its own.
    let zones = zones_with("harborandpine.com.zone", |t| {
        t.replace(" include:mail.zendesk.com", "")
    });
    let (code, report) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 1);
    let all = findings(&report);
    let missing = find(&all, "harborandpine.com", "coexist.kept-missing");
    assert_eq!(missing.len(), 1, "{all:#?}");
    assert!(missing[0]["message"]
        .as_str()
        .unwrap()
        .contains("Help desk (Zendesk)"));
}

#[test]
fn pools_dkim_signing_domains_and_new_only_domains_are_judged_as_the_plan_says() {
    let (_, report) = gate(&plan(), &fixtures().join("zones"), "seed");
    let all = findings(&report);
    let coexist = report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["requirement"] == "coexistence")
        .unwrap();
    assert_eq!(coexist["status"], "passed", "{coexist:#}");
    // offers has no old platform: nothing about Mailchimp's removal; and its DKIM is at the root.
    assert!(find(
        &all,
        "offers.harborandpine.com",
        "coexist.premature-removal"
    )
    .is_empty());
    assert!(find(&all, "offers.harborandpine.com", "dkim.missing").is_empty());
    // A selector that is missing at the signing domain fails for the domain that relies on it.
    let zones = zones_with("harborandpine.com.zone", |t| {
        t.replace(
            "kl2._domainkey    IN CNAME kl2.domainkey.u7777777.wl100.sendgrid.net.\n",
            "",
        )
    });
    let (_, report) = gate(&plan(), zones.path(), "seed");
    let all = findings(&report);
    let dkim = find(&all, "offers.harborandpine.com", "coexist.dkim-new-missing");
    assert_eq!(dkim.len(), 1, "{all:#?}");
    assert!(
        dkim[0]["message"].as_str().unwrap().contains("kl2"),
        "{dkim:#?}"
    );
    // The dedicated pool's IP needs reverse DNS; the shared pool's does not.
    let zones = zones_with("100.51.198.in-addr.arpa.zone", |t| {
        t.replace("40      IN PTR  o40.ptr100.sendgrid.net.\n", "")
    });
    let (code, report) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 1);
    let all = findings(&report);
    let ptr: Vec<&Value> = all.iter().filter(|f| f["id"] == "ptr.missing").collect();
    assert!(!ptr.is_empty(), "{all:#?}");
    assert!(ptr
        .iter()
        .all(|f| f["message"].as_str().unwrap().contains("198.51.100.40")));
    assert!(!report
        .to_string()
        .contains("203.0.113.60 has no reverse DNS"));
}

/// A rule's outcome for one domain, from the gate's JSON.
fn rule_for<'a>(report: &'a Value, policy: &str, rule: &str) -> &'a Value {
    report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["rules"].as_array().into_iter().flatten())
        .find(|r| r["policy"] == policy && r["rule"] == rule)
        .unwrap()
}

fn rule_domain<'a>(rule: &'a Value, domain: &str) -> &'a Value {
    rule["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not judged: {rule:#}"))
}

#[test]
fn policy_rules_are_judged_for_each_domain() {
    // offers' return path is left as a plain subdomain with a stale Mailchimp-era SPF record:
    // Klaviyo's dedicated IP gets no SPF pass for offers' mail, but Klaviyo's DKIM still signs.
    let zones = zones_with("harborandpine.com.zone", |t| {
        t.replace(
            "send.offers IN CNAME u7777777.wl100.sendgrid.net.",
            "send.offers IN TXT \"v=spf1 include:servers.mcsv.net -all\"",
        )
    });
    let (code, report) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 1, "{report:#}");
    // Gmail's "SPF and DKIM" (bulk) fails for offers alone, and says so per domain.
    let both = rule_for(&report, "gmail-2024", "spf-and-dkim");
    assert_eq!(both["status"], "failed");
    let offers = rule_domain(both, "offers.harborandpine.com");
    assert_eq!(offers["status"], "failed");
    assert!(
        offers["detail"]
            .as_str()
            .unwrap()
            .contains("spf.ip-not-authorized (fail)"),
        "{offers:#}"
    );
    for other in ["harborandpine.com", "news.harborandpine.com"] {
        assert_eq!(rule_domain(both, other)["status"], "passed", "{both:#}");
    }
    assert!(both["detail"]
        .as_str()
        .unwrap()
        .starts_with("offers.harborandpine.com failed: "));
    // The fix follows the profile: Klaviyo's SPF lives behind its return-path CNAME, so the
    // advice is the CNAME, never an include at the apex or at offers.
    let all = findings(&report);
    let denied = find(&all, "offers.harborandpine.com", "spf.ip-not-authorized");
    let fix = denied[0]["fix"]["text"].as_str().unwrap();
    assert!(
        fix.starts_with("Point send.offers.harborandpine.com at Klaviyo with the CNAME"),
        "{fix}"
    );
    assert!(!fix.contains("include:"), "{fix}");
    // "SPF or DKIM" still holds for offers: its DKIM passes.
    let either = rule_for(&report, "gmail-2024", "spf-or-dkim");
    assert_eq!(either["status"], "passed", "{either:#}");
    assert_eq!(
        rule_domain(either, "offers.harborandpine.com")["detail"],
        "DKIM passes"
    );
    // The parked domain is not judged by sender rules at all.
    assert!(either["domains"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["domain"] != "harborandpine.net"));
}

#[test]
fn spf_is_judged_where_receivers_evaluate_it() {
    // news has no SPF record of its own: Klaviyo's mail is SPF-checked at its return path and
    // Mailchimp's at mcsv.net, so nothing the plan sends is failed by it.
    let zones = zones_with("harborandpine.com.zone", |t| {
        t.replace("news       IN TXT  \"v=spf1 -all\"\n", "")
    });
    let (code, report) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 0, "{report:#}");
    let all = findings(&report);
    assert!(find(&all, "news.harborandpine.com", "spf.missing").is_empty());
    let unused = find(&all, "news.harborandpine.com", "spf.from-domain-unused");
    assert_eq!(unused.len(), 1, "{all:#?}");
    assert_eq!(unused[0]["severity"], "warn");
    let message = unused[0]["message"].as_str().unwrap();
    assert!(
        message.contains("Klaviyo's mail at send.news.harborandpine.com")
            && message.contains("mail at mcsv.net"),
        "{message}"
    );
    assert_eq!(
        unused[0]["fix"]["records"][0],
        serde_json::json!({"action": "add", "name": "news.harborandpine.com", "type": "TXT", "value": "v=spf1 -all"})
    );
    // The return path's SPF is what counts for news' mail, and is reported for it.
    let rp: Vec<&Value> = all
        .iter()
        .filter(|f| f["domain"] == "send.news.harborandpine.com" && f["id"] == "spf.ok")
        .collect();
    assert_eq!(rp[0]["for_domain"], "news.harborandpine.com");
    // Unless a kept sender uses news as its envelope: staff mail from news on Google Workspace
    // needs news' own record, and the fix is that exact record.
    let plan_dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(plan()).unwrap().replacen(
        "provider = \"google-workspace\"         # staff mail; its envelope is the From domain itself\ndomains = [\"harborandpine.com\"]",
        "provider = \"google-workspace\"\ndomains = [\"harborandpine.com\", \"news.harborandpine.com\"]",
        1,
    );
    assert!(text.contains("\"news.harborandpine.com\"]"));
    let edited = plan_dir.path().join("harborandpine.toml");
    std::fs::write(&edited, text).unwrap();
    let (code, report) = gate(&edited, zones.path(), "seed");
    assert_eq!(code, 1, "{report:#}");
    let all = findings(&report);
    let missing = find(&all, "news.harborandpine.com", "spf.missing");
    assert_eq!(missing[0]["severity"], "fail", "{all:#?}");
    let fix = &missing[0]["fix"];
    assert!(
        fix["text"]
            .as_str()
            .unwrap()
            .contains("`v=spf1 include:_spf.google.com ~all` (Google Workspace uses news.harborandpine.com as envelope sender"),
        "{fix:#}"
    );
    assert_eq!(
        fix["records"][0]["value"],
        "v=spf1 include:_spf.google.com ~all"
    );
}

#[test]
fn a_cross_wired_dkim_delegation_fails_with_the_swap_as_its_fix() {
    // kl and kl2 swapped at the root: each key exists, so a plain lookup finds "a key", but
    // Klaviyo signs with kl's key and receivers would fetch kl2's.
    let zones = zones_with("harborandpine.com.zone", |t| {
        t.replace(
            "kl._domainkey     IN CNAME kl.domainkey.u7777777.wl100.sendgrid.net.\nkl2._domainkey    IN CNAME kl2.domainkey.u7777777.wl100.sendgrid.net.",
            "kl._domainkey     IN CNAME kl2.domainkey.u7777777.wl100.sendgrid.net.\nkl2._domainkey    IN CNAME kl.domainkey.u7777777.wl100.sendgrid.net.",
        )
    });
    let (code, report) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 1, "{report:#}");
    let all = findings(&report);
    let crossed = find(&all, "news.harborandpine.com", "coexist.dkim-cross-wired");
    assert_eq!(crossed.len(), 2, "{all:#?}");
    let kl = crossed
        .iter()
        .find(|f| f["message"].as_str().unwrap().starts_with("Selector kl at"))
        .unwrap();
    assert_eq!(kl["severity"], "fail");
    assert!(
        kl["message"]
            .as_str()
            .unwrap()
            .contains("the target Klaviyo prescribes for selector kl2"),
        "{kl:#}"
    );
    assert_eq!(
        kl["fix"]["records"],
        serde_json::json!([
            {"action": "replace", "name": "kl._domainkey.harborandpine.com", "type": "CNAME",
             "old": "kl2.domainkey.u7777777.wl100.sendgrid.net", "value": "kl.domainkey.u7777777.wl100.sendgrid.net"},
            {"action": "replace", "name": "kl2._domainkey.harborandpine.com", "type": "CNAME",
             "old": "kl.domainkey.u7777777.wl100.sendgrid.net", "value": "kl2.domainkey.u7777777.wl100.sendgrid.net"},
        ])
    );
    // The untouched fixture has no such finding.
    let (_, report) = gate(&plan(), &fixtures().join("zones"), "seed");
    assert!(!report.to_string().contains("dkim-cross-wired"));
}

#[test]
fn the_cutover_gate_shows_its_advice_in_every_format_without_counting_it() {
    let run = |format: &str| -> (i32, String) {
        let out = mailshift()
            .arg("gate")
            .arg(plan())
            .args([
                "--stage",
                "cutover",
                "--offline",
                "--no-record",
                "--format",
                format,
                "--color",
                "never",
                "--force",
                "evaluating this stage on its own in a test",
                "--zone",
            ])
            .arg(fixtures().join("zones"))
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    // Mandrill is retired at the cutover; its include is still at the apex: advice, not a
    // failure, with the exact record that frees its lookup.
    let (code, text) = run("json");
    assert_eq!(code, 0, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["decision"], "open");
    let all = findings(&report);
    let old = find(&all, "harborandpine.com", "coexist.old-still-present");
    assert_eq!(old.len(), 1, "{all:#?}");
    assert_eq!(old[0]["severity"], "info");
    assert!(old[0]["message"].as_str().unwrap().starts_with(
        "From this stage on only Postmark (ActiveCampaign) sends for harborandpine.com"
    ));
    assert_eq!(
        old[0]["fix"]["records"][0]["value"],
        "v=spf1 include:_spf.google.com include:mail.zendesk.com include:_spf.crm-tool.net a mx ~all"
    );
    assert!(old[0]["fix"]["text"]
        .as_str()
        .unwrap()
        .contains("to free 1 lookup "));
    for format in ["table", "markdown", "junit"] {
        let (code, text) = run(format);
        assert_eq!(code, 0, "{format}: {text}");
        assert!(
            text.contains("coexist.old-still-present"),
            "{format}: {text}"
        );
        assert!(text.contains("free 1 lookup"), "{format}: {text}");
        // At the cutover nothing says both platforms send.
        assert!(!text.contains("both send"), "{format}: {text}");
    }
    let (_, text) = run("github");
    assert!(
        text.lines()
            .any(|l| l.starts_with("::notice ") && l.contains("coexist.old-still-present")),
        "{text}"
    );
    let (_, seed) = run("table");
    assert!(seed.contains("only the new platforms send"));
    let out = mailshift()
        .arg("gate")
        .arg(plan())
        .args([
            "--stage",
            "seed",
            "--offline",
            "--no-record",
            "--format",
            "table",
            "--color",
            "never",
            "--force",
            "evaluating this stage on its own in a test",
            "--zone",
        ])
        .arg(fixtures().join("zones"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Old and new platforms both send at this stage"));
}

#[test]
fn plan_records_lists_exact_changes_that_open_the_gate_once_applied() {
    // Three things broke at once: the defensive .net lost its null MX and went to p=none, news
    // lost its SPF record, and Klaviyo's two selectors were swapped.
    let zones = zones_with("harborandpine.net.zone", |t| {
        t.replace(
            "p=reject; sp=reject; adkim=s; aspf=s",
            "p=none; adkim=s; aspf=s",
        )
        .replace("@       IN MX   0 .\n", "")
    });
    let com = zones.path().join("harborandpine.com.zone");
    let text = std::fs::read_to_string(&com).unwrap();
    std::fs::write(
        &com,
        text.replace("news       IN TXT  \"v=spf1 -all\"\n", "")
            .replace(
                "kl._domainkey     IN CNAME kl.domainkey",
                "kl._domainkey     IN CNAME KL2SWAP",
            )
            .replace(
                "kl2._domainkey    IN CNAME kl2.domainkey",
                "kl2._domainkey    IN CNAME kl.domainkey",
            )
            .replace("KL2SWAP", "kl2.domainkey"),
    )
    .unwrap();
    let (code, _) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 1);
    let records = |format: &str| {
        mailshift()
            .args(["plan", "records"])
            .arg(plan())
            .args(["--stage", "seed", "--offline", "--format", format, "--zone"])
            .arg(zones.path())
            .output()
            .unwrap()
    };
    let out = records("json");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out.stdout);
    assert_eq!(doc["schema_version"], 2);
    let changes = doc["changes"].as_array().unwrap().clone();
    let find_change = |name: &str, rtype: &str| {
        changes
            .iter()
            .find(|c| c["name"] == name && c["type"] == rtype)
            .unwrap_or_else(|| panic!("no {name} {rtype} in {changes:#?}"))
    };
    assert_eq!(find_change("harborandpine.net", "MX")["value"], "0 .");
    assert_eq!(
        find_change("_dmarc.harborandpine.net", "TXT")["value"],
        "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s"
    );
    assert_eq!(
        find_change("news.harborandpine.com", "TXT")["value"],
        "v=spf1 -all"
    );
    // The swap is asked for by both domains that rely on the selectors: one change each.
    let kl = find_change("kl._domainkey.harborandpine.com", "CNAME");
    assert_eq!(kl["value"], "kl.domainkey.u7777777.wl100.sendgrid.net");
    assert!(kl["because"].as_array().unwrap().len() >= 2, "{kl:#}");
    assert_eq!(
        changes
            .iter()
            .filter(|c| c["name"] == "kl._domainkey.harborandpine.com")
            .count(),
        1
    );
    // The zone fragment says the same, as records a zone file takes.
    let zone = String::from_utf8(records("zone").stdout).unwrap();
    assert!(
        zone.contains("\nharborandpine.net. 3600 IN MX 0 .\n"),
        "{zone}"
    );
    assert!(zone.contains("\nkl._domainkey.harborandpine.com. 3600 IN CNAME kl.domainkey.u7777777.wl100.sendgrid.net.\n"), "{zone}");
    // Applied as they are, the changes open the gate and leave nothing to change.
    apply_changes(zones.path(), &changes);
    let (code, report) = gate(&plan(), zones.path(), "seed");
    assert_eq!(code, 0, "{report:#}");
    let again = json(&records("json").stdout);
    assert_eq!(again["changes"].as_array().unwrap().len(), 0, "{again:#}");
}

#[test]
fn stages_open_in_order_unless_forced_and_each_opening_records_what_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("harborandpine.toml");
    std::fs::copy(plan(), &plan_path).unwrap();
    let state_dir = dir.path().join("harborandpine.state");
    let run = |stage: &str, extra: &[&str], zones: &Path| {
        let out = mailshift()
            .arg("gate")
            .arg(&plan_path)
            .args(["--stage", stage, "--offline", "--format", "json"])
            .args(extra)
            .arg("--zone")
            .arg(zones)
            .output()
            .unwrap();
        (out.status.code().unwrap(), json(&out.stdout))
    };
    let state = || -> Value {
        let out = mailshift()
            .arg("history")
            .arg(&plan_path)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let mut doc = json(&out.stdout);
        // The openings, as the state file of earlier versions listed them.
        doc["passed"] = doc["openings"].clone();
        doc
    };
    let zones = fixtures().join("zones");
    // seed before setup has opened: closed by the order, whatever the records say.
    let (code, report) = run("seed", &[], &zones);
    assert_eq!(code, 1);
    assert_eq!(report["requirements"][0]["requirement"], "order");
    assert_eq!(report["requirements"][0]["status"], "failed");
    assert!(report["requirements"][0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("the earlier stage `setup` has not opened yet"));
    assert_eq!(
        state()["passed"].as_array().map_or(0, Vec::len),
        0,
        "a closed gate opens nothing"
    );
    assert!(
        state_dir.join("history.db").is_file(),
        "its decision is in the history"
    );
    // setup opens, and the state keeps the digest of the answers it read.
    let (code, report) = run("setup", &[], &zones);
    assert_eq!(code, 0, "{report:#}");
    let digest = report["records_digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64);
    assert!(report["records_seen"].as_u64().unwrap() > 20);
    let opened = &state()["passed"][0];
    assert_eq!(opened["stage"], "setup");
    assert_eq!(opened["records_digest"], digest.as_str());
    assert_eq!(opened["mailshift"], env!("CARGO_PKG_VERSION"));
    // The cutover with seed not opened: closed, unless forced with a reason, which is recorded.
    let (code, report) = run("cutover", &[], &zones);
    assert_eq!(code, 1);
    assert!(report["requirements"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("`seed`"));
    mailshift()
        .arg("gate")
        .arg(&plan_path)
        .args(["--stage", "cutover", "--offline", "--force", " ", "--zone"])
        .arg(&zones)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--force needs a reason"));
    let (code, report) = run(
        "cutover",
        &[
            "--force",
            "seed approved by the deliverability lead (ticket DLV-142)",
        ],
        &zones,
    );
    assert_eq!(code, 0, "{report:#}");
    let forced = state()["passed"][1]["forced"].as_str().unwrap().to_string();
    assert!(forced.starts_with("seed approved by the deliverability lead (ticket DLV-142)"));
    assert!(forced.contains("`seed` has not opened"), "{forced}");
    // Evaluated again, setup says whether the records changed since it opened.
    let (_, report) = run("setup", &["--no-record"], &zones);
    assert_eq!(
        report["opened_before"]["records_changed"], false,
        "{report:#}"
    );
    let changed = zones_with("harborandpine.com.zone", |t| {
        t.replace("p=quarantine; rua=", "p=reject; rua=")
    });
    let (_, report) = run("setup", &["--no-record"], changed.path());
    assert_eq!(report["opened_before"]["records_changed"], true);
    let out = mailshift()
        .arg("gate")
        .arg(&plan_path)
        .args([
            "--stage",
            "setup",
            "--offline",
            "--no-record",
            "--format",
            "table",
            "--zone",
        ])
        .arg(changed.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("the DNS records read now differ from those it opened on"));
}

/// A copy of the Harbor & Pine plan with its text edited.
fn plan_with(edit: impl Fn(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harborandpine.toml");
    let text = std::fs::read_to_string(plan()).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    std::fs::write(&path, edited).unwrap();
    (dir, path)
}

#[test]
fn an_empty_selector_list_means_none_and_a_retiring_domain_keeps_only_its_old_platform() {
    // Postmark generates selectors per account: naming none is a warning…
    let (_d, unnamed) = plan_with(|t| {
        t.replace("selectors = [\"20261101pm\"]            # Postmark generates the selector per account\n", "")
    });
    let (_, report) = gate(&unnamed, &fixtures().join("zones"), "seed");
    let all = findings(&report);
    assert_eq!(
        find(&all, "harborandpine.com", "coexist.selectors-unknown").len(),
        1,
        "{all:#?}"
    );
    // …but `selectors = []` says there are none: no warning, and never the profile's defaults.
    let (_d, empty) = plan_with(|t| t.replace("selectors = [\"20261101pm\"]", "selectors = []"));
    let (_, report) = gate(&empty, &fixtures().join("zones"), "seed");
    let all = findings(&report);
    assert!(find(&all, "harborandpine.com", "coexist.selectors-unknown").is_empty());
    // Klaviyo has default selectors (kl, kl2); an empty list means none of them is looked up,
    // so its mail can only align through SPF.
    let (_d, klaviyo_none) = plan_with(|t| {
        t.replacen(
            "[domain.new]\nselectors = [\"kl\", \"kl2\"]",
            "[domain.new]\nselectors = []",
            1,
        )
    });
    let (_, report) = gate(&klaviyo_none, &fixtures().join("zones"), "seed");
    let all = findings(&report);
    let align = find(&all, "news.harborandpine.com", "align.spf-only");
    assert_eq!(align.len(), 1, "{all:#?}");
    assert!(find(&all, "news.harborandpine.com", "coexist.selectors-unknown").is_empty());

    // news retires with Mailchimp: no new platform there. Until the cutover Mailchimp's keys
    // must stay; nothing is asked of Klaviyo for news.
    let (_d, retiring) = plan_with(|t| {
        t.replacen(
            "[domain.new]\nselectors = [\"kl\", \"kl2\"]\nreturn_path = \"send.news.harborandpine.com\"\nsigning_domain = \"harborandpine.com\"  # Klaviyo signs as the root domain (d=), not news.",
            "[domain.new]\nplatform = \"none\"",
            1,
        )
    });
    mailshift()
        .args(["plan", "validate"])
        .arg(&retiring)
        .assert()
        .code(0);
    let zones = zones_with("harborandpine.com.zone", |t| {
        t.replace("k2._domainkey.news IN CNAME dkim2.mcsv.net.\n", "")
    });
    let (code, report) = gate(&retiring, zones.path(), "seed");
    assert_eq!(code, 1);
    let all = findings(&report);
    let removed = find(&all, "news.harborandpine.com", "coexist.premature-removal");
    assert_eq!(removed.len(), 1, "{all:#?}");
    assert!(removed[0]["message"]
        .as_str()
        .unwrap()
        .contains("selector k2"));
    for id in [
        "align.ok",
        "align.spf-only",
        "coexist.dkim-new-missing",
        "spf.ip-authorized",
    ] {
        assert!(
            find(&all, "news.harborandpine.com", id).is_empty(),
            "{id}: {all:#?}"
        );
    }
    // From the cutover on nothing sends for it, and nothing is asked of either platform.
    let (_, report) = gate(&retiring, zones.path(), "cutover");
    let all = findings(&report);
    assert!(find(&all, "news.harborandpine.com", "coexist.premature-removal").is_empty());
}

#[test]
fn check_and_gate_agree_offline_on_a_real_tld() {
    // No stub zone for `com`: the DMARC policy and the alignment of Postmark's mail come out
    // the same from `check --provider` and from the gate.
    let out = mailshift()
        .args(["check", "--offline", "--format", "json", "--zone"])
        .arg(fixtures().join("zones"))
        .args([
            "harborandpine.com",
            "--provider",
            "postmark",
            "--return-path",
            "pm-bounces.harborandpine.com",
            "--selector",
            "20261101pm",
        ])
        .output()
        .unwrap();
    let checked = json(&out.stdout)["domains"][0]["findings"].clone();
    let (_, report) = gate(&plan(), &fixtures().join("zones"), "seed");
    let gated = findings(&report);
    for id in ["align.ok", "dmarc.ok"] {
        let from_check = checked
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("check has no {id}: {checked:#}"));
        let from_gate = find(&gated, "harborandpine.com", id);
        assert_eq!(from_gate.len(), 1, "{id}: {gated:#?}");
        assert_eq!(from_check["message"], from_gate[0]["message"], "{id}");
        assert_eq!(from_check["evidence"], from_gate[0]["evidence"], "{id}");
    }
    assert!(!report.to_string().contains("inconclusive\""), "{report:#}");
}

#[test]
fn after_the_cutover_the_old_platforms_records_must_go_and_plan_records_says_exactly_which() {
    let (_d, plan_path) =
        plan_with(|t| t + "\n[[stage]]\nname = \"cleanup\"\nrequires = [\"old-removed\"]\n");
    let zones = zones_with("harborandpine.com.zone", |t| t);
    let (code, report) = gate(&plan_path, zones.path(), "cleanup");
    assert_eq!(code, 1, "{report:#}");
    let all = findings(&report);
    // Mandrill at the apex: its include, its two selectors and its return path.
    let include = find(&all, "harborandpine.com", "retired.include-present");
    assert_eq!(include.len(), 1, "{all:#?}");
    assert_eq!(
        include[0]["fix"]["records"][0]["value"],
        "v=spf1 include:_spf.google.com include:mail.zendesk.com include:_spf.crm-tool.net a mx ~all"
    );
    let selectors: Vec<&str> = all
        .iter()
        .filter(|f| f["id"] == "retired.selector-present")
        .flat_map(|f| f["fix"]["records"].as_array().unwrap())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for name in [
        "mte1._domainkey.harborandpine.com",
        "mte2._domainkey.harborandpine.com",
        "k2._domainkey.news.harborandpine.com",
        "k3._domainkey.news.harborandpine.com",
    ] {
        assert!(selectors.contains(&name), "{name}: {selectors:?}");
    }
    let host = find(&all, "harborandpine.com", "retired.host-present");
    assert_eq!(
        host[0]["fix"]["records"][0],
        serde_json::json!({"action": "remove", "name": "mta.harborandpine.com", "type": "CNAME", "value": "mandrillapp.com"})
    );
    // Klaviyo's selectors at the root are the new platform's: never asked for.
    assert!(!report
        .to_string()
        .contains("kl._domainkey.harborandpine.com\",\"type\":\"CNAME\",\"value\":\"kl.domainkey"));
    // plan records lists the removals; applied, the cleanup gate opens.
    let out = mailshift()
        .args(["plan", "records"])
        .arg(&plan_path)
        .args([
            "--stage",
            "cleanup",
            "--offline",
            "--format",
            "json",
            "--zone",
        ])
        .arg(zones.path())
        .output()
        .unwrap();
    let changes = json(&out.stdout)["changes"].as_array().unwrap().clone();
    assert!(
        changes.iter().filter(|c| c["action"] == "remove").count() >= 5,
        "{changes:#?}"
    );
    apply_changes(zones.path(), &changes);
    let (code, report) = gate(&plan_path, zones.path(), "cleanup");
    assert_eq!(code, 0, "{report:#}");
    let all = findings(&report);
    let ok = find(&all, "harborandpine.com", "retired.ok");
    assert!(ok[0]["message"]
        .as_str()
        .unwrap()
        .contains("its SPF include (9 lookups now)"));
}
