//! Seed tests end to end over loopback: `seed send` → lettre → the seed inbox, with DKIM keys
//! from `fixtures/keys/` published through the in-process DNS server; hostile SMTP; swaks as a
//! third-party client; durability across a kill.

mod support;

use mailshift::seed::inbox::tls_config;
use mailshift::seed::send::Signer;
use mailshift::seed::store::StoreReader;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::inbox::{start_inbox, Client};
use support::{fixture_server, fixtures, json, mailshift, run_json};

/// A test CA and a certificate for `localhost`, as PEM files in `dir`: (ca, cert, key).
fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mailshift test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn signed_message(domain: &str, from: &str, token: &str, body: &str) -> Vec<u8> {
    let message = format!(
        "From: <{from}>\r\nTo: <inbox1@seeds.test>\r\nSubject: hand-made seed {token}\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{token}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nList-Unsubscribe: <https://{domain}/u?t={token}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nX-Mailshift-Token: {token}\r\n\r\n{body}\r\n"
    );
    let pem = std::fs::read_to_string(fixtures().join("keys/rsa2048.pem")).unwrap();
    let signer = Signer::load(&pem, domain, "seed").unwrap();
    signer.sign(message.as_bytes()).unwrap()
}

fn verdict_of(store: &Path, token: &str) -> Value {
    let reader = StoreReader::open(store).unwrap().unwrap();
    let arrival = reader
        .arrivals()
        .unwrap()
        .into_iter()
        .find(|a| a.token.as_deref() == Some(token))
        .unwrap_or_else(|| panic!("no arrival with token {token}"));
    arrival.verdict
}

fn copy_plan(dir: &Path) -> PathBuf {
    let plan = dir.join("seed.toml");
    std::fs::copy(fixtures().join("plans/seed.toml"), &plan).unwrap();
    plan
}

