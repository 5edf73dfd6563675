//! MTA-STS and TLS-RPT through the real parts: the records from an authoritative DNS server on
//! loopback, the policies from a local HTTPS server whose certificates a test CA issued
//! (`--https-ca`). The scenarios of Snawoot/postfix-mta-sts-resolver's test suite, each held
//! to that resolver's verdict, and migration-shaped domains with real TLDs.

mod support;

use mailshift::dns::{DnsConfig, Resolver};
use mailshift::domain::{DomainName, DomainRequest};
use mailshift::engine::{check_domain, CheckOptions, DomainReport};
use mailshift::fetch::MTA_STS_PATH;
use mailshift::finding::Severity;
use mailshift::web::{read_ca_files, WebConfig};
use support::dns_server::TestDnsServer;
use support::https_server::{Cert, Route, TestHttpsServer};
use support::{fixtures, mailshift, run_json};

struct Lab {
    dns: TestDnsServer,
    https: TestHttpsServer,
    _dir: tempfile::TempDir,
}

fn corpus() -> std::path::PathBuf {
    fixtures().join("mta-sts/snawoot-postfix-mta-sts-resolver")
}

fn scenarios() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(corpus().join("scenarios.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["scenarios"].as_array().unwrap().clone()
}

/// The DNS server with the MTA-STS zones, and an HTTPS server with every scenario's policy.
fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let mut https = TestHttpsServer::builder();
    for s in scenarios() {
        let Some(status) = s["http_status"].as_u64() else {
            continue;
        };
        let domain = s["domain"].as_str().unwrap().trim_matches('.');
        let body = std::fs::read(corpus().join(s["policy"].as_str().unwrap())).unwrap();
        let tls = s["tls"].as_str().unwrap_or_default();
        let cert = if tls.contains("untrusted") {
            Cert::Untrusted
        } else if tls.contains("mismatch") {
            Cert::WrongName
        } else {
            Cert::Good
        };
        let route = Route {
            status: status as u16,
            content_type: s["content_type"].as_str().map(str::to_string),
            location: None,
            body,
            chunked: s["transfer"].as_str() == Some("chunked"),
        };
        https = https.route(&format!("mta-sts.{domain}"), MTA_STS_PATH, cert, route);
    }
    let moved = "version: STSv1\r\nmode: enforce\r\nmx: aspmx.l.google.com\r\nmx: *.aspmx.l.google.com\r\nmax_age: 1209600\r\n";
    let fjell = "version: STSv1\nmode: enforce\nmx: aspmx.l.google.com\nmx: *.aspmx.l.google.com\nmax_age: 3600\n";
    https = https
        .route(
            "mta-sts.nordhavn-outfitters.dk",
            MTA_STS_PATH,
            Cert::Good,
            Route::ok("text/plain; charset=utf-8", moved),
        )
        .route(
            "mta-sts.fjellbakeri.no",
            MTA_STS_PATH,
            Cert::Good,
            Route::ok("text/plain", fjell),
        )
        .route(
            "mta-sts.gammel.fjellbakeri.no",
            MTA_STS_PATH,
            Cert::Good,
            Route {
                status: 301,
                content_type: Some("text/html".into()),
                location: Some("https://www.fjellbakeri.no/".into()),
                body: b"moved".to_vec(),
                chunked: false,
            },
        );
    let https = https.start(dir.path());
    let dns = TestDnsServer::builder()
        .zone_dir(fixtures().join("zones-mta-sts"))
        .start();
    Lab {
        dns,
        https,
        _dir: dir,
    }
}

impl Lab {
    fn check(&self, domains: &[&str]) -> Vec<DomainReport> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let resolver = Resolver::new(&DnsConfig {
                nameservers: vec![self.dns.addr()],
                web: WebConfig {
                    ca_certs: read_ca_files(&[self.https.ca_file().to_path_buf()]).unwrap(),
                    port: self.https.port(),
                    ..WebConfig::default()
                },
                ..DnsConfig::default()
            })
            .unwrap();
            let mut reports = Vec::new();
            for domain in domains {
                let request = DomainRequest {
                    domain: DomainName::parse(domain).unwrap(),
                    selectors: vec![],
                };
                reports.push(check_domain(&resolver, &request, &CheckOptions::default()).await);
            }
            reports
        })
    }
}

fn family<'a>(report: &'a DomainReport, prefix: &str) -> Vec<(&'a str, Severity)> {
    report
        .findings
        .iter()
        .filter(|f| f.id.starts_with(prefix))
        .map(|f| (f.id.as_str(), f.severity))
        .collect()
}

