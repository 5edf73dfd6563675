//! `check --probe-smtp` through the real parts: MX records from an authoritative DNS server on
//! loopback (`fixtures/zones-smtp/`), MX hosts on 127.0.0.21–34 served by in-process SMTP
//! servers with STARTTLS and a test CA (`tests/support/smtp_server.rs`), the MTA-STS policies
//! from the HTTPS test server, both CAs trusted through `--https-ca`, the port through the
//! hidden `--smtp-port`. Nothing leaves loopback.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::dns_server::TestDnsServer;
use support::https_server::{self, Route, TestHttpsServer};
use support::smtp_server::{Behaviour, Cert, TestSmtpServer};
use support::{fixtures, json, mailshift};

struct Lab {
    dns: TestDnsServer,
    smtp: TestSmtpServer,
    https: TestHttpsServer,
    _dir: tempfile::TempDir,
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtpServer::builder()
        .host(ip(21), "mx1.lumimarja.fi", Behaviour::Starttls(Cert::Good))
        .host(ip(22), "mx2.lumimarja.fi", Behaviour::Starttls(Cert::Good))
        .host(ip(23), "mail.tulpenhuis.nl", Behaviour::NoStarttls)
        .host(
            ip(24),
            "mx.kaasmakerij.nl",
            Behaviour::Starttls(Cert::Expired),
        )
        .host(
            ip(25),
            "mx.fietsfabriek.nl",
            Behaviour::Starttls(Cert::WrongName),
        )
        .host(
            ip(26),
            "mx.saunatalo.fi",
            Behaviour::Starttls(Cert::Untrusted),
        )
        .host(ip(27), "mx.drukkerij-vos.nl", Behaviour::BrokenHandshake)
        .host(ip(28), "mx.hollandsedrop.nl", Behaviour::Banner554)
        .host(ip(29), "mx1.revontuli.fi", Behaviour::EndlessLine)
        .host(ip(30), "mx2.revontuli.fi", Behaviour::Silent)
        .host(ip(31), "mx3.revontuli.fi", Behaviour::EndlessEhlo)
        // 127.0.0.32 (tunturi.fi): nothing listens there.
        .host(ip(33), "mx.molenwerf.nl", Behaviour::StarttlsRefused)
        .host(ip(34), "mx.pakkasherra.fi", Behaviour::Tls10Only)
        .host(
            ip(35),
            "mx.koffiebranderij-dam.nl",
            Behaviour::Starttls(Cert::ExpiringSoon),
        )
        .host(ip(36), "vevstua.no", Behaviour::Starttls(Cert::Good))
        .start(dir.path());
    let path = mailshift::fetch::MTA_STS_PATH;
    let https = TestHttpsServer::builder()
        .route(
            "mta-sts.lumimarja.fi",
            path,
            https_server::Cert::Good,
            Route::ok(
                "text/plain",
                "version: STSv1\nmode: enforce\nmx: mx1.lumimarja.fi\nmx: mx2.lumimarja.fi\nmax_age: 1209600\n",
            ),
        )
        .route(
            "mta-sts.koffiebranderij-dam.nl",
            path,
            https_server::Cert::Good,
            Route::ok(
                "text/plain",
                "version: STSv1\nmode: enforce\nmx: mx.koffiebranderij-dam.nl\nmax_age: 1209600\n",
            ),
        )
        .route(
            "mta-sts.saunatalo.fi",
            path,
            https_server::Cert::Good,
            Route::ok(
                "text/plain",
                "version: STSv1\nmode: enforce\nmx: mx.saunatalo.fi\nmax_age: 1209600\n",
            ),
        )
        .start(dir.path());
    let dns = TestDnsServer::builder()
        .zone_dir(fixtures().join("zones-smtp"))
        .start();
    Lab {
        dns,
        smtp,
        https,
        _dir: dir,
    }
}

impl Lab {
    fn command(&self, domains: &[&str]) -> assert_cmd::Command {
        let mut cmd = mailshift();
        cmd.arg("check")
            .args(domains)
            .args(["--probe-smtp", "--format", "json", "--selector", "s1"])
            .args(["--timeout", "2", "--retries", "0"])
            .args(["--nameserver", &self.dns.nameserver_arg()])
            .arg("--https-ca")
            .arg(self.https.ca_file())
            .arg("--https-ca")
            .arg(self.smtp.ca_file())
            .args(["--https-port", &self.https.port().to_string()])
            .args(["--smtp-port", &self.smtp.port().to_string()])
            .args(["--smtp-deadline", "3"]);
        cmd
    }

