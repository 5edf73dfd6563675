//! BIMI through the real parts: the assertion records from the test DNS server on loopback
//! (`fixtures/zones-bimi/`), the logos (`fixtures/bimi/`) and mark certificates (a VMC chain
//! made at test time under a test mark root, given with `--bimi-ca`) from the local HTTPS
//! server. One domain per way BIMI stops showing a logo, a subdomain that inherits its record
//! through the DMARC policy domain, and the embedded roots refusing the test root.

mod support;

use support::dns_server::TestDnsServer;
use support::https_server::{Cert, Route, TestHttpsServer};
use support::vmc_certs::{MarkPki, MarkSpec};
use support::{fixtures, mailshift, run_json};

const DOMAINS: [&str; 7] = [
    "lindqvist-kaffe.se",
    "news.lindqvist-kaffe.se",
    "nordlys-sko.no",
    "bryggan.fi",
    "halvmane.dk",
    "ekorre.fi",
    "hvalross.no",
];

struct Lab {
    dns: TestDnsServer,
    https: TestHttpsServer,
    dir: tempfile::TempDir,
}

fn logo(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("bimi").join(name)).unwrap()
}

fn mark(domain: &str, svg: &[u8], not_after: (i32, u8, u8)) -> MarkPki {
    let mut spec = MarkSpec::new(svg);
    spec.dns_names = vec![domain.to_string()];
    spec.not_before = (2025, 1, 1);
    spec.not_after = not_after;
    MarkPki::build(&spec)
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let valid = logo("valid-tiny-ps.svg");
    // The same brand mark in another colour: a valid logo, but not the certificate's.
    let recoloured = String::from_utf8(valid.clone())
        .unwrap()
        .replace("#1f5f4a", "#7a1f2b")
        .into_bytes();
    assert_ne!(
        recoloured, valid,
        "the fixture logo changed: update the colour"
    );
    let lindqvist = mark("lindqvist-kaffe.se", &valid, (2035, 1, 1));
    let bryggan = mark("bryggan.fi", &valid, (2026, 6, 30));
    let halvmane = mark("halvmane.dk", &valid, (2035, 1, 1));
    // Each chain has its own root: the test trusts all three.
    let roots = [&lindqvist, &bryggan, &halvmane]
        .iter()
        .map(|p| p.root_pem.clone())
        .collect::<String>();
    std::fs::write(dir.path().join("mark-roots.pem"), roots).unwrap();
    let svg = |body: Vec<u8>| Route::ok("image/svg+xml", body);
    let pem = |p: &MarkPki| Route::ok("application/x-pem-file", p.chain_pem.clone());
    let https = TestHttpsServer::builder()
        .route(
            "bimi.lindqvist-kaffe.se",
            "/logo.svg",
            Cert::Good,
            svg(valid.clone()),
        )
        .route(
            "bimi.lindqvist-kaffe.se",
            "/vmc.pem",
            Cert::Good,
            pem(&lindqvist),
        )
        .route(
            "bimi.nordlys-sko.no",
            "/logo.svg",
            Cert::Good,
            svg(valid.clone()),
        )
        .route(
            "bimi.bryggan.fi",
            "/logo.svg",
            Cert::Good,
            svg(logo("script.svg")),
        )
        .route("bimi.bryggan.fi", "/vmc.pem", Cert::Good, pem(&bryggan))
        .route("bimi.halvmane.dk", "/logo.svg", Cert::Good, svg(recoloured))
        .route("bimi.halvmane.dk", "/vmc.pem", Cert::Good, pem(&halvmane))
        .start(dir.path());
    let dns = TestDnsServer::builder()
        .zone_dir(fixtures().join("zones-bimi"))
        .start();
    Lab { dns, https, dir }
}

fn check(lab: &Lab, trust_test_roots: bool) -> serde_json::Value {
    let mut cmd = mailshift();
    cmd.arg("check")
        .args(DOMAINS)
        .args(["--selector", "s1", "--format", "json", "--timeout", "2"])
        .args(["--nameserver", &lab.dns.nameserver_arg()])
        .arg("--https-ca")
        .arg(lab.https.ca_file())
        .args(["--https-port", &lab.https.port().to_string()]);
    if trust_test_roots {
        cmd.arg("--bimi-ca")
            .arg(lab.dir.path().join("mark-roots.pem"));
    }
    run_json(&mut cmd, 1)
}

/// Each domain's bimi.* findings, as (id, severity, message).
fn bimi(report: &serde_json::Value, domain: &str) -> Vec<(String, String, String)> {
    let entry = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not in the report"));
    entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("bimi."))
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ids(findings: &[(String, String, String)]) -> Vec<String> {
    findings
        .iter()
        .map(|(id, severity, _)| format!("{id}:{severity}"))
        .collect()
}