#[test]
fn seeds_sent_over_starttls_arrive_authenticated_and_open_the_gate() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_plan(dir.path());
    let store = dir.path().join("seed.seed.db");
    let (ca, cert, key) = test_certificates(dir.path());
    let tls = tls_config(&cert, &key).unwrap();
    let inbox = start_inbox(dns.addr(), &store, move |c| c.tls = Some(tls));
    let sent = run_json(
        mailshift()
            .args(["seed", "send"])
            .arg(&plan)
            .args([
                "--stage",
                "seed",
                "--relay",
                &format!("localhost:{}", inbox.addr.port()),
            ])
            .arg("--ca-file")
            .arg(&ca)
            .arg("--dkim-key")
            .arg(fixtures().join("keys/rsa2048.pem"))
            .args(["--selector", "seed", "--format", "json"]),
        0,
    );
    let tokens: Vec<String> = sent["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens.len(), 2);
    for t in &tokens {
        let v = verdict_of(&store, t);
        assert_eq!(v["spf"]["result"], "pass", "{v:#}");
        assert_eq!(v["spf"]["aligned"], true, "{v:#}");
        assert_eq!(v["dkim"][0]["result"], "pass", "{v:#}");
        assert_eq!(v["dkim"][0]["aligned"], true, "{v:#}");
        assert_eq!(v["dmarc"]["result"], "pass", "{v:#}");
        assert_eq!(v["one_click_unsubscribe"], true, "{v:#}");
    }
    let results = run_json(
        mailshift()
            .args(["seed", "results"])
            .arg(&plan)
            .args(["--format", "json"]),
        0,
    );
    for seed in results["seeds"].as_array().unwrap() {
        assert_eq!(seed["status"], "pass", "{seed:#}");
        assert_eq!(seed["arrival"]["tls"], true, "{seed:#}");
    }
    let gate = run_json(
        mailshift().arg("gate").arg(&plan).args([
            "--stage",
            "seed",
            "--format",
            "json",
            "--no-record",
            "--offline",
            "--force",
            "evaluating this stage on its own in a test",
        ]),
        0,
    );
    assert_eq!(gate["requirements"][0]["status"], "passed", "{gate:#}");
    // Gmail's rules that only a real message can prove are decided by the arrived seeds; the
    // rest of the policy comes from DNS (the fixture zones), and rules mailshift cannot measure
    // stay deferred.
    let text = std::fs::read_to_string(&plan).unwrap().replacen(
        "requires = [\"seed\"]",
        "requires = [\"seed\", \"policy:gmail-2024\"]",
        1,
    );
    std::fs::write(&plan, text).unwrap();
    let gate = json(
        &mailshift()
            .arg("gate")
            .arg(&plan)
            .args(["--stage", "seed", "--format", "json", "--no-record"])
            .args(["--force", "evaluating this stage on its own in a test"])
            .arg("--zone")
            .arg(fixtures().join("zones"))
            .arg("--offline")
            .output()
            .unwrap()
            .stdout,
    );
    let rules = gate["requirements"][1]["rules"].as_array().unwrap();
    let rule = |id: &str| {
        rules
            .iter()
            .find(|r| r["rule"] == id)
            .unwrap_or_else(|| panic!("no rule {id} in {gate:#}"))
    };
    for id in ["tls", "one-click-unsubscribe", "message-format"] {
        assert_eq!(rule(id)["status"], "passed", "{id}: {gate:#}");
    }
    assert_eq!(rule("no-gmail-impersonation")["status"], "deferred");
    assert_eq!(rule("spam-rate")["status"], "deferred");
    // The next stage's seeds have not been sent: its gate cannot be judged yet.
    let gate = run_json(
        mailshift().arg("gate").arg(&plan).args([
            "--stage",
            "warmup-1",
            "--format",
            "json",
            "--no-record",
            "--offline",
            "--force",
            "evaluating this stage on its own in a test",
        ]),
        3,
    );
    assert!(gate["requirements"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("no seeds were sent for stage `warmup-1`"));
    drop(inbox);
}

#[test]
fn tampered_body_wrong_ip_and_foreign_signer_fail_what_they_should() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("seed.db");
    let inbox = start_inbox(dns.addr(), &store, |_| {});
    // A good one, for contrast.
    let good = signed_message(
        "seed-sender.test",
        "news@seed-sender.test",
        "good1",
        "Hello.",
    );
    let (mut c, _) = Client::connect(inbox.addr);
    assert!(c
        .deliver(
            "relay.test",
            "bounce@seed-sender.test",
            "inbox1@seeds.test",
            &good
        )
        .starts_with("250"));
    // Body changed after signing: DKIM fails (and with SPF still aligned, DMARC passes on SPF).
    let tampered = String::from_utf8(signed_message(
        "seed-sender.test",
        "news@seed-sender.test",
        "tamper1",
        "Hello.",
    ))
    .unwrap()
    .replace("Hello.", "Hello, changed in transit.");
    assert!(c
        .deliver(
            "relay.test",
            "bounce@seed-sender.test",
            "inbox1@seeds.test",
            tampered.as_bytes()
        )
        .starts_with("250"));
    // Sent from an IP the SPF record does not list.
    let wrong_ip = signed_message(
        "seed-wrongip.test",
        "news@seed-wrongip.test",
        "wrongip1",
        "Hello.",
    );
    assert!(c
        .deliver(
            "relay.test",
            "bounce@seed-wrongip.test",
            "inbox1@seeds.test",
            &wrong_ip
        )
        .starts_with("250"));
    // Signed and bounced by the platform's own domain: authenticates, does not align.
    let foreign = String::from_utf8(signed_message(
        "foreign-signer.test",
        "news@seed-sender.test",
        "foreign1",
        "Hello.",
    ))
    .unwrap();
    assert!(c
        .deliver(
            "relay.test",
            "bounce@foreign-signer.test",
            "inbox1@seeds.test",
            foreign.as_bytes()
        )
        .starts_with("250"));
    c.cmd("QUIT");
    drop(inbox);

    let v = verdict_of(&store, "good1");
    assert_eq!(
        (
            v["spf"]["result"].as_str(),
            v["dkim"][0]["result"].as_str(),
            v["dmarc"]["result"].as_str()
        ),
        (Some("pass"), Some("pass"), Some("pass")),
        "{v:#}"
    );
    let v = verdict_of(&store, "tamper1");
    assert_ne!(
        v["dkim"][0]["result"], "pass",
        "a changed body must fail DKIM: {v:#}"
    );
    let v = verdict_of(&store, "wrongip1");
    assert_eq!(v["spf"]["result"], "fail", "{v:#}");
    let v = verdict_of(&store, "foreign1");
    assert_eq!(v["dkim"][0]["result"], "pass", "{v:#}");
    assert_eq!(v["dkim"][0]["aligned"], false, "{v:#}");
    assert_eq!(v["spf"]["aligned"], false, "{v:#}");
    assert_eq!(v["dmarc"]["result"], "fail", "{v:#}");
}