    /// Checks `domains`; returns the report and the exit code.
    fn check(&self, domains: &[&str]) -> (serde_json::Value, i32) {
        let output = self.command(domains).output().unwrap();
        (json(&output.stdout), output.status.code().unwrap())
    }
}

/// The `smtp.*` findings of the report's domain `domain`.
fn smtp(report: &serde_json::Value, domain: &str) -> Vec<serde_json::Value> {
    let entry = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not in {report}"));
    entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("smtp."))
        .cloned()
        .collect()
}

fn ids(findings: &[serde_json::Value]) -> Vec<String> {
    support::id_severities(&serde_json::Value::Array(findings.to_vec()))
}

fn message(finding: &serde_json::Value) -> &str {
    finding["message"].as_str().unwrap()
}

#[test]
fn good_starttls_passes_and_the_probe_never_sends_mail() {
    let lab = lab();
    let (report, _) = lab.check(&["lumimarja.fi"]);
    let found = smtp(&report, "lumimarja.fi");
    assert_eq!(ids(&found), ["smtp.ok:pass"], "{found:#?}");
    let text = message(&found[0]);
    for host in [
        "mx1.lumimarja.fi (127.0.0.21) TLS 1.3",
        "mx2.lumimarja.fi (127.0.0.22) TLS 1.3",
    ] {
        assert!(text.contains(host), "{text}");
    }
    assert_eq!(
        found[0]["data"]["hosts"][0]["certificate"]["dns_names"][0],
        "mx1.lumimarja.fi"
    );
    // The MTA-STS policy is in force and covers both hosts: nothing to say about it either.
    let all = support::id_severities(&report["domains"][0]["findings"]);
    assert!(all.contains(&"mta-sts.ok:pass".to_string()), "{all:?}");
    // EHLO, STARTTLS, then QUIT inside TLS; never MAIL, RCPT or DATA.
    let commands = lab.smtp.commands(ip(21));
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(commands[0].starts_with("EHLO "), "{commands:?}");
    let ehlo_name = &commands[0][5..];
    assert!(
        (ehlo_name.contains('.') && !ehlo_name.contains(' ')) || ehlo_name.starts_with('['),
        "EHLO {ehlo_name}: neither a dotted name nor an address literal"
    );
    assert_eq!(commands[1..], ["STARTTLS", "(TLS) QUIT"]);
    for command in lab.smtp.all_commands() {
        let verb = command.trim_start_matches("(TLS) ").to_ascii_uppercase();
        for forbidden in ["MAIL", "RCPT", "DATA"] {
            assert!(!verb.starts_with(forbidden), "{command}");
        }
    }
}

#[test]
fn no_starttls_warns_without_a_policy() {
    let lab = lab();
    let (report, _) = lab.check(&["tulpenhuis.nl"]);
    let found = smtp(&report, "tulpenhuis.nl");
    assert_eq!(ids(&found), ["smtp.no-starttls:warn"], "{found:#?}");
    let text = message(&found[0]);
    assert!(
        text.starts_with("mail.tulpenhuis.nl (127.0.0.23) does not offer STARTTLS: mail to mail.tulpenhuis.nl travels unencrypted"),
        "{text}"
    );
    assert!(found[0]["evidence"]
        .as_str()
        .unwrap()
        .contains("250 ENHANCEDSTATUSCODES"));
    assert_eq!(lab.smtp.commands(ip(23)).last().unwrap(), "QUIT");
}

#[test]
fn expired_and_misnamed_certificates_are_named_and_still_read() {
    let lab = lab();
    let (report, _) = lab.check(&["kaasmakerij.nl", "fietsfabriek.nl"]);
    let expired = smtp(&report, "kaasmakerij.nl");
    assert_eq!(ids(&expired), ["smtp.certificate:warn"], "{expired:#?}");
    let text = message(&expired[0]);
    assert!(
        text.starts_with("The certificate of mx.kaasmakerij.nl (127.0.0.24) has expired (on 2021-01-01): senders that encrypt opportunistically still deliver"),
        "{text}"
    );
    assert_eq!(expired[0]["data"]["certificate"]["not_after"], "2021-01-01");
    assert_eq!(expired[0]["data"]["tls_version"], "TLS 1.3");

    let misnamed = smtp(&report, "fietsfabriek.nl");
    assert_eq!(ids(&misnamed), ["smtp.certificate:warn"], "{misnamed:#?}");
    let text = message(&misnamed[0]);
    assert!(
        text.contains("is not valid for mx.fietsfabriek.nl (it names www.fietsfabriek.nl)"),
        "{text}"
    );
    // The chain was kept (leaf and CA) although the certificate was refused: what DANE needs.
    assert_eq!(misnamed[0]["data"]["chain_length"], 2);
}