/// Each scenario, held to the upstream resolver's verdict (VALID: a policy senders apply;
/// NONE: no policy; FETCH_ERROR: a policy announced but unusable), and to the finding that
/// says why.
#[test]
fn the_resolver_test_suite_scenarios_get_its_verdicts_and_say_why() {
    let lab = lab();
    let mut checked = 0;
    for s in scenarios() {
        let queried = s["domain"].as_str().unwrap();
        let expected = s["expected"].as_str().unwrap();
        let Ok(name) = DomainName::parse(queried) else {
            // A malformed name (`.good.loc`) is never looked up: no policy, as upstream.
            assert_eq!(expected, "NONE", "{queried}");
            continue;
        };
        let report = lab.check(&[name.as_str()]).remove(0);
        let sts = family(&report, "mta-sts.");
        let failed: Vec<&str> = sts
            .iter()
            .filter(|(_, s)| *s == Severity::Fail)
            .map(|(id, _)| *id)
            .collect();
        // A policy senders apply: fetched and valid, whatever else is worth saying about it.
        let applies = failed.is_empty()
            && sts.iter().any(|(id, _)| {
                [
                    "mta-sts.ok",
                    "mta-sts.testing",
                    "mta-sts.mode-none",
                    "mta-sts.max-age-short",
                ]
                .contains(id)
            });
        match expected {
            "VALID" => assert!(applies && failed.is_empty(), "{queried}: {sts:?}"),
            "NONE" => assert!(
                !applies
                    && sts.iter().all(|(id, _)| {
                        ["mta-sts.absent", "mta-sts.record-syntax"].contains(id)
                    }),
                "{queried}: {sts:?}"
            ),
            "FETCH_ERROR" => assert!(!applies && !failed.is_empty(), "{queried}: {sts:?}"),
            other => panic!("unknown verdict {other}"),
        }
        let why = match name.as_str() {
            "bad-record1.loc" | "bad-record3.loc" => Some("mta-sts.record-syntax"),
            "bad-record2.loc" | "no-record.loc" | "no-data.loc" => Some("mta-sts.absent"),
            "bad-policy1.loc" | "bad-policy2.loc" | "bad-policy5.loc" | "bad-policy6.loc"
            | "bad-policy7.loc" | "bad-policy8.loc" => Some("mta-sts.policy-syntax"),
            "bad-policy3.loc" => Some("mta-sts.policy-content-type"),
            "bad-policy4.loc" => Some("mta-sts.policy-http"),
            "static-overlength.loc" | "chunked-overlength.loc" => Some("mta-sts.policy-size"),
            "bad-cert1.loc" | "bad-cert2.loc" => Some("mta-sts.policy-certificate"),
            "testing.loc" => Some("mta-sts.testing"),
            "valid-none.loc" => Some("mta-sts.mode-none"),
            "good.loc" => Some("mta-sts.ok"),
            "fast-expire.loc" => Some("mta-sts.max-age-short"),
            _ => None,
        };
        if let Some(why) = why {
            assert!(
                sts.iter().any(|(id, _)| *id == why),
                "{queried}: {why} expected in {sts:?}"
            );
        }
        checked += 1;
    }
    // 24 scenarios, two of them malformed names that are never looked up.
    assert_eq!(checked, 22);
    // A record senders ignore is replaced, not joined by a second one.
    let ignored = lab.check(&["bad-record1.loc"]).remove(0);
    let fix = ignored
        .findings
        .iter()
        .find(|f| f.id == "mta-sts.record-syntax")
        .and_then(|f| f.fix.clone())
        .unwrap();
    assert_eq!(fix.records.len(), 1);
    assert_eq!(fix.records[0].name, "_mta-sts.bad-record1.loc");
    assert_eq!(
        fix.records[0].old.as_deref(),
        Some("id=20180907T090909; v=STSv1;")
    );
    assert!(fix.records[0].value.starts_with("v=STSv1; id="));
    // The certificate findings name the fault.
    let certs = lab.check(&["bad-cert1.loc", "bad-cert2.loc"]);
    let message = |r: &DomainReport| {
        r.findings
            .iter()
            .find(|f| f.id == "mta-sts.policy-certificate")
            .map(|f| f.message.clone())
            .unwrap_or_default()
    };
    assert!(message(&certs[0]).contains("not issued by a trusted certificate authority"));
    assert!(message(&certs[1]).contains("not issued for this host name"));
    // good.loc's policy is valid and covers mail.loc, in enforce mode.
    let good = lab.check(&["good.loc"]).remove(0);
    let ok = good.findings.iter().find(|f| f.id == "mta-sts.ok").unwrap();
    assert!(ok.message.contains("mode enforce"), "{}", ok.message);
    assert!(ok.message.contains("mail.loc"), "{}", ok.message);
}