#[test]
fn the_inbox_asks_dns_again_after_its_cache_lifetime() {
    // An inbox runs for weeks: a DKIM key rotated meanwhile must be seen, so answers expire.
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("seed.db");
    let inbox = start_inbox(dns.addr(), &store, |c| {
        c.dns_cache_lifetime = Duration::from_secs(1)
    });
    let key_questions = || {
        dns.queries()
            .iter()
            .filter(|(name, _)| name.starts_with("seed._domainkey.seed-sender.test"))
            .count()
    };
    let (mut c, _) = Client::connect(inbox.addr);
    for (token, pause) in [("cache1", 0), ("cache2", 0), ("cache3", 1500)] {
        std::thread::sleep(Duration::from_millis(pause));
        let message = signed_message("seed-sender.test", "news@seed-sender.test", token, "Hi.");
        let reply = c.deliver(
            "relay.test",
            "bounce@seed-sender.test",
            "inbox1@seeds.test",
            &message,
        );
        assert!(reply.starts_with("250"), "{reply}");
        if token == "cache2" {
            assert_eq!(key_questions(), 1, "the second message reuses the key");
        }
    }
    assert_eq!(
        key_questions(),
        2,
        "after the lifetime, the key is asked again"
    );
    c.cmd("QUIT");
    drop(inbox);
    assert_eq!(verdict_of(&store, "cache3")["dkim"][0]["result"], "pass");
}