/// No MX record: senders deliver to the domain's own address (RFC 5321 §5.1), so that is
/// what is probed, and the report says why it probed the domain's name.
#[test]
fn without_an_mx_record_the_domain_itself_is_probed_as_its_implicit_mx() {
    let lab = lab();
    let (report, _) = lab.check(&["vevstua.no"]);
    let found = smtp(&report, "vevstua.no");
    assert_eq!(
        ids(&found),
        ["smtp.implicit-mx:info", "smtp.ok:pass"],
        "{found:#?}"
    );
    assert!(message(&found[0]).contains("implicit MX of RFC 5321"));
    assert!(message(&found[1]).contains("vevstua.no (127.0.0.36) TLS 1.3"));
    assert_eq!(lab.smtp.commands(ip(36))[1..], ["STARTTLS", "(TLS) QUIT"]);

    // A null MX is not "no MX": the domain accepts no mail, and its address is not probed.
    let (report, _) = lab.check(&["hiljaisuus.fi"]);
    let found = smtp(&report, "hiljaisuus.fi");
    assert_eq!(ids(&found), ["smtp.unchecked:info"], "{found:#?}");
    assert!(message(&found[0]).contains("no MX host to connect to"));
}

/// A certificate that is valid but runs out within days, under an enforced MTA-STS policy: a
/// warning with its date and the renewal to do, beside the pass it still earns.
#[test]
fn a_certificate_about_to_expire_warns_with_its_date() {
    let lab = lab();
    let (report, _) = lab.check(&["koffiebranderij-dam.nl"]);
    let found = smtp(&report, "koffiebranderij-dam.nl");
    assert_eq!(
        ids(&found),
        ["smtp.certificate-expiring:warn", "smtp.ok:pass"],
        "{found:#?}"
    );
    let text = message(&found[0]);
    assert!(
        text.starts_with("The certificate of mx.koffiebranderij-dam.nl (127.0.0.35) expires on ")
            && (text.contains("(in 4 days)") || text.contains("(in 5 days)"))
            && text.contains("enforce the domain's MTA-STS policy refuse to deliver"),
        "{text}"
    );
    assert!(found[0]["fix"]["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("Renew the certificate of mx.koffiebranderij-dam.nl")));
}

/// The same MX host with a certificate from a CA no sender trusts: a failure for the domain
/// whose MTA-STS policy enforces TLS (RFC 8461 §4.2), a warning for the one without a policy.
#[test]
fn an_untrusted_certificate_fails_under_mta_sts_enforce_and_warns_without() {
    let lab = lab();
    let (report, code) = lab.check(&["saunatalo.fi", "kiuaskivi.fi"]);
    assert_eq!(code, 1, "a failure makes the run fail");
    let enforced = smtp(&report, "saunatalo.fi");
    assert_eq!(ids(&enforced), ["smtp.certificate:fail"], "{enforced:#?}");
    let text = message(&enforced[0]);
    assert!(
        text.contains(
            "is not issued by a trusted certificate authority (issuer: CN=an untrusted SMTP CA)"
        ),
        "{text}"
    );
    assert!(
        text.contains("the MTA-STS policy of saunatalo.fi is in enforce mode, so senders that honour it do not deliver to mx.saunatalo.fi"),
        "{text}"
    );
    let all = support::id_severities(&report["domains"][0]["findings"]);
    assert!(
        !all.iter().any(|f| f.starts_with("mta-sts.mx-mismatch")),
        "{all:?}"
    );
    let opportunistic = smtp(&report, "kiuaskivi.fi");
    assert_eq!(
        ids(&opportunistic),
        ["smtp.certificate:warn"],
        "{opportunistic:#?}"
    );
    assert!(
        message(&opportunistic[0]).contains("senders that encrypt opportunistically still deliver")
    );
}

#[test]
fn broken_refused_and_old_tls_are_told_apart() {
    let lab = lab();
    let (report, _) = lab.check(&["drukkerij-vos.nl", "molenwerf.nl", "pakkasherra.fi"]);
    let broken = smtp(&report, "drukkerij-vos.nl");
    assert_eq!(ids(&broken), ["smtp.tls-failed:warn"], "{broken:#?}");
    assert!(
        message(&broken[0]).starts_with(
            "The TLS handshake with mx.drukkerij-vos.nl (127.0.0.27) failed after STARTTLS"
        ),
        "{}",
        message(&broken[0])
    );
    let refused = smtp(&report, "molenwerf.nl");
    assert_eq!(ids(&refused), ["smtp.tls-failed:warn"], "{refused:#?}");
    assert!(
        message(&refused[0]).contains(
            "offers STARTTLS but answered it with `454 4.7.0 TLS not available due to temporary reason`"
        ),
        "{}",
        message(&refused[0])
    );
    let old = smtp(&report, "pakkasherra.fi");
    assert_eq!(ids(&old), ["smtp.old-tls:warn"], "{old:#?}");
    assert!(
        message(&old[0]).starts_with("mx.pakkasherra.fi (127.0.0.34) offers no TLS 1.2 or 1.3"),
        "{}",
        message(&old[0])
    );
}

#[test]
fn a_554_greeting_is_noted_and_answered_with_quit() {
    let lab = lab();
    let (report, _) = lab.check(&["hollandsedrop.nl"]);
    let found = smtp(&report, "hollandsedrop.nl");
    assert_eq!(ids(&found), ["smtp.banner:warn"], "{found:#?}");
    assert!(
        message(&found[0]).starts_with(
            "mx.hollandsedrop.nl (127.0.0.28) refused the session with `554 5.7.1 No SMTP service here`"
        ),
        "{}",
        message(&found[0])
    );
    assert_eq!(lab.smtp.commands(ip(28)), ["QUIT"]);
}

/// An endless greeting line, a server that never speaks and an endless EHLO reply: each is cut
/// off by a bound, and the whole domain is done within the per-host deadline (3 s here).
#[test]
fn hostile_servers_are_bounded_and_the_probe_ends_within_its_deadline() {
    let lab = lab();
    let started = Instant::now();
    let (report, _) = lab.check(&["revontuli.fi"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(9), "took {took:?}");
    let found = smtp(&report, "revontuli.fi");
    let by_host = |host: &str| -> &serde_json::Value {
        found
            .iter()
            .find(|f| f["data"]["host"] == host)
            .unwrap_or_else(|| panic!("no finding for {host}: {found:#?}"))
    };
    let endless = by_host("mx1.revontuli.fi");
    assert_eq!(endless["id"], "smtp.banner");
    assert_eq!(endless["severity"], "warn");
    assert!(
        message(endless).contains("a line longer than 2048 bytes"),
        "{}",
        message(endless)
    );
    let silent = by_host("mx2.revontuli.fi");
    assert_eq!(silent["id"], "smtp.unreachable");
    assert_eq!(silent["severity"], "inconclusive");
    assert!(
        message(silent).contains("no greeting came within 3 s"),
        "{}",
        message(silent)
    );
    let chatty = by_host("mx3.revontuli.fi");
    assert_eq!(chatty["id"], "smtp.protocol");
    assert!(
        message(chatty).contains("a reply of more than 64 lines"),
        "{}",
        message(chatty)
    );
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn a_refused_connection_is_inconclusive_and_says_port_25_may_be_blocked() {
    let lab = lab();
    let (report, code) = lab.check(&["tunturi.fi"]);
    let found = smtp(&report, "tunturi.fi");
    assert_eq!(ids(&found), ["smtp.unreachable:inconclusive"], "{found:#?}");
    let text = message(&found[0]);
    assert!(text.contains("127.0.0.32"), "{text}");
    assert!(text.contains("the connection was refused"), "{text}");
    assert!(
        text.contains("Many networks block outgoing connections to port 25"),
        "{text}"
    );
    assert_ne!(code, 1, "nothing here is the domain's fault");
}

#[test]
fn off_by_default_and_never_with_offline() {
    let lab = lab();
    let output = mailshift()
        .args([
            "check",
            "lumimarja.fi",
            "--format",
            "json",
            "--selector",
            "s1",
        ])
        .args(["--timeout", "2", "--retries", "0"])
        .args(["--nameserver", &lab.dns.nameserver_arg()])
        .arg("--https-ca")
        .arg(lab.https.ca_file())
        .args(["--https-port", &lab.https.port().to_string()])
        .args(["--smtp-port", &lab.smtp.port().to_string()])
        .output()
        .unwrap();
    let report = json(&output.stdout);
    assert!(smtp(&report, "lumimarja.fi").is_empty());
    assert!(lab.smtp.all_commands().is_empty());

    let output = mailshift()
        .args([
            "check",
            "lumimarja.fi",
            "--probe-smtp",
            "--offline",
            "--format",
            "json",
        ])
        .arg("--zone")
        .arg(fixtures().join("zones-smtp"))
        .args(["--smtp-port", &lab.smtp.port().to_string()])
        .output()
        .unwrap();
    let report = json(&output.stdout);
    let found = smtp(&report, "lumimarja.fi");
    assert_eq!(ids(&found), ["smtp.unchecked:info"], "{found:#?}");
    assert!(message(&found[0]).contains("--offline"));
    assert!(lab.smtp.all_commands().is_empty());
}