/// The migration failure MTA-STS exists to catch, and the others around it.
#[test]
fn an_enforced_policy_left_behind_by_an_mx_move_fails_with_the_lines_to_add() {
    let lab = lab();
    let reports = lab.check(&[
        "nordhavn-outfitters.dk",
        "fjellbakeri.no",
        "butikk.fjellbakeri.no",
        "gammel.fjellbakeri.no",
    ]);
    let moved = &reports[0];
    let mismatch = moved
        .findings
        .iter()
        .find(|f| f.id == "mta-sts.mx-mismatch")
        .unwrap_or_else(|| panic!("{:#?}", moved.findings));
    assert_eq!(mismatch.severity, Severity::Fail);
    assert!(mismatch
        .message
        .contains("nordhavnoutfitters-dk02c.mail.protection.outlook.com"));
    let fix = mismatch.fix_text().unwrap();
    assert!(
        fix.contains("`mx: nordhavnoutfitters-dk02c.mail.protection.outlook.com`"),
        "{fix}"
    );
    assert!(fix.contains("change the id"), "{fix}");
    // With MTA-STS and no TLS-RPT, nobody hears of the failures: a warning.
    assert_eq!(
        family(moved, "tls-rpt."),
        [("tls-rpt.absent", Severity::Warn)]
    );

    let fjell = &reports[1];
    assert_eq!(
        family(fjell, "mta-sts."),
        [("mta-sts.max-age-short", Severity::Warn)],
        "the policy covers all three Google MX hosts; only its max_age is short"
    );
    assert_eq!(family(fjell, "tls-rpt."), [("tls-rpt.ok", Severity::Pass)]);

    let shop = &reports[2];
    assert_eq!(
        family(shop, "mta-sts."),
        [("mta-sts.policy-host", Severity::Fail)]
    );
    let rpt = family(shop, "tls-rpt.");
    assert_eq!(rpt, [("tls-rpt.syntax", Severity::Fail)]);

    let old = &reports[3];
    let redirect = old
        .findings
        .iter()
        .find(|f| f.id == "mta-sts.policy-redirect")
        .unwrap();
    assert!(redirect.message.contains("https://www.fjellbakeri.no/"));
}

/// The command line: `--https-ca` and the port reach the fetch, the findings reach JSON, and
/// a CA file that holds no certificate is a bad invocation.
#[test]
fn check_fetches_the_policy_with_the_given_ca() {
    let lab = lab();
    let report = run_json(
        mailshift()
            .args(["check", "fjellbakeri.no", "--format", "json"])
            .args(["--nameserver", &lab.dns.nameserver_arg()])
            .arg("--https-ca")
            .arg(lab.https.ca_file())
            .args(["--https-port", &lab.https.port().to_string()]),
        1,
    );
    let ids: Vec<&str> = report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(ids.contains(&"mta-sts.max-age-short"), "{ids:?}");
    assert!(ids.contains(&"tls-rpt.ok"), "{ids:?}");
    // Without the test CA the system's roots do not know it: the certificate is refused.
    let report = run_json(
        mailshift()
            .args(["check", "fjellbakeri.no", "--format", "json"])
            .args(["--nameserver", &lab.dns.nameserver_arg()])
            .args(["--https-port", &lab.https.port().to_string()]),
        1,
    );
    let refused = report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == "mta-sts.policy-certificate");
    assert!(refused, "{report:#}");
    let empty = lab._dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let out = mailshift()
        .args(["check", "fjellbakeri.no", "--https-ca"])
        .arg(&empty)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}