#[test]
fn hostile_smtp_gets_proper_replies_and_never_takes_the_inbox_down() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("seed.db");
    let inbox = start_inbox(dns.addr(), &store, |c| {
        c.max_message_size = 10_000;
        c.max_errors = 8;
    });
    let (mut c, greeting) = Client::connect(inbox.addr);
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(
        c.cmd("MAIL FROM:<a@b.test>").starts_with("503"),
        "MAIL before EHLO"
    );
    assert!(c.cmd("EHLO client.test").starts_with("250-"));
    assert!(c.cmd("DATA").starts_with("503"), "DATA before RCPT");
    assert!(
        c.cmd("RCPT TO:<inbox1@seeds.test>").starts_with("503"),
        "RCPT before MAIL"
    );
    assert!(c.cmd("MAIL FROM:<a@b.test>").starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<victim@elsewhere.test>")
            .starts_with("550 5.7.1"),
        "no relaying"
    );
    assert!(c.cmd("RCPT TO:<inbox1@seeds.test>").starts_with("250"));
    assert!(c.cmd("AUTH PLAIN AGFAYg==").starts_with("502"));
    assert!(c.cmd("DATA").starts_with("354"));
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(50_000));
    assert!(
        c.send(big.as_bytes()).starts_with("552"),
        "over the size limit"
    );
    assert!(
        c.cmd("NOOP").starts_with("250"),
        "the session goes on after 552"
    );
    c.cmd("QUIT");

    // Garbage: binary noise, an over-long line, unknown commands, until the error limit closes.
    let (mut c, _) = Client::connect(inbox.addr);
    let reply = c.send(b"\x00\xff\xfe garbage \x01\x02\r\n");
    assert!(reply.starts_with('5'), "{reply:?}");
    let reply = c.send(format!("EHLO {}\r\n", "a".repeat(10_000)).as_bytes());
    assert!(
        reply.starts_with('5'),
        "an over-long line gets a 5xx: {reply:?}"
    );
    let mut last = String::new();
    for _ in 0..8 {
        last = c.cmd("FROBNICATE now");
        if last.contains("421") {
            break;
        }
    }
    assert!(
        last.contains("421"),
        "too many errors close the session: {last:?}"
    );
    // A client that disconnects mid-DATA loses nothing it was told was stored, and the inbox
    // still serves the next one.
    let (mut c, _) = Client::connect(inbox.addr);
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<a@b.test>");
    c.cmd("RCPT TO:<inbox2@seeds.test>");
    c.cmd("DATA");
    c.writer
        .write_all(b"Subject: cut\r\n\r\nhalf a mess")
        .unwrap();
    drop(c);
    let (mut c, _) = Client::connect(inbox.addr);
    let reply = c.deliver(
        "client.test",
        "",
        "inbox2@seeds.test",
        b"Subject: fine\r\nX-Mailshift-Token: after1\r\n\r\nok",
    );
    assert!(reply.starts_with("250 2.0.0 Stored"), "{reply}");
    drop(inbox);
    let reader = StoreReader::open(&store).unwrap().unwrap();
    assert_eq!(
        reader.arrival_count().unwrap(),
        1,
        "only the complete message was stored"
    );
}

#[test]
fn connections_over_the_limit_are_told_to_come_back() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let inbox = start_inbox(dns.addr(), &dir.path().join("seed.db"), |c| {
        c.max_connections = 1
    });
    let (_first, greeting) = Client::connect(inbox.addr);
    assert!(greeting.starts_with("220"));
    let (_second, greeting) = Client::connect(inbox.addr);
    assert!(greeting.starts_with("421 4.3.2"), "{greeting}");
}

#[test]
fn swaks_talks_to_the_inbox_in_plain_text_and_over_starttls() {
    let swaks = std::process::Command::new("swaks")
        .arg("--version")
        .output();
    assert!(swaks.is_ok(), "swaks is required for this test (.ci/run installs it: apt-get install swaks libio-socket-ssl-perl)");
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("seed.db");
    let (_, cert, key) = test_certificates(dir.path());
    let tls = tls_config(&cert, &key).unwrap();
    let inbox = start_inbox(dns.addr(), &store, move |c| c.tls = Some(tls));
    let server = format!("127.0.0.1:{}", inbox.addr.port());
    for (token, tls) in [("swaks1", false), ("swaks2", true)] {
        let mut cmd = std::process::Command::new("swaks");
        cmd.args([
            "--server",
            &server,
            "--to",
            "inbox1@seeds.test",
            "--from",
            "tester@seed-sender.test",
        ])
        .args([
            "--helo",
            "swaks.test",
            "--header",
            &format!("X-Mailshift-Token: {token}"),
        ])
        .args(["--timeout", "20"]);
        if tls {
            cmd.arg("--tls");
        }
        let out = cmd.output().unwrap();
        let transcript = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "swaks failed:\n{transcript}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            transcript.contains("250 2.0.0 Stored as message"),
            "{transcript}"
        );
    }
    // Relaying is refused to swaks too.
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            &server,
            "--to",
            "someone@example.org",
            "--from",
            "tester@seed-sender.test",
            "--timeout",
            "20",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("550 5.7.1"));
    drop(inbox);
    let reader = StoreReader::open(&store).unwrap().unwrap();
    let arrivals = reader.arrivals().unwrap();
    assert_eq!(arrivals.len(), 2);
    assert!(
        !arrivals[0].tls && arrivals[1].tls,
        "the STARTTLS session is recorded as TLS"
    );
}

