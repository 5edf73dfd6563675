//! DNSSEC and DANE through the real parts: the zones of `fixtures/zones-dnssec` signed when the
//! test runs (`sign.sh`: ldns-keygen and ldns-signzone from Debian's ldnsutils, which
//! `.ci/run` installs), served by the in-process DNS server from their RFC 3597 form (DO bit
//! honoured, NSEC/NSEC3 proofs in negative answers, DS questions answered by the parent), and
//! `mailshift check --dnssec --trust-anchor anchor.ds` validating from `bryggeri.se` down.

mod support;

use std::path::PathBuf;
use support::dns_server::TestDnsServer;
use support::signed_zones::sign_and_serve;
use support::{fixtures, json, mailshift};

/// The zones signed into a temporary directory, and a server for them.
struct Signed {
    dir: tempfile::TempDir,
    server: TestDnsServer,
}

impl Signed {
    fn new() -> Signed {
        let dir = tempfile::tempdir().unwrap();
        Signed {
            server: sign_and_serve(dir.path(), None),
            dir,
        }
    }

    fn anchor(&self) -> PathBuf {
        self.dir.path().join("anchor.ds")
    }

    /// `check DOMAIN --dnssec` against the server, from the test anchor: the JSON report.
    fn check(&self, domain: &str) -> serde_json::Value {
        let anchor = self.anchor();
        self.run(&[
            domain,
            "--dnssec",
            "--trust-anchor",
            anchor.to_str().unwrap(),
        ])
    }

    fn run(&self, args: &[&str]) -> serde_json::Value {
        let output = mailshift()
            .arg("check")
            .args(args)
            .args(["--format", "json", "--timeout", "2", "--retries", "1"])
            .args(["--selector", "s1"])
            .args(["--nameserver", &self.server.nameserver_arg()])
            .output()
            .unwrap();
        let code = output.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "exit {code:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        json(&output.stdout)
    }
}

