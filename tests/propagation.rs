//! Propagation through the real parts: several authoritative DNS servers on loopback addresses
//! (127.0.0.2, .3, … on one port, as a zone's name servers are on port 53), serving copies of a
//! zone that agree or diverge (`fixtures/zones-propagation/`), and a "resolver" that still holds
//! the old copy. `mailshift check --propagation` asks each server directly; the gate
//! requirement `propagation` stays closed until the new records are visible everywhere.

mod support;

use std::net::Ipv4Addr;
use support::dns_server::TestDnsServer;
use support::{fixtures, mailshift, run_json};

fn copies(which: &str) -> std::path::PathBuf {
    fixtures().join("zones-propagation").join(which)
}

/// A name server at `127.0.0.<last>` on `port` (0: any) serving one copy of the zones, and
/// the platforms' zones so it can also stand in as the run's resolver.
fn name_server(last: u8, port: u16, copy: &str) -> TestDnsServer {
    TestDnsServer::builder()
        .bind(Ipv4Addr::new(127, 0, 0, last), port)
        .zone_dir(copies(copy))
        .zone_dir(fixtures().join("zones"))
        .start()
}

/// ns1 (current copy) and ns2 (`second`), on one port.
fn pair(second: &str) -> (TestDnsServer, TestDnsServer) {
    let ns1 = name_server(2, 0, "current");
    let ns2 = name_server(3, ns1.port(), second);
    (ns1, ns2)
}

fn check(resolver: &TestDnsServer, port: u16, domain: &str) -> assert_cmd::Command {
    let mut cmd = mailshift();
    cmd.args(["check", domain, "--propagation", "--format", "json"])
        .args(["--timeout", "1", "--retries", "0"])
        .args(["--nameserver", &resolver.nameserver_arg()])
        .args(["--authoritative-port", &port.to_string()]);
    cmd
}

fn gate(resolver: &TestDnsServer, port: u16) -> assert_cmd::Command {
    let mut cmd = mailshift();
    cmd.arg("gate")
        .arg(fixtures().join("plans/vinterhavn.toml"))
        .args(["--stage", "seed", "--no-record", "--format", "json"])
        .args(["--timeout", "1", "--retries", "0"])
        .args(["--nameserver", &resolver.nameserver_arg()])
        .args(["--authoritative-port", &port.to_string()]);
    cmd
}

fn findings(report: &serde_json::Value, id: &str) -> Vec<serde_json::Value> {
    report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == id)
        .cloned()
        .collect()
}

fn ids(report: &serde_json::Value) -> Vec<String> {
    report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .filter(|id| id.starts_with("propagation."))
        .collect()
}

#[test]
fn servers_in_sync_pass_and_the_gate_opens() {
    let (ns1, _ns2) = pair("current");
    let port = ns1.port();
    let report = run_json(
        check(&ns1, port, "vinterhavn.se").args(["--selector", "s1", "--selector", "s2"]),
        0,
    );
    assert_eq!(ids(&report), ["propagation.ok"], "{report:#}");
    let ok = &findings(&report, "propagation.ok")[0];
    // SOA aside: MX, the apex TXT, DMARC, s1 and s2, MTA-STS, TLS-RPT and BIMI (all three
    // absent).
    assert_eq!(
        ok["message"],
        "2 name servers of vinterhavn.se (2 addresses) serve serial 2026120202 and the same 8 mail records, and the resolver sees them too."
    );
    let report = run_json(&mut gate(&ns1, port), 0);
    assert_eq!(report["decision"], "open", "{report:#}");
    assert_eq!(report["requirements"][0]["requirement"], "propagation");
}

