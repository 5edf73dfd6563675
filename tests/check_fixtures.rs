//! Every check id against the fixture zones, through a real DNS server on loopback and through
//! the `--zone` overlay; both paths must agree finding for finding.

mod support;

use mailshift::dns::{DnsConfig, Resolver};
use mailshift::domain::{DomainName, DomainRequest};
use mailshift::engine::{check_domain, CheckOptions, DomainReport};
use mailshift::finding::{Severity, Status};
use std::time::Duration;
use support::{fixture_server, fixtures};

use Severity::{Fail, Inconclusive, Info, Warn};

/// (domain, selectors, expected status, findings that must be present)
type Case = (
    &'static str,
    &'static [&'static str],
    Status,
    &'static [(&'static str, Severity)],
);

const CASES: &[Case] = &[
    (
        "spf-missing.test",
        &[],
        Status::Fail,
        &[("spf.missing", Fail)],
    ),
    (
        "spf-multiple.test",
        &[],
        Status::Fail,
        &[("spf.multiple", Fail)],
    ),
    (
        "spf-syntax.test",
        &[],
        Status::Fail,
        &[("spf.syntax", Fail)],
    ),
    (
        "spf-lookup-limit.test",
        &[],
        Status::Fail,
        &[("spf.lookup-limit", Fail)],
    ),
    (
        "spf-lookup-budget.test",
        &[],
        Status::Warn,
        &[("spf.lookup-budget", Warn)],
    ),
    (
        "spf-void.test",
        &[],
        Status::Fail,
        &[("spf.void-lookup-limit", Fail)],
    ),
    (
        "spf-void-v6.test",
        &[],
        Status::Warn,
        &[("spf.void-lookup-limit", Warn)],
    ),
    (
        "spf-include-missing.test",
        &[],
        Status::Fail,
        &[("spf.include-missing", Fail)],
    ),
    (
        "spf-include-invalid.test",
        &[],
        Status::Fail,
        &[("spf.include-invalid", Fail)],
    ),
    ("spf-loop.test", &[], Status::Fail, &[("spf.loop", Fail)]),
    (
        "spf-all-pass.test",
        &[],
        Status::Fail,
        &[("spf.all-pass", Fail)],
    ),
    (
        "spf-all-neutral.test",
        &[],
        Status::Warn,
        &[("spf.all-neutral", Warn)],
    ),
    (
        "spf-no-all.test",
        &[],
        Status::Warn,
        &[("spf.all-neutral", Warn)],
    ),
    ("spf-ptr.test", &[], Status::Warn, &[("spf.ptr", Warn)]),
    (
        "spf-record-size.test",
        &[],
        Status::Warn,
        &[("spf.record-size", Warn)],
    ),
    (
        "spf-after-all.test",
        &[],
        Status::Warn,
        &[
            ("spf.terms-after-all", Warn),
            ("spf.redirect-ignored", Warn),
        ],
    ),
    (
        "spf-mx-too-many.test",
        &[],
        Status::Fail,
        &[("spf.mx-too-many", Fail)],
    ),
    (
        "spf-deep.test",
        &[],
        Status::Fail,
        &[("spf.lookup-limit", Fail)],
    ),
    (
        "dmarc-missing.test",
        &[],
        Status::Fail,
        &[("dmarc.missing", Fail)],
    ),
    (
        "dmarc-multiple.test",
        &[],
        Status::Fail,
        &[("dmarc.multiple", Fail)],
    ),
    (
        "dmarc-syntax.test",
        &[],
        Status::Fail,
        &[("dmarc.syntax", Fail)],
    ),
    (
        "dmarc-policy-none.test",
        &[],
        Status::Warn,
        &[("dmarc.policy-none", Warn)],
    ),
    (
        "dmarc-testing.test",
        &[],
        Status::Warn,
        &[("dmarc.testing", Warn), ("dmarc.ignored-tags", Info)],
    ),
    (
        "dmarc-rua-missing.test",
        &[],
        Status::Warn,
        &[("dmarc.rua-missing", Warn)],
    ),
    (
        "dmarc-rua-unauthorized.test",
        &[],
        Status::Warn,
        &[("dmarc.rua-unauthorized", Warn)],
    ),
    (
        "dmarc-rua-undeliverable.test",
        &[],
        Status::Warn,
        &[("dmarc.rua-undeliverable", Warn)],
    ),
    (
        "sub.parent-policy.test",
        &[],
        Status::Pass,
        &[("dmarc.inherited", Info)],
    ),
    (
        "dkim-missing.test",
        &[],
        Status::Fail,
        &[("dkim.missing", Fail)],
    ),
    (
        "dkim-weak-1024.test",
        &[],
        Status::Warn,
        &[("dkim.key-weak", Warn)],
    ),
    (
        "dkim-weak-512.test",
        &[],
        Status::Fail,
        &[("dkim.key-weak", Fail)],
    ),
    (
        "dkim-revoked.test",
        &[],
        Status::Fail,
        &[("dkim.revoked", Fail)],
    ),
    (
        "dkim-rotated.test",
        &[],
        Status::Pass,
        &[("dkim.revoked", Info)],
    ),
    (
        "dkim-testing.test",
        &[],
        Status::Warn,
        &[("dkim.testing", Warn)],
    ),
    (
        "dkim-syntax.test",
        &[],
        Status::Fail,
        &[("dkim.syntax", Fail)],
    ),
    (
        "dkim-unknown-k.test",
        &[],
        Status::Fail,
        &[("dkim.syntax", Fail)],
    ),
    (
        "dkim-cname-dangling.test",
        &[],
        Status::Fail,
        &[("dkim.cname-dangling", Fail)],
    ),
    (
        "dkim-multiple.test",
        &[],
        Status::Fail,
        &[("dkim.multiple", Fail)],
    ),
    (
        "dkim-sha1.test",
        &[],
        Status::Fail,
        &[("dkim.hash-sha1", Fail)],
    ),
    (
        "dkim-not-email.test",
        &[],
        Status::Fail,
        &[("dkim.service-not-email", Fail)],
    ),
    (
        "clean.test",
        &["s1", "nosuch"],
        Status::Fail,
        &[("dkim.selector-missing", Fail)],
    ),
    (
        "does-not-exist.test",
        &[],
        Status::Fail,
        &[("domain.nxdomain", Fail)],
    ),
    (
        "mx-missing.test",
        &[],
        Status::Warn,
        &[("mx.missing", Warn)],
    ),
    ("mx-null.test", &[], Status::Fail, &[("mx.null", Fail)]),
    (
        "mx-ip-literal.test",
        &[],
        Status::Fail,
        &[("mx.ip-literal", Fail)],
    ),
    ("mx-cname.test", &[], Status::Warn, &[("mx.cname", Warn)]),
    (
        "mx-target-unresolvable.test",
        &[],
        Status::Fail,
        &[("mx.target-unresolvable", Fail)],
    ),
    (
        "hostile-cname-loop.test",
        &[],
        Status::Fail,
        &[("dns.cname-loop", Fail)],
    ),
];

