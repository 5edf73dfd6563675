//! DANE through every real part at once: zones signed with ldns when the test runs (the TLSA
//! record written for the certificate a local STARTTLS server made a moment before), the signed
//! zones served by the test DNS server, and `check --dnssec --probe-smtp` matching the chain the
//! MX host presents against its TLSA records. A certificate changed without its TLSA record is
//! the classic way DANE stops mail: senders that do DANE refuse to deliver.

mod support;

use mailshift::records::tlsa::dane_ee_record;
use std::net::Ipv4Addr;
use support::dns_server::TestDnsServer;
use support::signed_zones::sign_and_serve;
use support::smtp_server::{Behaviour, Cert, TestSmtpServer};
use support::{fixtures, mailshift};

const MX1: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 51);
const MX2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 52);

/// The fixture zones with post.bryggeri.se's MX hosts on loopback and mx1's TLSA record set to
/// `tlsa`, signed into a new directory; a DNS server for them.
fn signed(tlsa: &str) -> (tempfile::TempDir, TestDnsServer) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    std::fs::create_dir(&source).unwrap();
    for entry in std::fs::read_dir(fixtures().join("zones-dnssec")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "zone") {
            std::fs::copy(&path, source.join(path.file_name().unwrap())).unwrap();
        }
    }
    let post = source.join("post.bryggeri.se.zone");
    let text = std::fs::read_to_string(&post).unwrap();
    assert!(
        text.contains("_25._tcp.mx1 IN TLSA 3 1 1 "),
        "the fixture changed"
    );
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("_25._tcp.mx1 ") {
                format!("_25._tcp.mx1 IN TLSA {tlsa}")
            } else if line.starts_with("mx1 ") {
                format!("mx1         IN A    {MX1}")
            } else if line.starts_with("mx2 ") {
                format!("mx2         IN A    {MX2}")
            } else {
                line.to_string()
            }
        })
        .map(|line| line + "\n")
        .collect();
    std::fs::write(&post, text).unwrap();
    let server = sign_and_serve(&dir.path().join("signed"), Some(&source));
    (dir, server)
}

fn check(
    dns: &TestDnsServer,
    smtp: &TestSmtpServer,
    anchor: &std::path::Path,
) -> serde_json::Value {
    let output = mailshift()
        .args([
            "check",
            "post.bryggeri.se",
            "--format",
            "json",
            "--selector",
            "s1",
        ])
        .args(["--dnssec", "--trust-anchor", anchor.to_str().unwrap()])
        .args(["--probe-smtp", "--smtp-port", &smtp.port().to_string()])
        .arg("--https-ca")
        .arg(smtp.ca_file())
        .args(["--timeout", "2", "--nameserver", &dns.nameserver_arg()])
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    support::json(&output.stdout)
}

/// The gate of the plan's seed stage, which requires `dnssec` and `smtp`.
fn gate(
    dns: &TestDnsServer,
    smtp: &TestSmtpServer,
    anchor: &std::path::Path,
    code: i32,
) -> serde_json::Value {
    support::run_json(
        mailshift()
            .arg("gate")
            .arg(fixtures().join("plans/bryggeri.toml"))
            .args(["--stage", "seed", "--no-record", "--format", "json"])
            .args(["--trust-anchor", anchor.to_str().unwrap()])
            .args(["--smtp-port", &smtp.port().to_string()])
            .arg("--https-ca")
            .arg(smtp.ca_file())
            .args(["--timeout", "2", "--nameserver", &dns.nameserver_arg()]),
        code,
    )
}

fn smtp_findings(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("smtp."))
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_mx_certificate_must_match_its_secure_tlsa_record() {
    let certs = tempfile::tempdir().unwrap();
    let smtp = TestSmtpServer::builder()
        .host(MX1, "mx1.post.bryggeri.se", Behaviour::Starttls(Cert::Good))
        .host(MX2, "mx2.post.bryggeri.se", Behaviour::Starttls(Cert::Good))
        .start(certs.path());
    let current = dane_ee_record(smtp.leaf_der(MX1).unwrap()).unwrap();

    // The TLSA record names the certificate mx1 serves: DANE and the probe agree.
    let (dir, dns) = signed(&current);
    let report = check(&dns, &smtp, &dir.path().join("signed/anchor.ds"));
    let found = smtp_findings(&report);
    assert_eq!(
        found
            .iter()
            .map(|f| format!("{}:{}", f.0, f.1))
            .collect::<Vec<_>>(),
        ["smtp.ok:pass"],
        "{report:#}"
    );
    let ids: Vec<&str> = report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"dnssec.secure") && ids.contains(&"dane.ok"),
        "{ids:?}"
    );
    let opened = gate(&dns, &smtp, &dir.path().join("signed/anchor.ds"), 0);
    assert_eq!(opened["decision"], "open", "{opened:#}");
    let statuses: Vec<String> = opened["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["requirement"].as_str().unwrap(),
                r["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(statuses, ["dnssec:passed", "smtp:passed"]);

    // The certificate was renewed with a new key, the TLSA record was not: a stale record.
    let stale = "3 1 1 8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1";
    assert_ne!(current, stale);
    let (dir, dns) = signed(stale);
    let report = check(&dns, &smtp, &dir.path().join("signed/anchor.ds"));
    let found = smtp_findings(&report);
    let mismatch: Vec<&(String, String, String)> = found
        .iter()
        .filter(|f| f.0 == "smtp.dane-mismatch")
        .collect();
    assert_eq!(mismatch.len(), 1, "{found:#?}");
    assert_eq!(mismatch[0].1, "fail");
    assert!(
        mismatch[0].2.starts_with(&format!(
            "The certificate chain of mx1.post.bryggeri.se ({MX1}) matches none of the 1 usable TLSA record at _25._tcp.mx1.post.bryggeri.se"
        )) && mismatch[0].2.contains(&format!("IN TLSA {current}`")),
        "{}",
        mismatch[0].2
    );
    // The gate stays closed on the stale record, and says why.
    let closed = gate(&dns, &smtp, &dir.path().join("signed/anchor.ds"), 1);
    assert_eq!(closed["decision"], "closed", "{closed:#}");
    let smtp_requirement = &closed["requirements"][1];
    assert_eq!(smtp_requirement["status"], "failed");
    assert!(smtp_requirement["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == "smtp.dane-mismatch"));
    // mx2's TLSA record is PKIX-EE (unusable for SMTP): it is judged by its certificate, which
    // the test CA vouches for.
    assert!(
        !found
            .iter()
            .any(|f| f.2.contains("mx2.post.bryggeri.se") && f.1 == "fail"),
        "{found:#?}"
    );
}