#[test]
fn a_secondary_behind_is_named_and_closes_the_gate() {
    let (ns1, _ns2) = pair("behind");
    let port = ns1.port();
    let report = run_json(
        check(&ns1, port, "vinterhavn.se").args(["--selector", "s1", "--selector", "s2"]),
        1,
    );
    let serial = findings(&report, "propagation.serial-mismatch");
    assert_eq!(serial.len(), 1, "{:?}", ids(&report));
    assert!(
        serial[0]["message"].as_str().unwrap().contains(
            "the newest is serial 2026120202; behind: ns2.vinterhavn.se (127.0.0.3) at 2026112001"
        ),
        "{}",
        serial[0]["message"]
    );
    let differ = findings(&report, "propagation.records-differ");
    let names: Vec<&str> = differ
        .iter()
        .map(|f| {
            f["message"]
                .as_str()
                .unwrap()
                .split(" differs")
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "TXT _dmarc.vinterhavn.se",
            "TXT s1._domainkey.vinterhavn.se",
            "TXT s2._domainkey.vinterhavn.se",
            "TXT vinterhavn.se"
        ],
        "{report:#}"
    );
    let spf = differ[3]["message"].as_str().unwrap();
    assert!(
        spf.contains("ns1.vinterhavn.se (127.0.0.2) answers \"v=spf1 include:_spf.google.com include:sendgrid.net ~all\"")
            && spf.contains("ns2.vinterhavn.se (127.0.0.3) answers \"v=spf1 include:_spf.google.com include:servers.mcsv.net ~all\" (beside 1 record all serve)"),
        "{spf}"
    );
    assert_eq!(differ[3]["severity"], "fail");
    let report = run_json(&mut gate(&ns1, port), 1);
    assert_eq!(report["decision"], "closed", "{report:#}");
    assert_eq!(report["requirements"][0]["status"], "failed");
}

#[test]
fn a_resolver_still_holding_the_old_records_waits_for_the_ttl() {
    let (ns1, _ns2) = pair("current");
    let port = ns1.port();
    // The run's resolver still serves the copy from before the change.
    let stale = name_server(5, 0, "behind");
    let report = run_json(
        check(&stale, port, "vinterhavn.se").args(["--selector", "k2"]),
        0,
    );
    let pending = findings(&report, "propagation.pending");
    let names: Vec<&str> = pending
        .iter()
        .map(|f| f["data"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "_dmarc.vinterhavn.se",
            "k2._domainkey.vinterhavn.se",
            "vinterhavn.se"
        ],
        "{report:#}"
    );
    for f in &pending {
        assert_eq!(f["severity"], "warn");
    }
    // The SPF record has a TTL of 1800 s; the DKIM CNAME the zone's default of 3600 s.
    assert_eq!(pending[2]["data"]["resolver_ttl"], 1800);
    assert_eq!(pending[1]["data"]["resolver_ttl"], 3600);
    let spf = pending[2]["message"].as_str().unwrap();
    assert!(
        spf.contains("the name servers answer \"v=spf1 include:_spf.google.com include:sendgrid.net ~all\", but the resolver this run used still answers \"v=spf1 include:_spf.google.com include:servers.mcsv.net ~all\" (beside 1 record both hold). It may keep it 1800 s more, until"),
        "{spf}"
    );
    // No disagreement between the servers themselves.
    assert!(findings(&report, "propagation.records-differ").is_empty());
    // The gate waits: closed until the last TTL has run out.
    let report = run_json(&mut gate(&stale, port), 1);
    let requirement = &report["requirements"][0];
    assert_eq!(requirement["status"], "failed", "{report:#}");
    let summary = requirement["summary"].as_str().unwrap();
    assert!(
        summary.contains("not visible everywhere yet: wait until 20"),
        "{summary}"
    );
}

#[test]
fn lame_and_silent_name_servers_are_reported() {
    let (ns1, _ns2) = pair("current");
    let port = ns1.port();
    // ns3 serves other zones only; nothing listens at ns4 (127.0.0.6).
    let _ns3 = TestDnsServer::builder()
        .bind(Ipv4Addr::new(127, 0, 0, 4), port)
        .zone_file(fixtures().join("zones/test.zone"))
        .start();
    let report = run_json(&mut check(&ns1, port, "fjordlys.no"), 3);
    let lame = findings(&report, "propagation.lame");
    assert_eq!(lame.len(), 1, "{:?}", ids(&report));
    assert!(lame[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("ns3.fjordlys.no (127.0.0.4) is a name server of fjordlys.no but"));
    let silent = findings(&report, "propagation.unreachable");
    assert_eq!(silent.len(), 1, "{:?}", ids(&report));
    assert_eq!(silent[0]["severity"], "inconclusive");
    assert!(silent[0]["message"].as_str().unwrap().starts_with(
        "ns4.fjordlys.no (127.0.0.6) is a name server of fjordlys.no but did not answer"
    ));
    // ns1 and ns2 agree, but with a server unheard the verdict is not "ok".
    assert!(findings(&report, "propagation.ok").is_empty());
    assert!(findings(&report, "propagation.records-differ").is_empty());
}