/// Fixtures that must trigger no warn and no fail.
const CLEAN: &[(&str, &[&str])] = &[
    ("clean.test", &[]),
    ("clean-external-rua.test", &[]),
    ("clean-cname.test", &[]),
    ("clean-split.test", &[]),
    ("clean-ed25519.test", &["s1", "ed"]),
    ("xn--bcher-kva.test", &[]),
    ("clean-modifiers.test", &[]),
    ("clean-uppercase.test", &[]),
    ("clean-two-voids.test", &[]),
    ("clean-mx-hosts.test", &[]),
    ("spf-redirect.test", &[]),
    ("hostile-big-txt.test", &[]),
    ("clean-mx-nohost.test", &[]),
];

async fn check(resolver: &Resolver, domain: &str, selectors: &[&str]) -> DomainReport {
    let request = DomainRequest {
        domain: DomainName::parse(domain).unwrap(),
        selectors: selectors.iter().map(|s| s.to_string()).collect(),
    };
    check_domain(resolver, &request, &CheckOptions::default()).await
}

fn summary(report: &DomainReport) -> Vec<(String, Severity)> {
    let mut v: Vec<(String, Severity)> = report
        .findings
        .iter()
        .map(|f| (f.id.clone(), f.severity))
        .collect();
    v.sort();
    v
}

fn server_resolver(addr: std::net::SocketAddr) -> Resolver {
    Resolver::new(&DnsConfig {
        nameservers: vec![addr],
        timeout: Duration::from_secs(2),
        ..DnsConfig::default()
    })
    .unwrap()
}