/// An inbound move: fjellbakeri.no still receives at Google with an enforced policy naming
/// Google's hosts, and is moving to Microsoft 365. The policy must cover Exchange Online's
/// host before MX changes; after MX changed, `mta-sts.mx-mismatch` judges instead.
#[test]
fn the_policy_must_cover_the_new_providers_mx_before_the_move() {
    let lab = lab();
    let run = |domain: &str, provider: &str| {
        run_json(
            mailshift()
                .args(["check", domain, "--format", "json", "--provider", provider])
                .args(["--nameserver", &lab.dns.nameserver_arg()])
                .arg("--https-ca")
                .arg(lab.https.ca_file())
                .args(["--https-port", &lab.https.port().to_string()]),
            1,
        )
    };
    let find = |report: &serde_json::Value, id: &str| -> Option<serde_json::Value> {
        report["domains"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .cloned()
    };
    let report = run("fjellbakeri.no", "microsoft-365");
    let finding = find(&report, "coexist.mta-sts-new-mx").unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(finding["severity"], "fail");
    assert_eq!(
        finding["message"],
        "The MTA-STS policy of fjellbakeri.no (enforce) does not cover Microsoft 365 (Exchange Online)'s MX host fjellbakeri-no.mail.protection.outlook.com: the moment MX points there, every sender that honours the policy refuses to deliver."
    );
    let fix = finding["fix"]["text"].as_str().unwrap();
    assert!(
        fix.contains("mx: fjellbakeri-no.mail.protection.outlook.com\nthen change the id in _mta-sts.fjellbakeri.no")
            && fix.contains("max_age (3600 s)"),
        "{fix}"
    );
    // Staying on Google: the policy already covers it, nothing to say.
    let report = run("fjellbakeri.no", "google-workspace");
    assert!(
        find(&report, "coexist.mta-sts-new-mx").is_none(),
        "{report:#}"
    );
    // Already moved (MX at Exchange Online): mta-sts.mx-mismatch speaks, not this rule.
    let report = run("nordhavn-outfitters.dk", "microsoft-365");
    assert!(
        find(&report, "coexist.mta-sts-new-mx").is_none(),
        "{report:#}"
    );
    assert!(find(&report, "mta-sts.mx-mismatch").is_some(), "{report:#}");
}

/// `check ARGS --format json` against `dns` and the lab's HTTPS server: the report, its first
/// domain's finding ids, and the names the server was asked about.
fn check_json(
    lab: &Lab,
    dns: &TestDnsServer,
    args: &[&str],
) -> (serde_json::Value, Vec<String>, Vec<String>) {
    dns.clear_queries();
    let out = mailshift()
        .arg("check")
        .args(args)
        .args(["--format", "json"])
        .args(["--nameserver", &dns.nameserver_arg()])
        .arg("--https-ca")
        .arg(lab.https.ca_file())
        .args(["--https-port", &lab.https.port().to_string()])
        .output()
        .unwrap();
    let report = support::json(&out.stdout);
    let ids: Vec<String> = report["domains"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    let asked: Vec<String> = dns.queries().into_iter().map(|(name, _)| name).collect();
    (report, ids, asked)
}

/// `check --skip`: a bulk run may leave MTA-STS, TLS-RPT and BIMI out. None of their questions
/// reaches the server (nor the policy fetch), none of their findings is reported, and the
/// summary and the table say what was left out, so silence is not read as "all clear". A
/// family it does not know is a bad invocation.
#[test]
fn check_skip_leaves_the_families_out_and_says_so() {
    let lab = lab();
    let dns = TestDnsServer::builder()
        .zone_dir(fixtures().join("zones-mta-sts"))
        .log_queries(true)
        .start();
    let run = |extra: &[&str]| check_json(&lab, &dns, &[&["fjellbakeri.no"], extra].concat());
    let in_families = |id: &str| {
        ["mta-sts.", "tls-rpt.", "bimi."]
            .iter()
            .any(|p| id.starts_with(p))
    };
    let family_names = |name: &str| {
        ["_mta-sts.", "mta-sts.", "_smtp._tls.", "default._bimi."]
            .iter()
            .any(|p| name.starts_with(p))
    };

    let (full, ids, asked) = run(&[]);
    for prefix in ["mta-sts.", "tls-rpt.", "bimi."] {
        assert!(
            ids.iter().any(|id| id.starts_with(prefix)),
            "{prefix}: {ids:?}"
        );
    }
    assert!(asked.iter().any(|n| family_names(n)), "{asked:?}");
    assert!(
        full["summary"].get("skipped").is_none(),
        "{:#}",
        full["summary"]
    );

    let (skipped, ids, asked) = run(&["--skip", "mta-sts,tls-rpt", "--skip", "bimi"]);
    assert!(!ids.iter().any(|id| in_families(id)), "{ids:?}");
    assert!(ids.iter().any(|id| id.starts_with("spf.")), "{ids:?}");
    assert!(!asked.iter().any(|n| family_names(n)), "{asked:?}");
    assert_eq!(
        skipped["summary"]["skipped"],
        serde_json::json!(["mta-sts", "tls-rpt", "bimi"])
    );
    let saved = full["summary"]["queries"].as_u64().unwrap()
        - skipped["summary"]["queries"].as_u64().unwrap();
    assert!(saved >= 3, "{saved} fewer questions");

    // One family only: the others are still judged.
    let (_, ids, _) = run(&["--skip", "bimi"]);
    assert!(!ids.iter().any(|id| id.starts_with("bimi.")), "{ids:?}");
    assert!(ids.iter().any(|id| id.starts_with("mta-sts.")), "{ids:?}");
    assert!(ids.iter().any(|id| id.starts_with("tls-rpt.")), "{ids:?}");

    let out = mailshift()
        .args([
            "check",
            "fjellbakeri.no",
            "--format",
            "table",
            "--color",
            "never",
        ])
        .args(["--nameserver", &dns.nameserver_arg()])
        .args(["--skip", "bimi,tls-rpt,mta-sts"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("Not checked: mta-sts, tls-rpt, bimi (left out with --skip"),
        "{table}"
    );

    let out = mailshift()
        .args(["check", "fjellbakeri.no", "--skip", "dkim"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("mta-sts") && stderr.contains("bimi"),
        "{stderr}"
    );
}

/// A domains file is a bulk audit: SPF, DKIM, DMARC and MX for every line, and MTA-STS,
/// TLS-RPT and BIMI only when `--with` asks for them, so a thousand domains pay three
/// questions each only when wanted. The same domain named on the command line gets every
/// family. Naming a family to both `--with` and `--skip` is a bad invocation.
#[test]
fn a_domains_file_checks_the_inbound_and_brand_families_only_with_with() {
    let lab = lab();
    let dns = TestDnsServer::builder()
        .zone_dir(fixtures().join("zones-mta-sts"))
        .log_queries(true)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("domains.txt");
    std::fs::write(&list, "# portfolio\nfjellbakeri.no\n").unwrap();
    let run = |source: &[&str], extra: &[&str]| {
        let (report, ids, asked) = check_json(&lab, &dns, &[source, extra].concat());
        (report["summary"].clone(), ids, asked)
    };
    let file = ["--domains-file", list.to_str().unwrap()];
    let has = |ids: &[String], prefix: &str| ids.iter().any(|id| id.starts_with(prefix));
    let asked_about = |asked: &[String], prefix: &str| asked.iter().any(|n| n.starts_with(prefix));

    let (summary, ids, asked) = run(&file, &[]);
    assert_eq!(
        summary["skipped"],
        serde_json::json!(["mta-sts", "tls-rpt", "bimi"]),
        "{summary:#}"
    );
    assert!(has(&ids, "spf.") && has(&ids, "dmarc."), "{ids:?}");
    for prefix in ["mta-sts.", "tls-rpt.", "bimi."] {
        assert!(!has(&ids, prefix), "{prefix}: {ids:?}");
    }
    for prefix in ["_mta-sts.", "_smtp._tls.", "default._bimi."] {
        assert!(!asked_about(&asked, prefix), "{prefix}: {asked:?}");
    }
    let bulk_questions = summary["queries"].as_u64().unwrap();

    let (summary, ids, asked) = run(&file, &["--with", "mta-sts", "--with", "bimi"]);
    assert_eq!(summary["skipped"], serde_json::json!(["tls-rpt"]));
    assert!(has(&ids, "mta-sts.") && has(&ids, "bimi."), "{ids:?}");
    assert!(!has(&ids, "tls-rpt."), "{ids:?}");
    assert!(asked_about(&asked, "_mta-sts.") && !asked_about(&asked, "_smtp._tls."));

    let (summary, ids, _) = run(&file, &["--with", "mta-sts,tls-rpt,bimi"]);
    assert!(summary.get("skipped").is_none(), "{summary:#}");
    for prefix in ["mta-sts.", "tls-rpt.", "bimi."] {
        assert!(has(&ids, prefix), "{prefix}: {ids:?}");
    }
    assert!(summary["queries"].as_u64().unwrap() >= bulk_questions + 3);

    // Named on the command line: every family, and `--with` changes nothing.
    let (summary, named_ids, _) = run(&["fjellbakeri.no"], &[]);
    assert!(summary.get("skipped").is_none(), "{summary:#}");
    assert_eq!(named_ids, ids);

    let out = mailshift()
        .args([
            "check",
            "fjellbakeri.no",
            "--with",
            "bimi",
            "--skip",
            "bimi",
        ])
        .args(["--nameserver", &dns.nameserver_arg()])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("bimi") && stderr.contains("--with") && stderr.contains("--skip"),
        "{stderr}"
    );
}
