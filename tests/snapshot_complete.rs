//! Snapshots are complete (issue 8 §2): a snapshot holds every live mail record of its domains,
//! so `check` and `gate` fed the snapshot — with only the platforms' own zones beside it — reach
//! exactly the verdict they reach live. Harbor & Pine (`fixtures/plans/harborandpine.toml`: four
//! platforms, a kept Google Workspace whose `google` selector the plan never names, a parked
//! `.net` with a wildcard DKIM key, BIMI, MTA-STS and TLS-RPT) and Alpine Outfitters (two
//! country domains and a web shop, no plan) over the fixture zones, offline. Also: a flooded
//! apex stays bounded, and `snapshot diff` names the new record kinds.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::{fixtures, json, mailshift};

const HARBOR_DOMAINS: [&str; 4] = [
    "news.harborandpine.com",
    "harborandpine.com",
    "offers.harborandpine.com",
    "harborandpine.net",
];

const ALPINE_DOMAINS: [&str; 3] = [
    "alpine-outfitters.co.uk",
    "alpine-outfitters.de",
    "shop.alpine-outfitters.co.uk",
];

fn plan() -> PathBuf {
    fixtures().join("plans/harborandpine.toml")
}

/// A directory with every fixture zone except those of `own` (a zone is theirs when one of
/// them lies at or below its apex): the platforms' side, which a snapshot does not hold.
fn platform_zones(own: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("zones")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(apex) = name.strip_suffix(".zone") else {
            continue;
        };
        let theirs = own
            .iter()
            .any(|d| *d == apex || d.ends_with(&format!(".{apex}")));
        if !theirs {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    assert!(dir.path().join("sendgrid.net.zone").exists());
    dir
}

/// `mailshift snapshot ARGS --offline --zone ZONES -o FILE`: the file's text and standard error.
fn snapshot(args: &[&str], zones: &Path, file: &Path) -> (String, String) {
    let out = mailshift()
        .arg("snapshot")
        .args(args)
        .arg("--offline")
        .arg("--zone")
        .arg(zones)
        .arg("--output")
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (std::fs::read_to_string(file).unwrap(), stderr)
}

/// `check --format json --offline` over these zones.
fn check(zones: &[&Path], domains: &[&str]) -> Value {
    let mut cmd = mailshift();
    cmd.args(["check", "--format", "json", "--offline"]);
    for z in zones {
        cmd.arg("--zone").arg(z);
    }
    json(&cmd.args(domains).output().unwrap().stdout)
}

type Verdicts = BTreeMap<String, Vec<(String, String, String)>>;

/// Each domain's findings as (id, severity, message), in report order.
fn check_verdicts(report: &Value) -> Verdicts {
    report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let findings = d["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["id"].as_str().unwrap().to_string(),
                        f["severity"].as_str().unwrap().to_string(),
                        f["message"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (d["domain"].as_str().unwrap().to_string(), findings)
        })
        .collect()
}

/// `gate PLAN --stage seed --no-record --format json --offline` over these zones, with its exit
/// code.
fn gate(zones: &[&Path]) -> (i32, Value) {
    let mut cmd = mailshift();
    cmd.arg("gate").arg(plan()).args([
        "--stage",
        "seed",
        "--no-record",
        "--format",
        "json",
        "--offline",
        "--force",
        "evaluating this stage on its own in a test",
    ]);
    for z in zones {
        cmd.arg("--zone").arg(z);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap(), json(&out.stdout))
}

/// Each domain's gate findings as (requirement, id, severity, message), in report order.
fn gate_verdicts(report: &Value) -> BTreeMap<String, Vec<(String, String, String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String, String, String)>> = BTreeMap::new();
    for r in report["requirements"].as_array().unwrap() {
        for f in r["findings"].as_array().unwrap() {
            out.entry(f["domain"].as_str().unwrap().to_string())
                .or_default()
                .push((
                    r["requirement"].as_str().unwrap().to_string(),
                    f["id"].as_str().unwrap().to_string(),
                    f["severity"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                ));
        }
    }
    out
}

fn assert_same(live: &Verdicts, restored: &Verdicts) {
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        restored.keys().collect::<Vec<_>>()
    );
    for (domain, findings) in live {
        assert_eq!(
            Some(findings),
            restored.get(domain),
            "{domain}: the snapshot's verdict differs from the live one"
        );
    }
}

