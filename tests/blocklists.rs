//! DNS blocklists through the real parts: the four default lists' zones served by an
//! authoritative DNS server on loopback (`fixtures/zones-blocklist/`), asked by the `mailshift`
//! binary. A listed dedicated IP closes the `blocklists` gate before warmup; a listed domain
//! fails `check --blocklists`; and the answers a checker must not call listings — Spamhaus's
//! "public resolver" code, a resolver's rewritten NXDOMAIN, a retired list that lists
//! everything — make the verdict inconclusive (exit 3), never failed.

mod support;

use support::dns_server::TestDnsServer;
use support::{fixtures, id_severities, mailshift, run_json};

fn server(scenario: &str) -> TestDnsServer {
    let lists = fixtures().join("zones-blocklist");
    TestDnsServer::builder()
        .zone_dir(fixtures().join("zones"))
        .zone_dir(lists.join("domains"))
        .zone_dir(lists.join(scenario))
        .log_queries(true)
        .start()
}

fn check(server: &TestDnsServer, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = mailshift();
    cmd.arg("check")
        .args(args)
        .args(["--format", "json", "--timeout", "2"])
        .args(["--nameserver", &server.nameserver_arg()]);
    cmd
}

fn findings<'a>(report: &'a serde_json::Value, id: &str) -> Vec<&'a serde_json::Value> {
    report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == id)
        .collect()
}