#[test]
fn a_message_acknowledged_with_250_survives_a_kill() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_plan(dir.path());
    let store = dir.path().join("durable.db");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mailshift"))
        .args(["seed", "inbox"])
        .arg(&plan)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--nameserver",
            &dns.nameserver_arg(),
            "--store",
        ])
        .arg(&store)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();
    let (mut c, _) = Client::connect(addr);
    let reply = c.deliver(
        "relay.test",
        "bounce@seed-sender.test",
        "inbox1@seeds.test",
        b"Subject: durable\r\nX-Mailshift-Token: durable1\r\n\r\nbody",
    );
    assert!(reply.starts_with("250"), "{reply}");
    child.kill().unwrap();
    child.wait().unwrap();
    let reader = StoreReader::open(&store).unwrap().unwrap();
    let arrivals = reader.arrivals().unwrap();
    assert_eq!(arrivals.len(), 1);
    assert_eq!(arrivals[0].token.as_deref(), Some("durable1"));
    let raw = reader.message(arrivals[0].id).unwrap().unwrap();
    let mut text = String::new();
    raw.as_slice().read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("Received: from relay.test ([127.0.0.1]) by mailshift-seed-inbox"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\nbody\r\n"),
        "the message as sent, up to the final CRLF: {text:?}"
    );
}

#[test]
fn secrets_never_reach_output() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("secret.toml");
    let text = std::fs::read_to_string(fixtures().join("plans/seed.toml"))
        .unwrap()
        .replace("tls = \"starttls\"", "tls = \"none\"\nusername = \"apikey\"\npassword_env = \"MAILSHIFT_TEST_RELAY_PASSWORD\"");
    std::fs::write(&plan, text).unwrap();
    let inbox = start_inbox(dns.addr(), &dir.path().join("seed.db"), |_| {});
    let secret = "Sup3r-S3cret-value-9f2c";
    for format in ["table", "json"] {
        let out = mailshift()
            .args(["seed", "send"])
            .arg(&plan)
            .args([
                "--stage",
                "seed",
                "--allow-plaintext",
                "--relay",
                &format!("127.0.0.1:{}", inbox.addr.port()),
                "--format",
                format,
            ])
            .arg("--store")
            .arg(dir.path().join("seed.db"))
            .env("MAILSHIFT_TEST_RELAY_PASSWORD", secret)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(secret), "the secret leaked:\n{all}");
        // The inbox offers no AUTH, so the relay step fails: but it says so without the secret.
        assert_ne!(out.status.code(), Some(0), "{all}");
    }
    // The plan refuses a secret written into it.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&plan).unwrap().replace(
            "password_env = \"MAILSHIFT_TEST_RELAY_PASSWORD\"",
            &format!("password = \"{secret}\""),
        ),
    )
    .unwrap();
    let out = mailshift()
        .args(["plan", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("never put a secret in the plan"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret));
    drop(inbox);
}