/// True when the snapshot holds this record line (owner, TTL, type and data, tab-separated).
fn holds(text: &str, owner: &str, qtype: &str, data: &str) -> bool {
    text.lines()
        .any(|l| l == format!("{owner}.\t3600\tIN\t{qtype}\t{data}"))
}

#[test]
fn a_plan_snapshot_reproduces_check_and_the_seed_gate() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("harborandpine-before.zone");
    let zones = fixtures().join("zones");
    let (text, stderr) = snapshot(&["--plan", plan().to_str().unwrap()], &zones, &snap);
    assert!(
        stderr.contains("records for 4 domain(s)") && !stderr.contains("Not everything"),
        "{stderr}"
    );
    let platforms = platform_zones(&HARBOR_DOMAINS);

    // check: every domain's findings, word for word (and evidence and fixes too).
    let live = check(&[&zones], &HARBOR_DOMAINS);
    let restored = check(&[&snap, platforms.path()], &HARBOR_DOMAINS);
    let (live_v, restored_v) = (check_verdicts(&live), check_verdicts(&restored));
    assert_eq!(live_v.len(), 4);
    // The live verdict rests on a selector no plan platform names: Google Workspace is kept.
    assert!(
        live_v["harborandpine.com"].iter().any(
            |(id, _, m)| id == "dkim.ok" && m.starts_with("Selector google (Google Workspace)")
        ),
        "{:#?}",
        live_v["harborandpine.com"]
    );
    assert_same(&live_v, &restored_v);
    assert_eq!(live["domains"], restored["domains"]);

    // gate --stage seed: the same decision from the same findings.
    let (live_code, live_gate) = gate(&[&zones]);
    let (restored_code, restored_gate) = gate(&[&snap, platforms.path()]);
    assert_eq!(live_code, 0, "{live_gate:#}");
    assert_eq!(live_gate["decision"], "open");
    assert_eq!(restored_code, live_code, "{restored_gate:#}");
    assert_eq!(restored_gate["decision"], live_gate["decision"]);
    let (live_g, restored_g) = (gate_verdicts(&live_gate), gate_verdicts(&restored_gate));
    assert!(live_g.contains_key("harborandpine.net"), "{live_g:#?}");
    assert_eq!(live_g, restored_g);
    assert_eq!(live_gate["requirements"], restored_gate["requirements"]);

    // What made that possible, record by record.
    let key = |sel: &str, domain: &str| {
        text.lines().any(|l| {
            l.starts_with(&format!(
                "{sel}._domainkey.{domain}.\t3600\tIN\tTXT\t\"v=DKIM1; k=rsa; p=MIIBIjANBg"
            ))
        })
    };
    assert!(key("google", "harborandpine.com"), "{text}");
    for (owner, qtype, data) in [
        // Klaviyo signs news and offers as the root domain: its selectors live there.
        (
            "kl._domainkey.harborandpine.com",
            "CNAME",
            "kl.domainkey.u7777777.wl100.sendgrid.net.",
        ),
        (
            "kl2._domainkey.harborandpine.com",
            "CNAME",
            "kl2.domainkey.u7777777.wl100.sendgrid.net.",
        ),
        (
            "mte1._domainkey.harborandpine.com",
            "CNAME",
            "dkim1.mandrillapp.com.",
        ),
        (
            "k2._domainkey.news.harborandpine.com",
            "CNAME",
            "dkim2.mcsv.net.",
        ),
        (
            "harborandpine.com",
            "TXT",
            "\"google-site-verification=hP1n3-t3st-v3rif1cation\"",
        ),
        (
            "default._bimi.harborandpine.com",
            "TXT",
            "\"v=BIMI1; l=https://harborandpine.com/bimi/logo.svg; a=\"",
        ),
        (
            "_mta-sts.harborandpine.com",
            "TXT",
            "\"v=STSv1; id=20261101T000000\"",
        ),
        (
            "mta-sts.harborandpine.com",
            "CNAME",
            "www.harborandpine.com.",
        ),
        ("www.harborandpine.com", "A", "192.0.2.80"),
        (
            "_smtp._tls.harborandpine.com",
            "TXT",
            "\"v=TLSRPTv1; rua=mailto:tlsrpt@harborandpine.com\"",
        ),
        (
            "send.news.harborandpine.com",
            "CNAME",
            "u7777777.wl100.sendgrid.net.",
        ),
        ("pm-bounces.harborandpine.com", "CNAME", "pm.mtasv.net."),
        ("*._domainkey.harborandpine.net", "TXT", "\"v=DKIM1; p=\""),
        ("harborandpine.net", "MX", "0 ."),
    ] {
        assert!(
            holds(&text, owner, qtype, data),
            "no {owner} {qtype} {data} in:\n{text}"
        );
    }
    // The parked domain's probes were answered by its wildcard: kept once, as the wildcard.
    assert!(
        !text.contains("google._domainkey.harborandpine.net"),
        "{text}"
    );
    // The platforms' records are comments, never data the restored zone would answer for.
    assert!(
        text.contains(
            "\n; u7777777.wl100.sendgrid.net. 3600 TXT \"v=spf1 include:sendgrid.net -all\"\n"
        ),
        "{text}"
    );
    // The header says what was looked up.
    for line in [
        "; DKIM selectors probed at each domain: google, selector1, selector2, s1, s2,",
        // Klaviyo's selectors at the domain it signs as, Mandrill's and Postmark's at their own.
        "; DKIM selectors named for harborandpine.com: kl, kl2, mte1, mte2, 20261101pm\n",
        "; DKIM selectors named for news.harborandpine.com: k2, k3\n",
        "; Plan host send.news.harborandpine.com, return path (Klaviyo): CNAME, A, AAAA and its own mail records\n",
        "; also _mta-sts TXT (MTA-STS), mta-sts CNAME/A/AAAA (MTA-STS policy host), _smtp._tls TXT (TLS-RPT), default._bimi TXT (BIMI), _amazonses TXT (Amazon SES verification), zendeskverification TXT (Zendesk verification).\n",
        "; Nothing was left out",
    ] {
        assert!(text.contains(line), "no {line:?} in the header:\n{text}");
    }
}