/// The findings whose id starts with `prefix`, as `(id, severity, message, evidence, fix)`.
fn findings(report: &serde_json::Value, prefix: &str) -> Vec<Finding> {
    report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with(prefix))
        .map(|f| Finding {
            id: f["id"].as_str().unwrap().to_string(),
            severity: f["severity"].as_str().unwrap().to_string(),
            message: f["message"].as_str().unwrap().to_string(),
            evidence: f["evidence"].as_str().unwrap_or_default().to_string(),
            fix: f["fix"]["text"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

#[derive(Debug)]
struct Finding {
    id: String,
    severity: String,
    message: String,
    evidence: String,
    fix: String,
}

fn ids(found: &[Finding]) -> Vec<String> {
    found
        .iter()
        .map(|f| format!("{}:{}", f.id, f.severity))
        .collect()
}

fn one<'a>(found: &'a [Finding], id: &str) -> &'a Finding {
    let matching: Vec<&Finding> = found.iter().filter(|f| f.id == id).collect();
    assert_eq!(matching.len(), 1, "one {id} in {found:#?}");
    matching[0]
}

#[test]
fn signed_domains_validate_from_the_anchor_down() {
    let zones = Signed::new();
    // ECDSA P-256 with NSEC, and Ed25519 with NSEC3.
    for domain in ["post.bryggeri.se", "lager.bryggeri.se"] {
        let report = zones.check(domain);
        let dnssec = findings(&report, "dnssec.");
        assert_eq!(
            ids(&dnssec),
            ["dnssec.secure:pass"],
            "{domain}: {dnssec:#?}"
        );
        let secure = &dnssec[0];
        assert!(
            secure.message.contains(&format!(
                "{domain} TXT, {domain} MX and _dmarc.{domain} TXT validate"
            )),
            "{}",
            secure.message
        );
        assert!(
            secure
                .evidence
                .contains(&format!("chain bryggeri.se → {domain}")),
            "{}",
            secure.evidence
        );
    }
    // The anchor in RFC 3597 generic form works the same.
    let generic = zones.dir.path().join("anchor.rfc3597");
    let report = zones.run(&[
        "lager.bryggeri.se",
        "--trust-anchor",
        generic.to_str().unwrap(),
    ]);
    assert_eq!(ids(&findings(&report, "dnssec.")), ["dnssec.secure:pass"]);
    // The questions went to the server with the DNSSEC types.
    let asked = zones.server.queries();
    for (name, rtype) in [
        ("bryggeri.se.", "DNSKEY"),
        ("post.bryggeri.se.", "DS"),
        ("post.bryggeri.se.", "DNSKEY"),
        ("_25._tcp.mx1.post.bryggeri.se.", "TLSA"),
    ] {
        assert!(
            asked.iter().any(|(n, t)| n == name && t == rtype),
            "{name} {rtype} not asked: {asked:?}"
        );
    }
}

#[test]
fn unsigned_delegations_are_info_naming_where_the_chain_stops() {
    let zones = Signed::new();
    for (domain, proof, expected) in [
        (
            "osignerad.bryggeri.se",
            "osignerad.bryggeri.se is unsigned: bryggeri.se proves it has no DS (NSEC)",
            &["dnssec.unsigned:info"][..],
        ),
        (
            "kall.lager.bryggeri.se",
            "kall.lager.bryggeri.se is unsigned: lager.bryggeri.se proves it has no DS (NSEC3)",
            // The DMARC policy it inherits is lager.bryggeri.se's, which is signed.
            &["dnssec.unsigned:info", "dnssec.secure:pass"][..],
        ),
    ] {
        let report = zones.check(domain);
        let dnssec = findings(&report, "dnssec.");
        assert_eq!(ids(&dnssec), expected, "{domain}: {dnssec:#?}");
        assert!(dnssec[0].message.contains(proof), "{}", dnssec[0].message);
        assert!(
            dnssec[0].fix.contains("publish its DS record"),
            "{}",
            dnssec[0].fix
        );
        if let Some(inherited) = dnssec.get(1) {
            assert!(
                inherited
                    .message
                    .starts_with("_dmarc.lager.bryggeri.se TXT validates"),
                "{}",
                inherited.message
            );
        }
    }
}

#[test]
fn bogus_zones_fail_naming_the_failing_link() {
    let zones = Signed::new();

    let report = zones.check("utgangen.bryggeri.se");
    let dnssec = findings(&report, "dnssec.");
    let bogus = one(&dnssec, "dnssec.bogus");
    assert_eq!(bogus.severity, "fail");
    assert!(
        bogus
            .message
            .contains("RRSIG over DNSKEY utgangen.bryggeri.se expired 20"),
        "{}",
        bogus.message
    );
    assert!(
        bogus
            .message
            .contains("the link to utgangen.bryggeri.se: its DNSKEY RRset"),
        "{}",
        bogus.message
    );
    assert!(
        bogus.fix.starts_with("Re-sign utgangen.bryggeri.se"),
        "{}",
        bogus.fix
    );
    assert!(!ids(&dnssec).iter().any(|i| i.starts_with("dnssec.secure")));

    let report = zones.check("fel-ds.bryggeri.se");
    let dnssec = findings(&report, "dnssec.");
    let bogus = one(&dnssec, "dnssec.bogus");
    assert!(
        bogus
            .message
            .contains("no DNSKEY of fel-ds.bryggeri.se matches DS key tag "),
        "{}",
        bogus.message
    );
    assert!(
        bogus
            .fix
            .contains("publish the DS of the zone's current key-signing key")
            && bogus.fix.contains("remove the stale DS"),
        "{}",
        bogus.fix
    );

    // A damaged signature takes down its RRset only: the MX records still validate.
    let report = zones.check("andrad.bryggeri.se");
    let dnssec = findings(&report, "dnssec.");
    let bogus = one(&dnssec, "dnssec.bogus");
    assert!(
        bogus.message.starts_with(
            "DNSSEC validation fails for andrad.bryggeri.se TXT: RRSIG over TXT \
             andrad.bryggeri.se by key tag "
        ) && bogus.message.contains("signature does not verify"),
        "{}",
        bogus.message
    );
    assert!(
        bogus
            .message
            .contains("the TXT RRset of andrad.bryggeri.se in andrad.bryggeri.se"),
        "{}",
        bogus.message
    );
    let secure = one(&dnssec, "dnssec.secure");
    assert!(
        secure.message.contains("andrad.bryggeri.se MX"),
        "{}",
        secure.message
    );
    assert_eq!(report["domains"][0]["status"], "fail");
}

#[test]
fn tlsa_records_of_the_mx_hosts() {
    let zones = Signed::new();

    // post: mx1 DANE-EE 3 1 1 (usable), mx2 PKIX-EE (usage 1: not for SMTP).
    let report = zones.check("post.bryggeri.se");
    let dane = findings(&report, "dane.");
    assert_eq!(ids(&dane), ["dane.usage:warn", "dane.ok:pass"], "{dane:#?}");
    let ok = one(&dane, "dane.ok");
    assert!(
        ok.evidence
            .starts_with("_25._tcp.mx1.post.bryggeri.se TLSA 3 1 1 8cb0fc6c"),
        "{}",
        ok.evidence
    );
    let usage = one(&dane, "dane.usage");
    assert!(
        usage
            .evidence
            .contains("_25._tcp.mx2.post.bryggeri.se TLSA 1 0 1")
            && usage.message.contains("RFC 7672 §3.1.3"),
        "{usage:#?}"
    );
    let fix = &report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "dane.usage")
        .unwrap()["fix"]["records"][0];
    assert_eq!(fix["action"], "replace");
    assert_eq!(fix["name"], "_25._tcp.mx2.post.bryggeri.se");
    assert!(
        fix["value"].as_str().unwrap().starts_with("3 0 1 8cb0fc6c"),
        "{fix}"
    );

    // lager: a SHA-256 association of 16 bytes.
    let report = zones.check("lager.bryggeri.se");
    let dane = findings(&report, "dane.");
    assert_eq!(ids(&dane), ["dane.syntax:fail"], "{dane:#?}");
    assert!(
        dane[0]
            .evidence
            .contains("a SHA-256 association is 32 bytes; this record's is 16"),
        "{}",
        dane[0].evidence
    );

    // osignerad: TLSA in an unsigned zone is ignored by senders.
    let report = zones.check("osignerad.bryggeri.se");
    assert_eq!(
        ids(&findings(&report, "dane.")),
        ["dane.insecure:warn"],
        "{report:#}"
    );

    // utgangen: the TLSA answer is bogus with the rest of the zone.
    let report = zones.check("utgangen.bryggeri.se");
    let dane = findings(&report, "dane.");
    assert_eq!(ids(&dane), ["dane.bogus:fail"], "{dane:#?}");
    assert!(
        dane[0].message.contains("mx1.utgangen.bryggeri.se"),
        "{}",
        dane[0].message
    );

    // andrad: its MX host mx1.bryggeri.se publishes none.
    let report = zones.check("andrad.bryggeri.se");
    let dane = findings(&report, "dane.");
    assert_eq!(ids(&dane), ["dane.absent:info"], "{dane:#?}");
}