#[test]
fn seeds_never_travel_unencrypted_unless_both_plan_and_flag_say_so() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("seed.db");
    // An inbox without a certificate: it cannot offer STARTTLS.
    let inbox = start_inbox(dns.addr(), &store, |_| {});
    let relay = format!("127.0.0.1:{}", inbox.addr.port());
    let send = |plan: &Path, extra: &[&str]| {
        mailshift()
            .args(["seed", "send"])
            .arg(plan)
            .args(["--stage", "seed", "--relay", &relay, "--store"])
            .arg(&store)
            .args(extra)
            .output()
            .unwrap()
    };
    // The plan asks for STARTTLS and the relay has none: nothing is sent in plain text.
    let plan = copy_plan(dir.path());
    let out = send(&plan, &["--allow-plaintext"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("NOT SENT"), "{stdout}{stderr}");
    // tls = "none" in the plan still needs --allow-plaintext on the command line.
    let plain = dir.path().join("plain.toml");
    std::fs::write(
        &plain,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replace("tls = \"starttls\"", "tls = \"none\""),
    )
    .unwrap();
    let out = send(&plain, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--allow-plaintext"), "{stderr}");
    // Both: sent, and it arrives (without TLS, which the seed results report).
    let out = send(&plain, &["--allow-plaintext", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(inbox);
    let reader = StoreReader::open(&store).unwrap().unwrap();
    let arrivals = reader.arrivals().unwrap();
    assert_eq!(
        arrivals.len(),
        2,
        "only the two plaintext-allowed seeds arrived"
    );
    assert!(arrivals.iter().all(|a| !a.tls));
}

/// A relay that echoes the credentials it is sent in its rejection, as some do: the raw
/// password, the base64 of the AUTH PLAIN message and of the AUTH LOGIN answers.
struct EchoRelay {
    addr: SocketAddr,
}

fn echo_relay(mechanism: &'static str) -> EchoRelay {
    use base64::Engine;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let b64 = base64::engine::general_purpose::STANDARD;
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let next = |reader: &mut BufReader<TcpStream>, line: &mut String| {
                    line.clear();
                    reader.read_line(line).unwrap_or(0) > 0
                };
                let _ = writer.write_all(b"220 echo.test ESMTP\r\n");
                while next(&mut reader, &mut line) {
                    let upper = line.trim().to_ascii_uppercase();
                    let reply = if upper.starts_with("EHLO") {
                        format!("250-echo.test\r\n250-AUTH {mechanism}\r\n250 8BITMIME\r\n")
                    } else if upper.starts_with("AUTH PLAIN") {
                        let blob = line.trim()[10..].trim().to_string();
                        let decoded = b64.decode(&blob).unwrap_or_default();
                        let raw = String::from_utf8_lossy(&decoded).replace('\0', " ");
                        format!("535 5.7.8 Authentication failed for {blob} ({raw})\r\n")
                    } else if upper.starts_with("AUTH LOGIN") {
                        let _ = writer.write_all(b"334 VXNlcm5hbWU6\r\n");
                        next(&mut reader, &mut line);
                        let user = line.trim().to_string();
                        let _ = writer.write_all(b"334 UGFzc3dvcmQ6\r\n");
                        next(&mut reader, &mut line);
                        let pass = line.trim().to_string();
                        let raw = String::from_utf8_lossy(&b64.decode(&pass).unwrap_or_default())
                            .into_owned();
                        format!("535 5.7.8 Bad credentials {user} / {pass} / {raw}\r\n")
                    } else if upper.starts_with("QUIT") {
                        let _ = writer.write_all(b"221 bye\r\n");
                        return;
                    } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                        "250 ok\r\n".to_string()
                    } else {
                        "502 5.5.2 not here\r\n".to_string()
                    };
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    EchoRelay { addr }
}

#[test]
fn a_relay_that_echoes_the_credentials_never_gets_them_into_output_store_or_results() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("echo.toml");
    std::fs::write(
        &plan,
        std::fs::read_to_string(fixtures().join("plans/seed.toml"))
            .unwrap()
            .replace(
                "tls = \"starttls\"",
                "tls = \"none\"\nusername_env = \"MAILSHIFT_TEST_ECHO_USER\"\npassword_env = \"MAILSHIFT_TEST_ECHO_KEY\"",
            ),
    )
    .unwrap();
    let store = dir.path().join("echo.db");
    let user = "ops-relay@northwind.example";
    let secret = "SG.Zq9-echo.s3cret_value-77";
    let forbidden = [
        secret.to_string(),
        b64.encode(secret),
        b64.encode(format!("\0{user}\0{secret}")),
        user.to_string(),
        b64.encode(user),
    ];
    // Runs with the secrets in the environment: the exit code, and stdout and stderr together.
    let with_secrets = |cmd: &mut assert_cmd::Command| {
        let out = cmd
            .env("MAILSHIFT_TEST_ECHO_USER", user)
            .env("MAILSHIFT_TEST_ECHO_KEY", secret)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), all)
    };
    let leaks = |text: &str| -> Vec<String> {
        forbidden
            .iter()
            .filter(|f| text.contains(f.as_str()))
            .cloned()
            .collect()
    };
    for mechanism in ["PLAIN", "LOGIN"] {
        let relay = echo_relay(mechanism);
        for format in ["table", "json"] {
            let (code, all) = with_secrets(
                mailshift()
                    .args(["seed", "send"])
                    .arg(&plan)
                    .args(["--stage", "seed", "--allow-plaintext", "--relay"])
                    .arg(relay.addr.to_string())
                    .args(["--format", format, "--store"])
                    .arg(&store),
            );
            assert_eq!(code, Some(1), "refused by the relay: {all}");
            assert!(
                leaks(&all).is_empty(),
                "{mechanism} {format}: leaked {:?} in\n{all}",
                leaks(&all)
            );
            assert!(
                all.contains("[redacted]"),
                "{mechanism} {format}: the echo is shown, redacted:\n{all}"
            );
        }
    }
    // The store holds the relay's answers, redacted.
    let reader = StoreReader::open(&store).unwrap().unwrap();
    let sent = reader.sent(None).unwrap();
    assert_eq!(sent.len(), 8);
    for s in &sent {
        assert!(leaks(&s.relay_response).is_empty(), "{}", s.relay_response);
        assert!(!s.accepted);
    }
    drop(reader);
    // A store written before redaction existed still never shows the secret.
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.execute(
            "UPDATE sent SET relay_response = ?1",
            [format!(
                "535 echo {secret} {}",
                b64.encode(format!("\0{user}\0{secret}"))
            )],
        )
        .unwrap();
    }
    for format in ["table", "json"] {
        let (_, all) = with_secrets(
            mailshift()
                .args(["seed", "results"])
                .arg(&plan)
                .args(["--format", format, "--store"])
                .arg(&store),
        );
        assert!(leaks(&all).is_empty(), "results {format}: leaked in\n{all}");
        assert!(all.contains("[redacted]"), "{all}");
    }
}