#[test]
fn domain_snapshots_reproduce_check_with_inherited_and_external_dmarc() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("alpine.zone");
    let zones = fixtures().join("zones");
    let (text, _) = snapshot(&ALPINE_DOMAINS, &zones, &snap);
    let platforms = platform_zones(&ALPINE_DOMAINS);
    assert!(!platforms.path().join("alpine-outfitters.de.zone").exists());
    let live = check(&[&zones], &ALPINE_DOMAINS);
    let restored = check(&[&snap, platforms.path()], &ALPINE_DOMAINS);
    let (live_v, restored_v) = (check_verdicts(&live), check_verdicts(&restored));
    // The shop inherits the apex's sp=none: the verdict rests on the parent's _dmarc record.
    assert!(
        live_v["shop.alpine-outfitters.co.uk"]
            .iter()
            .any(|(id, sev, _)| id == "dmarc.policy-none" && sev == "warn"),
        "{live_v:#?}"
    );
    assert_same(&live_v, &restored_v);
    assert_eq!(live["domains"], restored["domains"]);
    for (owner, qtype, data) in [
        (
            "alpine-outfitters.co.uk",
            "TXT",
            "\"google-site-verification=alp1ne-0utf1tters-v3rif1cation\"",
        ),
        (
            "alpine-outfitters.de._report._dmarc.alpine-outfitters.co.uk",
            "TXT",
            "\"v=DMARC1\"",
        ),
        (
            "s1._domainkey.shop.alpine-outfitters.co.uk",
            "CNAME",
            "s1.domainkey.u7777777.wl100.sendgrid.net.",
        ),
    ] {
        assert!(
            holds(&text, owner, qtype, data),
            "no {owner} {qtype} {data} in:\n{text}"
        );
    }
    // Without a plan, only the probe list is looked up.
    assert!(!text.contains("; DKIM selectors named for"), "{text}");
}

#[test]
fn a_flooded_apex_keeps_the_snapshot_bounded_and_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    // Hostile: thousands of TXT records at the apex beside the one SPF record.
    let mut zone = String::from("$ORIGIN hostile-txt-flood.test.\n$TTL 3600\n@ IN SOA ns1 hostmaster 2026120101 3600 600 86400 300\n@ IN MX 10 mx1\nmx1 IN A 192.0.2.25\n@ IN TXT \"v=spf1 mx -all\"\n_dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@hostile-txt-flood.test\"\n");
    for i in 0..5000 {
        zone.push_str(&format!(
            "@ IN TXT \"flood-{i:05}-verification=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"
        ));
    }
    std::fs::write(zones.join("hostile-txt-flood.test.zone"), zone).unwrap();
    let snap = dir.path().join("snap.zone");
    let (text, stderr) = snapshot(&["hostile-txt-flood.test"], &zones, &snap);
    assert!(stderr.contains("Not everything was kept"), "{stderr}");
    assert!(
        text.contains(
            ";   hostile-txt-flood.test TXT: kept 100 of 5001 records (SPF and DMARC first)\n"
        ),
        "{}",
        text.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    let apex_txt = text
        .lines()
        .filter(|l| l.starts_with("hostile-txt-flood.test.\t3600\tIN\tTXT\t"))
        .count();
    assert_eq!(apex_txt, 100);
    assert!(text.len() < 32 * 1024, "{} bytes", text.len());
    // The checks read the SPF record, which was kept: the verdict is the live one.
    let live = check(&[&zones], &["hostile-txt-flood.test"]);
    let restored = check(&[&snap], &["hostile-txt-flood.test"]);
    assert_same(&check_verdicts(&live), &check_verdicts(&restored));
    assert!(check_verdicts(&live)["hostile-txt-flood.test"]
        .iter()
        .any(|(id, sev, _)| id == "spf.ok" && sev == "pass"));
}