#[test]
fn every_way_a_logo_stops_showing() {
    let lab = lab();
    let report = check(&lab, true);

    let lindqvist = bimi(&report, "lindqvist-kaffe.se");
    assert_eq!(ids(&lindqvist), ["bimi.ok:pass"], "{lindqvist:#?}");
    assert!(
        lindqvist[0].2.contains("a VMC issued by")
            && lindqvist[0].2.contains("Mailshift Test Mark Issuing CA")
            && lindqvist[0].2.contains("valid until 2035-01-01"),
        "{}",
        lindqvist[0].2
    );

    // The subdomain has no record of its own: the policy domain's applies, and passes.
    let news = bimi(&report, "news.lindqvist-kaffe.se");
    assert_eq!(ids(&news), ["bimi.ok:pass"], "{news:#?}");
    assert!(news[0].2.starts_with(
        "news.lindqvist-kaffe.se (through its policy domain lindqvist-kaffe.se) publishes BIMI at default._bimi.lindqvist-kaffe.se"
    ));

    let nordlys = bimi(&report, "nordlys-sko.no");
    assert_eq!(
        ids(&nordlys),
        ["bimi.dmarc:fail", "bimi.no-certificate:warn"],
        "{nordlys:#?}"
    );
    assert!(
        nordlys[0].2.contains("its policy is p=none"),
        "{}",
        nordlys[0].2
    );

    let bryggan = bimi(&report, "bryggan.fi");
    assert_eq!(
        ids(&bryggan),
        ["bimi.logo-profile:fail", "bimi.certificate:fail"],
        "{bryggan:#?}"
    );
    assert!(bryggan[0].2.contains("script"), "{}", bryggan[0].2);
    assert!(
        bryggan[1].2.contains("expired on 2026-06-30"),
        "{}",
        bryggan[1].2
    );

    let halvmane = bimi(&report, "halvmane.dk");
    assert_eq!(ids(&halvmane), ["bimi.logo-mismatch:fail"], "{halvmane:#?}");

    // Two records: receivers use neither. The HTTPS server has no route for either logo, so
    // a fetch would add a finding of its own.
    let hvalross = bimi(&report, "hvalross.no");
    assert_eq!(ids(&hvalross), ["bimi.multiple:fail"], "{hvalross:#?}");
    assert!(
        hvalross[0]
            .2
            .starts_with("default._bimi.hvalross.no holds 2 BIMI records"),
        "{}",
        hvalross[0].2
    );

    let ekorre = bimi(&report, "ekorre.fi");
    assert_eq!(
        ids(&ekorre),
        ["bimi.syntax:fail", "bimi.dmarc:fail"],
        "{ekorre:#?}"
    );
    assert!(ekorre[1].2.contains("pct=50"), "{}", ekorre[1].2);
}

#[test]
fn a_certificate_from_an_unknown_authority_is_refused() {
    let lab = lab();
    // Without --bimi-ca only the embedded DigiCert and Entrust roots are trusted.
    let report = check(&lab, false);
    let lindqvist = bimi(&report, "lindqvist-kaffe.se");
    assert_eq!(ids(&lindqvist), ["bimi.certificate:fail"], "{lindqvist:#?}");
    assert!(
        lindqvist[0]
            .2
            .contains("does not lead to a trusted mark certificate authority"),
        "{}",
        lindqvist[0].2
    );
}

#[test]
fn a_bimi_record_lost_at_the_cutover_fails_the_migration_checks() {
    let dns = TestDnsServer::builder()
        .zone_dir(fixtures().join("zones-bimi"))
        .zone_dir(fixtures().join("zones"))
        .start();
    let report = run_json(
        mailshift()
            .arg("gate")
            .arg(fixtures().join("plans/sjobod.toml"))
            .args(["--stage", "cutover", "--no-record", "--format", "json"])
            .args(["--timeout", "2", "--nameserver", &dns.nameserver_arg()]),
        1,
    );
    let requirement = &report["requirements"][0];
    assert_eq!(requirement["requirement"], "coexistence");
    let lost = requirement["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "coexist.bimi-lost")
        .unwrap_or_else(|| panic!("{requirement:#}"));
    assert_eq!(lost["severity"], "fail");
    assert!(
        lost["message"]
            .as_str()
            .unwrap()
            .contains("\"v=BIMI1; l=https://bimi.sjobod.se/logo.svg; a=https://bimi.sjobod.se/vmc.pem\"), and publishes none now"),
        "{lost:#}"
    );
    let change = &lost["fix"]["records"][0];
    assert_eq!(change["name"], "default._bimi.sjobod.se");
    assert_eq!(
        change["value"],
        "v=BIMI1; l=https://bimi.sjobod.se/logo.svg; a=https://bimi.sjobod.se/vmc.pem"
    );
}