#[test]
fn a_seed_gate_that_passes_with_warnings_says_so_in_its_summary() {
    // Two seeds arrive signed and aligned, but over plain SMTP: the `seed` requirement passes
    // (a missing TLS is a warning for the seed itself), and its summary agrees with that.
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("plain.seed.db");
    let inbox = start_inbox(dns.addr(), &store, |_| {});
    let plan = dir.path().join("plain.toml");
    std::fs::write(
        &plan,
        std::fs::read_to_string(fixtures().join("plans/seed.toml"))
            .unwrap()
            .replace("tls = \"starttls\"", "tls = \"none\""),
    )
    .unwrap();
    run_json(
        mailshift()
            .args(["seed", "send"])
            .arg(&plan)
            .args([
                "--stage",
                "seed",
                "--relay",
                &format!("127.0.0.1:{}", inbox.addr.port()),
                "--allow-plaintext",
            ])
            .arg("--dkim-key")
            .arg(fixtures().join("keys/rsa2048.pem"))
            .args(["--selector", "seed", "--format", "json"]),
        0,
    );
    drop(inbox);
    let gate = run_json(
        mailshift().arg("gate").arg(&plan).args([
            "--stage",
            "seed",
            "--format",
            "json",
            "--no-record",
            "--offline",
        ]),
        0,
    );
    let seed = &gate["requirements"][0];
    assert_eq!(seed["status"], "passed", "{gate:#}");
    assert_eq!(
        seed["summary"],
        "2 of 2 seeds sent for `seed` arrived authenticated and aligned (2 with warnings: seed.tls)"
    );
}