#[test]
fn a_listed_dedicated_ip_closes_the_warmup_gate() {
    let server = server("listed");
    let report = run_json(
        mailshift()
            .arg("gate")
            .arg(fixtures().join("plans/harborandpine-warmup.toml"))
            .args(["--stage", "warmup", "--no-record", "--format", "json"])
            .args(["--timeout", "2", "--nameserver", &server.nameserver_arg()]),
        1,
    );
    assert_eq!(report["decision"], "closed", "{report:#}");
    let requirement = &report["requirements"][0];
    assert_eq!(requirement["requirement"], "blocklists");
    assert_eq!(requirement["status"], "failed");
    let listed: Vec<&serde_json::Value> = requirement["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "blocklist.listed")
        .collect();
    // 198.51.100.41 on ZEN (CSS) and SpamCop; 198.51.100.40 on neither.
    assert_eq!(listed.len(), 2, "{requirement:#}");
    for f in &listed {
        assert_eq!(f["severity"], "fail");
        assert_eq!(f["domain"], "news.harborandpine.com");
        let message = f["message"].as_str().unwrap();
        assert!(
            message.starts_with("198.51.100.41 (pool `klaviyo-dedicated`) is listed on"),
            "{message}"
        );
    }
    let zen = listed[0]["message"].as_str().unwrap();
    assert!(
        zen.contains("Spamhaus ZEN: 127.0.0.3: CSS") && zen.contains("query/ip/198.51.100.41"),
        "{zen}"
    );
    assert!(listed[1]["message"]
        .as_str()
        .unwrap()
        .contains("spamcop.net/bl.shtml?198.51.100.41"));
    // The clean IP and the domains are counted as clean on every list.
    let clean: Vec<&str> = requirement["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "blocklist.clean")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(clean.len(), 2, "{clean:?}");
    assert!(
        clean.iter().any(|m| m.contains("Spamhaus DBL")),
        "{clean:?}"
    );
}

#[test]
fn check_looks_up_ips_and_the_domain() {
    let server = server("listed");
    // A clean IP: the domain on the DBL and the IP on the three IP lists.
    let report = run_json(
        &mut check(&server, &["alpine-outfitters.de", "--ip", "198.51.100.40"]),
        0,
    );
    let clean = findings(&report, "blocklist.clean");
    assert_eq!(clean.len(), 1, "{report:#}");
    assert!(
        clean[0]["message"]
            .as_str()
            .unwrap()
            .contains("4 lookups on 4 lists"),
        "{}",
        clean[0]["message"]
    );
    // The DBL lists the promotion domain.
    let report = run_json(
        &mut check(&server, &["harborandpine-deals.com", "--blocklists"]),
        1,
    );
    let listed = findings(&report, "blocklist.listed");
    assert_eq!(listed.len(), 1, "{report:#}");
    assert_eq!(listed[0]["data"]["list"], "spamhaus-dbl");
    assert_eq!(
        listed[0]["data"]["codes"][0],
        "127.0.1.2: a low-reputation domain seen in spam"
    );
    // A private address is named and never sent to a list.
    server.clear_queries();
    let report = run_json(
        &mut check(&server, &["alpine-outfitters.de", "--ip", "10.20.30.40"]),
        0,
    );
    assert_eq!(findings(&report, "blocklist.not-public").len(), 1);
    let asked = server.queries();
    assert!(
        !asked.iter().any(|(name, _)| name.contains("40.30.20.10")),
        "{asked:?}"
    );
    // Without --blocklists or --ip, no list is asked at all.
    server.clear_queries();
    run_json(&mut check(&server, &["alpine-outfitters.de"]), 0);
    let asked = server.queries();
    assert!(
        !asked
            .iter()
            .any(|(name, _)| name.contains("spamhaus") || name.contains("spamcop")),
        "{asked:?}"
    );
}

#[test]
fn refused_rewritten_and_retired_lists_are_inconclusive_never_listed() {
    let server = server("hostile");
    let report = run_json(
        &mut check(&server, &["alpine-outfitters.de", "--ip", "198.51.100.41"]),
        3,
    );
    let all = &report["domains"][0]["findings"];
    let ids = id_severities(all);
    assert!(
        !ids.iter().any(|i| i.starts_with("blocklist.listed")),
        "{ids:?}"
    );
    // Spamhaus: ZEN about the IP, DBL about the domain.
    let refused = findings(&report, "blocklist.refused");
    assert_eq!(refused.len(), 2, "{ids:?}");
    for f in &refused {
        assert_eq!(f["severity"], "inconclusive");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains("public or open resolver"),
            "{f:#}"
        );
    }
    // SpamCop's answer was rewritten by the resolver.
    let rewritten = findings(&report, "blocklist.inconclusive");
    assert_eq!(rewritten.len(), 1, "{ids:?}");
    assert!(rewritten[0]["message"]
        .as_str()
        .unwrap()
        .contains("198.51.100.80"));
    // Barracuda lists its must-not-list entry: its "listed" is not believed.
    let retired = findings(&report, "blocklist.unreliable");
    assert_eq!(retired.len(), 1, "{ids:?}");
    assert!(retired[0]["message"]
        .as_str()
        .unwrap()
        .contains("Barracuda Reputation Block List"));
    assert_eq!(report["domains"][0]["status"], "inconclusive");
}

#[test]
fn user_lists_replace_and_disable_the_embedded_ones() {
    let server = server("hostile");
    let dir = tempfile::tempdir().unwrap();
    // Only the two Spamhaus lists stay, through a "DQS" zone of the user's; the hostile
    // SpamCop and Barracuda answers are no longer asked for.
    std::fs::write(
        dir.path().join("blocklists.toml"),
        "[[list]]\nid = \"spamcop\"\nenabled = false\n\n[[list]]\nid = \"barracuda\"\nenabled = false\n\n[[list]]\nid = \"spamhaus-zen\"\nname = \"Spamhaus ZEN (listed zone)\"\nzone = \"bl.spamcop.net\"\nlists = \"ip\"\n[list.codes]\n\"127.0.0.2\" = \"listed\"\n",
    )
    .unwrap();
    let report = run_json(
        check(&server, &["alpine-outfitters.de", "--ip", "198.51.100.41"])
            .args(["--checks-dir", dir.path().to_str().unwrap()]),
        3,
    );
    let ids = id_severities(&report["domains"][0]["findings"]);
    // The replaced list answers 198.51.100.80 (rewritten); Barracuda is gone.
    assert!(
        findings(&report, "blocklist.inconclusive")[0]["message"]
            .as_str()
            .unwrap()
            .contains("Spamhaus ZEN (listed zone)"),
        "{ids:?}"
    );
    assert!(
        findings(&report, "blocklist.unreliable").is_empty(),
        "{ids:?}"
    );
    // A bad list file is bad input, naming the file and the list.
    std::fs::write(
        dir.path().join("blocklists.toml"),
        "[[list]]\nid = \"mine\"\nzone = \"bl.example.org\"\nlists = \"ip\"\n[list.codes]\n\"10.0.0.2\" = \"x\"\n",
    )
    .unwrap();
    let out = check(&server, &["alpine-outfitters.de", "--blocklists"])
        .args(["--checks-dir", dir.path().to_str().unwrap()])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8_lossy(&out);
    assert!(
        stderr.contains("blocklists.toml") && stderr.contains("list `mine`: code `10.0.0.2`"),
        "{stderr}"
    );
}