#[test]
fn snapshot_diff_names_what_changed_between_two_plan_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let zones = fixtures().join("zones");
    let before = dir.path().join("before.zone");
    let again = dir.path().join("again.zone");
    let after = dir.path().join("after.zone");
    let plan = plan();
    let args = ["--plan", plan.to_str().unwrap()];
    snapshot(&args, &zones, &before);
    snapshot(&args, &zones, &again);
    // Two snapshots of unchanged zones differ only in when they were taken.
    mailshift()
        .args(["snapshot", "diff"])
        .arg(&before)
        .arg(&again)
        .assert()
        .code(0)
        .stdout("No changes.\n");
    // The logo moves, the MTA-STS policy is bumped and the old verification token is dropped.
    let edited = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&zones).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "harborandpine.com.zone" {
            text = text
                .replace("bimi/logo.svg", "bimi/logo-2027.svg")
                .replace("id=20261101T000000", "id=20261201T000000")
                .replace(
                    "@       IN TXT  \"google-site-verification=hP1n3-t3st-v3rif1cation\"\n",
                    "",
                );
        }
        std::fs::write(edited.path().join(path.file_name().unwrap()), text).unwrap();
    }
    snapshot(&args, edited.path(), &after);
    let out = mailshift()
        .args(["snapshot", "diff", "--format", "json"])
        .arg(&before)
        .arg(&after)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let changes = json(&out.stdout);
    let said: Vec<(String, String)> = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("removed", "verification record removed from harborandpine.com: google-site-verification=hP1n3-t3st-v3rif1cation"),
        ("changed", "MTA-STS policy id of harborandpine.com changed: 20261101T000000 → 20261201T000000"),
        ("changed", "BIMI record of harborandpine.com changed: -v=BIMI1; l=https://harborandpine.com/bimi/logo.svg; a=, +v=BIMI1; l=https://harborandpine.com/bimi/logo-2027.svg; a="),
    ];
    for (kind, summary) in expected {
        assert!(
            said.iter().any(|(k, s)| k == kind && s == summary),
            "missing {kind} {summary:?} in {said:#?}"
        );
    }
    // Nothing else changed, and in particular not the SPF record beside the dropped token.
    assert_eq!(said.len(), expected.len(), "{said:#?}");
}

#[test]
fn a_domain_that_cannot_be_read_is_not_backed_up_and_the_header_says_so() {
    let server = support::fixture_server();
    let ns = server.nameserver_arg();
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap.zone");
    let out = mailshift()
        .args(["snapshot", "clean.test", support::SERVFAIL_DOMAIN])
        .args(["--nameserver", &ns, "--retries", "0", "--output"])
        .arg(&snap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&snap).unwrap();
    assert!(text.contains("\n$ORIGIN clean.test.\n"), "{text}");
    // Restored as an empty zone it would fail checks that were inconclusive live.
    assert!(!text.contains("$ORIGIN hostile-servfail.test."), "{text}");
    assert!(
        text.contains(";   hostile-servfail.test could not be read (TXT: the server answered SERVFAIL): not backed up\n"),
        "{text}"
    );
    let live = check_verdicts(&json(
        &mailshift()
            .args([
                "check",
                "--format",
                "json",
                "--nameserver",
                &ns,
                "clean.test",
            ])
            .output()
            .unwrap()
            .stdout,
    ));
    let restored = check_verdicts(&json(
        &mailshift()
            .args(["check", "--format", "json", "--nameserver", &ns, "--zone"])
            .arg(&snap)
            .arg("clean.test")
            .output()
            .unwrap()
            .stdout,
    ));
    assert_same(&live, &restored);
}