fn overlay_resolver() -> Resolver {
    Resolver::new(&DnsConfig {
        zones: vec![fixtures().join("zones")],
        offline: true,
        ..DnsConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_id_has_a_fixture_that_triggers_it() {
    let server = fixture_server();
    let network = server_resolver(server.addr());
    let overlay = overlay_resolver();
    let mut failures = Vec::new();
    for (domain, selectors, status, expected) in CASES {
        let report = check(&network, domain, selectors).await;
        for (id, severity) in *expected {
            if !report
                .findings
                .iter()
                .any(|f| f.id == *id && f.severity == *severity)
            {
                failures.push(format!(
                    "{domain}: expected {id} ({severity}), got {:?}",
                    summary(&report)
                ));
            }
        }
        if report.status != *status {
            failures.push(format!(
                "{domain}: status {} (expected {status}): {:?}",
                report.status,
                summary(&report)
            ));
        }
        let via_zone = check(&overlay, domain, selectors).await;
        if summary(&via_zone) != summary(&report) {
            failures.push(format!(
                "{domain}: zone overlay and DNS server disagree:\n  server:  {:?}\n  overlay: {:?}",
                summary(&report),
                summary(&via_zone)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_fixtures_trigger_no_warn_or_fail() {
    let server = fixture_server();
    let network = server_resolver(server.addr());
    let overlay = overlay_resolver();
    for (domain, selectors) in CLEAN {
        for resolver in [&network, &overlay] {
            let report = check(resolver, domain, selectors).await;
            let bad: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.severity >= Warn)
                .map(|f| format!("{} {}: {}", f.id, f.severity, f.message))
                .collect();
            assert!(bad.is_empty(), "{domain}: {bad:#?}");
            assert_eq!(report.status, Status::Pass, "{domain}");
            for family in ["spf.ok", "dkim.ok", "dmarc.ok", "mx.ok"] {
                assert!(
                    report.findings.iter().any(|f| f.id == family),
                    "{domain}: no {family}: {:?}",
                    summary(&report)
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_is_inconclusive_never_a_failure() {
    let server = fixture_server();
    let network = server_resolver(server.addr());
    let report = check(&network, support::SERVFAIL_DOMAIN, &[]).await;
    assert_eq!(
        report.status,
        Status::Inconclusive,
        "{:?}",
        summary(&report)
    );
    assert!(
        report.findings.iter().all(|f| f.severity != Fail),
        "{:?}",
        summary(&report)
    );
    for id in [
        "spf.inconclusive",
        "mx.inconclusive",
        "dmarc.inconclusive",
        "dkim.inconclusive",
    ] {
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.id == id && f.severity == Inconclusive),
            "missing {id}: {:?}",
            summary(&report)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_txt_answer_is_fetched_over_tcp() {
    let server = fixture_server();
    let network = server_resolver(server.addr());
    let report = check(&network, "hostile-big-txt.test", &[]).await;
    assert_eq!(report.status, Status::Pass, "{:?}", summary(&report));
    assert!(
        server
            .tcp_queries()
            .iter()
            .any(|(name, t)| name == "hostile-big-txt.test." && t == "TXT"),
        "the truncated TXT answer was not retried over TCP: {:?}",
        server.tcp_queries()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_tree_evidence_shows_costs_and_voids() {
    let overlay = overlay_resolver();
    let report = check(&overlay, "spf-void-v6.test", &[]).await;
    let finding = report
        .findings
        .iter()
        .find(|f| f.id == "spf.void-lookup-limit")
        .unwrap();
    assert!(
        finding.evidence.contains("a:h1.spf-void-v6.test  +1"),
        "{}",
        finding.evidence
    );
    assert!(
        finding.evidence.contains("void for IPv6 senders"),
        "{}",
        finding.evidence
    );
    assert!(
        finding
            .evidence
            .contains("Total: 3 of 10 DNS lookups; void lookups: 0 for IPv4 senders, 3 for IPv6"),
        "{}",
        finding.evidence
    );
    let tree = finding.data.as_ref().unwrap();
    assert_eq!(tree["lookups"], 3);
    assert_eq!(tree["terms"][0]["void_ipv6"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_budget_counts_nested_includes_and_not_mx_hosts() {
    let overlay = overlay_resolver();
    // _spf2 includes _spf and _netblocks: redirect (1) + 2 nested includes = 3.
    let report = check(&overlay, "spf-redirect.test", &[]).await;
    let ok = report.findings.iter().find(|f| f.id == "spf.ok").unwrap();
    assert!(ok.message.contains("3 of 10"), "{}", ok.message);
    // mx with three hosts: 1 for mx + 1 include, the six address lookups are free.
    let report = check(&overlay, "clean-mx-hosts.test", &[]).await;
    let ok = report.findings.iter().find(|f| f.id == "spf.ok").unwrap();
    assert!(ok.message.contains("2 of 10"), "{}", ok.message);
    // 11 includes: over the limit; the 50-deep chain too, and fetching stopped.
    let report = check(&overlay, "spf-deep.test", &[]).await;
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "spf.lookup-limit")
        .unwrap();
    assert!(f.message.contains("or more"), "{}", f.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitfalls_other_checkers_shipped() {
    let overlay = overlay_resolver();
    let finding = |report: &DomainReport, id: &str| {
        report
            .findings
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("{}: no {id}: {:?}", report.domain, summary(report)))
            .clone()
    };
    // exp= is never counted; unknown modifiers are legal; a macro target costs one lookup
    // and is said to be evaluated per message, not called a syntax error.
    let report = check(&overlay, "clean-modifiers.test", &[]).await;
    let ok = finding(&report, "spf.ok");
    assert!(ok.message.contains("1 of 10"), "{}", ok.message);
    let verbose_tree = ok.evidence;
    assert!(
        verbose_tree.contains("evaluated per message"),
        "{verbose_tree}"
    );
    // Each void term counts once (not once per A and AAAA query), and they are named.
    let report = check(&overlay, "spf-void.test", &[]).await;
    let void = finding(&report, "spf.void-lookup-limit");
    assert!(
        void.message.starts_with("3 lookups return no data"),
        "{}",
        void.message
    );
    assert!(
        void.message.contains("a:gone3.spf-void.test"),
        "{}",
        void.message
    );
    // An oversized record is still fetched and evaluated.
    let report = check(&overlay, "spf-record-size.test", &[]).await;
    finding(&report, "spf.record-size");
    finding(&report, "spf.ok");
    // One record split into strings is one record, joined without a separator.
    let report = check(&overlay, "clean-split.test", &[]).await;
    let ok = finding(&report, "spf.ok");
    assert!(
        ok.evidence
            .contains("\"v=spf1 ip4:192.0.2.0/24 include:_spf.esp.test -all\""),
        "{}",
        ok.evidence
    );
    // An mx host that does not exist is noted, not counted as void, not an error.
    let report = check(&overlay, "clean-mx-nohost.test", &[]).await;
    let ok = finding(&report, "spf.ok");
    assert!(ok.message.contains("0 void (IPv4)"), "{}", ok.message);
    assert!(
        ok.evidence
            .contains("MX hosts without addresses (not counted): ghost.clean-mx-nohost.test"),
        "{}",
        ok.evidence
    );
    // A hosted DMARC policy behind a CNAME is followed.
    let report = check(&overlay, "clean-cname.test", &[]).await;
    let ok = finding(&report, "dmarc.ok");
    assert!(
        ok.evidence.contains("CNAME policy.reports.test"),
        "{}",
        ok.evidence
    );
    // A rejected record is shown, not just called invalid.
    let report = check(&overlay, "dmarc-syntax.test", &[]).await;
    let bad = finding(&report, "dmarc.syntax");
    assert!(bad.evidence.contains("p=rejct"), "{}", bad.evidence);
    assert!(
        bad.message.contains("`p=rejct`: `rejct` is not a policy"),
        "{}",
        bad.message
    );
}

#[tokio::test]
async fn cname_beside_other_data_is_reported() {
    let overlay = Resolver::new(&DnsConfig {
        zones: vec![
            fixtures().join("zones"),
            fixtures().join("zones-unservable"),
        ],
        offline: true,
        ..DnsConfig::default()
    })
    .unwrap();
    let report = check(&overlay, "hostile-cname-txt.test", &[]).await;
    assert_eq!(report.status, Status::Fail);
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "dns.cname-and-data")
        .unwrap();
    assert!(
        f.message.contains("_dmarc.hostile-cname-txt.test"),
        "{}",
        f.message
    );
}