#[test]
fn without_dnssec_nothing_is_validated_and_no_dnssec_question_is_sent() {
    let zones = Signed::new();
    let report = zones.run(&["post.bryggeri.se"]);
    assert!(findings(&report, "dnssec.").is_empty());
    assert!(findings(&report, "dane.").is_empty());
    let asked = zones.server.queries();
    assert!(
        !asked
            .iter()
            .any(|(_, t)| ["DS", "DNSKEY", "TLSA", "SOA"].contains(&t.as_str())),
        "{asked:?}"
    );
    let plain = report["summary"]["queries"].as_u64().unwrap();
    let with = zones.check("post.bryggeri.se")["summary"]["queries"]
        .as_u64()
        .unwrap();
    assert!(
        with > plain,
        "--dnssec asked {with} questions, without {plain}"
    );
}

#[test]
fn zone_files_and_other_anchors_are_not_validated() {
    // Answers from --zone files carry no signatures.
    let report = mailshift()
        .args(["check", "post.bryggeri.se", "--dnssec", "--offline"])
        .args(["--format", "json", "--selector", "s1"])
        .arg("--zone")
        .arg(fixtures().join("zones-dnssec/post.bryggeri.se.zone"))
        .output()
        .unwrap();
    let report = json(&report.stdout);
    let dnssec = findings(&report, "dnssec.");
    assert_eq!(ids(&dnssec), ["dnssec.unchecked:info"], "{dnssec:#?}");
    assert!(
        dnssec[0].message.contains("--zone file"),
        "{}",
        dnssec[0].message
    );
    assert!(findings(&report, "dane.").is_empty());

    // From the root's keys, the test server (which serves no root) cannot be validated.
    let zones = Signed::new();
    let report = zones.run(&["post.bryggeri.se", "--dnssec"]);
    let dnssec = findings(&report, "dnssec.");
    assert_eq!(
        ids(&dnssec),
        ["dnssec.inconclusive:inconclusive"],
        "{dnssec:#?}"
    );
}

#[test]
fn a_trust_anchor_file_that_cannot_be_used_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anchor.txt");
    std::fs::write(&path, "; not an anchor\nbryggeri.se. IN A 192.0.2.1\n").unwrap();
    let output = mailshift()
        .args(["check", "post.bryggeri.se", "--offline", "--trust-anchor"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--trust-anchor") && stderr.contains("line 2: a A record"),
        "{stderr}"
    );
}
