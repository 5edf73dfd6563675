//! Verify benchmark: how fast `mailshift::verify::verify_message` verifies DKIM-signed marketing
//! messages, the way `mailshift verify` and the seed inbox call it (one shared resolver, bounded
//! concurrency, a task per message on a 2-worker runtime).
//!
//! ```text
//! cargo bench --bench verify_bench                                  # 1,000 messages, concurrency 64
//! cargo bench --bench verify_bench -- --messages 5000 --concurrency 1,16,64 --reps 5
//! cargo bench --bench verify_bench -- --compare-mailauth            # also Node's mailauth
//! cargo bench --bench verify_bench -- --profile                     # where the time goes
//! ```
//!
//! The set is generated deterministically: 40 sending brands on 4 ESPs. Each message is 8–30 KB
//! (multipart text + HTML), from `news@brandN.test`, DKIM-signed by the brand (RSA-2048 for most,
//! Ed25519 for one brand in six) and, for half of them, also by the ESP (RSA-2048), with
//! one-click unsubscribe headers covered by the brand's signature, a Return-Path under the brand
//! (`bounce.brandN.test`) whose SPF includes the ESP's record, which includes two more (three
//! levels), a DMARC record `p=reject` at every brand, and the receiver's Received header with
//! an ESP address. The zones are served by the in-process test DNS server
//! (`tests/support/dns_server.rs`) on loopback; every repetition starts with a cold resolver.
//! Keys: `fixtures/keys/rsa2048.pem` and `ed25519.pem`.
//!
//! Printed per concurrency: wall time, messages/s (best and median of the repetitions), DNS
//! queries per repetition (the resolver's and the server's count), peak resident memory, and
//! the verdicts (every message must pass: a benchmark that verifies nothing would be fast for
//! nothing). `--profile` times the stages of one message apart (parse, DKIM, SPF, DMARC, the
//! header rules) to show where the time goes.
//!
//! `--compare-mailauth` runs postalsys/mailauth (Node) on the same messages against the same
//! DNS server (`benches/compare_mailauth.js`), one at a time and 16 at a time. It needs
//! `npm install mailauth` in `target/mailauth-bench/` (see that script) and is skipped with a
//! message when Node or the package is missing.

#[path = "../tests/support/dns_server.rs"]
mod dns_server;
mod support;

use base64::Engine;
use dns_server::TestDnsServer;
use futures::StreamExt;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mailshift::dns::{DnsConfig, Resolver};
use mailshift::finding::Status;
use mailshift::verify::{verify_message, Envelope};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{mib, proc_status_kib, reset_peak_rss, Rng};

const BRANDS: usize = 40;
const ESPS: usize = 4;

struct Args {
    messages: usize,
    concurrency: Vec<usize>,
    reps: usize,
    compare_mailauth: bool,
    profile: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        messages: 1000,
        concurrency: vec![64],
        reps: 5,
        compare_mailauth: false,
        profile: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--messages" => args.messages = it.next().and_then(|v| v.parse().ok()).unwrap_or(1000),
            "--concurrency" => {
                args.concurrency = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|v| v.trim().parse().ok())
                    .collect()
            }
            "--reps" => args.reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--compare-mailauth" => args.compare_mailauth = true,
            "--profile" => args.profile = true,
            // cargo bench passes `--bench`.
            _ => {}
        }
    }
    if args.concurrency.is_empty() {
        args.concurrency = vec![64];
    }
    args
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rsa_key() -> RsaKey<Sha256> {
    let pem = std::fs::read_to_string(root().join("fixtures/keys/rsa2048.pem")).unwrap();
    let der = rustls_pemfile::private_key(&mut pem.as_bytes())
        .unwrap()
        .unwrap();
    RsaKey::<Sha256>::from_key_der(der).unwrap()
}

fn ed_key() -> Ed25519Key {
    let pem = std::fs::read_to_string(root().join("fixtures/keys/ed25519.pem")).unwrap();
    let der = rustls_pemfile::private_key(&mut pem.as_bytes())
        .unwrap()
        .unwrap();
    Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_der()).unwrap()
}

fn quote(value: &str) -> String {
    value
        .as_bytes()
        .chunks(200)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn esp_ip(esp: usize, host: usize) -> String {
    format!("198.18.{}.{}", 10 + esp, 1 + host % 250)
}

fn uses_ed25519(brand: usize) -> bool {
    brand % 6 == 5
}

/// DER length octets.
fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=127 => vec![len as u8],
        128..=255 => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

/// A PKCS#1 RSAPublicKey wrapped as the SubjectPublicKeyInfo DKIM records publish (RFC 6376
/// §3.6.1; Node's crypto, hence mailauth, reads only this form).
fn spki(pkcs1: &[u8]) -> Vec<u8> {
    let algorithm: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    bits.extend(der_len(pkcs1.len() + 1));
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    out.extend(der_len(algorithm.len() + bits.len()));
    out.extend_from_slice(algorithm);
    out.extend(bits);
    out
}

/// The zones: one per brand and per ESP, and the `test.` zone above them.
fn write_zones(dir: &Path) {
    let rsa = base64::engine::general_purpose::STANDARD.encode(spki(&rsa_key().public_key()));
    let ed = base64::engine::general_purpose::STANDARD.encode(ed_key().public_key());
    let soa = |origin: &str| {
        format!(
            "$ORIGIN {origin}.\n$TTL 3600\n@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300\n@ IN NS ns.{origin}.\nns IN A 192.0.2.53\n"
        )
    };
    std::fs::write(dir.join("test.zone"), soa("test")).unwrap();
    for esp in 0..ESPS {
        let mut z = soa(&format!("esp{esp}.test"));
        writeln!(
            z,
            "_spf IN TXT \"v=spf1 include:_nets1.esp{esp}.test include:_nets2.esp{esp}.test ~all\""
        )
        .unwrap();
        writeln!(
            z,
            "_nets1 IN TXT \"v=spf1 ip4:198.19.{esp}.0/24 ip6:2001:db8:{esp}::/48 -all\""
        )
        .unwrap();
        writeln!(
            z,
            "_nets2 IN TXT \"v=spf1 ip4:198.18.{}.0/24 -all\"",
            10 + esp
        )
        .unwrap();
        writeln!(
            z,
            "esp._domainkey IN TXT {}",
            quote(&format!("v=DKIM1; k=rsa; p={rsa}"))
        )
        .unwrap();
        writeln!(z, "_dmarc IN TXT \"v=DMARC1; p=none\"").unwrap();
        std::fs::write(dir.join(format!("esp{esp}.test.zone")), z).unwrap();
    }
    for brand in 0..BRANDS {
        let esp = brand % ESPS;
        let mut z = soa(&format!("brand{brand}.test"));
        writeln!(z, "@ IN TXT \"v=spf1 include:_spf.esp{esp}.test -all\"").unwrap();
        writeln!(
            z,
            "bounce IN TXT \"v=spf1 include:_spf.esp{esp}.test -all\""
        )
        .unwrap();
        writeln!(
            z,
            "_dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@brand{brand}.test\""
        )
        .unwrap();
        let key = if uses_ed25519(brand) {
            format!("v=DKIM1; k=ed25519; p={ed}")
        } else {
            format!("v=DKIM1; k=rsa; p={rsa}")
        };
        writeln!(z, "s1._domainkey IN TXT {}", quote(&key)).unwrap();
        writeln!(z, "@ IN MX 10 mx.brand{brand}.test.").unwrap();
        writeln!(z, "mx IN A 192.0.2.{}", 1 + brand).unwrap();
        std::fs::write(dir.join(format!("brand{brand}.test.zone")), z).unwrap();
    }
}

const WORDS: &[&str] = &[
    "spring",
    "sale",
    "garden",
    "chair",
    "offer",
    "limited",
    "today",
    "free",
    "shipping",
    "discount",
    "members",
    "exclusive",
    "collection",
    "new",
    "arrivals",
    "classic",
    "outdoor",
    "summer",
    "cotton",
    "linen",
    "weekend",
    "deal",
    "save",
    "more",
    "style",
];

/// Signs a message, giving the DKIM-Signature field.
type Sign = Box<dyn Fn(&[u8]) -> String>;

/// The signers: each brand's (RSA-2048 or Ed25519) and each ESP's (RSA-2048).
struct Signers {
    brands: Vec<Sign>,
    esps: Vec<Sign>,
}

const SIGNED: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
];

impl Signers {
    fn new() -> Signers {
        let brands = (0..BRANDS)
            .map(|brand| -> Sign {
                let domain = format!("brand{brand}.test");
                if uses_ed25519(brand) {
                    let signer = DkimSigner::from_key(ed_key())
                        .domain(domain)
                        .selector("s1")
                        .headers(SIGNED);
                    Box::new(move |m| signer.sign(m).unwrap().to_header())
                } else {
                    let signer = DkimSigner::from_key(rsa_key())
                        .domain(domain)
                        .selector("s1")
                        .headers(SIGNED);
                    Box::new(move |m| signer.sign(m).unwrap().to_header())
                }
            })
            .collect();
        let esps = (0..ESPS)
            .map(|esp| -> Sign {
                let signer = DkimSigner::from_key(rsa_key())
                    .domain(format!("esp{esp}.test"))
                    .selector("esp")
                    .headers(["From", "To", "Subject", "Date", "Message-ID"]);
                Box::new(move |m| signer.sign(m).unwrap().to_header())
            })
            .collect();
        Signers { brands, esps }
    }
}

/// One marketing message: headers as the receiver stored it, signed as the ESP sent it.
fn message(i: usize, rng: &mut Rng, signers: &Signers) -> (Vec<u8>, Envelope) {
    let brand = i % BRANDS;
    let esp = brand % ESPS;
    let target = 8 * 1024 + rng.below(22 * 1024) as usize;
    let boundary = format!("=_b{i:06}");
    let mut text = String::new();
    let mut html = String::from("<html><body><table width=\"600\">\r\n");
    while text.len() + html.len() < target {
        let mut line = String::new();
        for _ in 0..12 {
            line.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            line.push(' ');
        }
        text.push_str(line.trim_end());
        text.push_str("\r\n");
        writeln!(
            html,
            "<tr><td style=\"font-family:Arial;font-size:14px\"><a href=\"https://brand{brand}.test/c/{}\">{}</a></td></tr>\r",
            rng.below(1_000_000),
            line.trim_end()
        )
        .unwrap();
    }
    html.push_str("</table></body></html>\r\n");
    let token = format!("{:016x}", rng.next());
    let unsigned = format!(
        "From: Brand {brand} <news@brand{brand}.test>\r\n\
To: reader{i}@inbox.example\r\n\
Subject: This week at Brand {brand}: offer {i}\r\n\
Date: Mon, 10 Mar 2025 09:{:02}:{:02} +0000\r\n\
Message-ID: <{token}.{i}@esp{esp}.test>\r\n\
List-Unsubscribe: <https://brand{brand}.test/u/{token}>, <mailto:unsub-{token}@esp{esp}.test>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\
\r\n\
--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n\
--{boundary}--\r\n",
        i / 60 % 60,
        i % 60
    );
    let mut signatures = (signers.brands[brand])(unsigned.as_bytes());
    if i % 2 == 0 {
        signatures.push_str(&(signers.esps[esp])(unsigned.as_bytes()));
    }
    let ip = esp_ip(esp, i);
    let helo = format!("out{}.esp{esp}.test", i % 250);
    let mail_from = format!("b-{token}@bounce.brand{brand}.test");
    let trace = format!(
        "Return-Path: <{mail_from}>\r\n\
Received: from {helo} ({helo} [{ip}])\r\n\tby mx.inbox.example (Postfix) with ESMTPS id {token};\r\n\tMon, 10 Mar 2025 09:00:01 +0000 (UTC)\r\n"
    );
    let raw = format!("{trace}{signatures}{unsigned}").into_bytes();
    let envelope = Envelope {
        ip: Some(ip.parse().unwrap()),
        helo: Some(helo),
        mail_from: Some(mail_from),
        rcpt: vec![format!("reader{i}@inbox.example")],
    };
    (raw, envelope)
}

type Set = Arc<Vec<(Vec<u8>, Envelope)>>;

/// One repetition: a cold resolver, every message on its own task, `concurrency` at a time.
fn run_once(
    rt: &tokio::runtime::Runtime,
    set: &Set,
    server: &TestDnsServer,
    concurrency: usize,
) -> (Duration, BTreeMap<String, usize>, u64, u64) {
    server.reset_query_count();
    let addr = server.addr();
    let set = set.clone();
    rt.block_on(async move {
        let resolver = Resolver::new(&DnsConfig {
            nameservers: vec![addr],
            ..DnsConfig::default()
        })
        .unwrap();
        let started = Instant::now();
        let statuses: Vec<(Status, String)> = futures::stream::iter(0..set.len())
            .map(|i| {
                let resolver = resolver.clone();
                let set = set.clone();
                tokio::spawn(async move {
                    let (raw, envelope) = &set[i];
                    let v = verify_message(&resolver, raw, envelope).await;
                    let why = if v.status == Status::Pass {
                        String::new()
                    } else {
                        v.findings
                            .iter()
                            .filter(|f| f.severity >= mailshift::finding::Severity::Warn)
                            .map(|f| format!("{}: {} [{}]", f.id, f.message, f.evidence))
                            .collect::<Vec<_>>()
                            .join("; ")
                    };
                    (v.status, why)
                })
            })
            .buffer_unordered(concurrency)
            .map(|r| r.unwrap())
            .collect()
            .await;
        let elapsed = started.elapsed();
        let mut dist: BTreeMap<String, usize> = BTreeMap::new();
        let mut first_problem = None;
        for (status, why) in statuses {
            *dist.entry(status.to_string()).or_default() += 1;
            if status != Status::Pass && first_problem.is_none() {
                first_problem = Some(why);
            }
        }
        if let Some(why) = first_problem {
            eprintln!("  a message did not pass: {why}");
        }
        (elapsed, dist, resolver.stats().queries, 0)
    })
}

/// Times the stages of verification for the whole set, one message at a time, warm DNS.
fn profile(rt: &tokio::runtime::Runtime, set: &Set, server: &TestDnsServer) {
    use mail_auth::AuthenticatedMessage;
    use mailshift::evaluate::dkim::{key_questions, verify_dkim};
    use mailshift::evaluate::records::RecordCache;
    use mailshift::evaluate::spf::{evaluate, SpfQuery};
    let addr = server.addr();
    let set = set.clone();
    rt.block_on(async move {
        let resolver = Resolver::new(&DnsConfig {
            nameservers: vec![addr],
            ..DnsConfig::default()
        })
        .unwrap();
        // Warm the cache.
        for (raw, env) in set.iter() {
            verify_message(&resolver, raw, env).await;
        }
        let n = set.len() as f64;
        let mut t_parse = Duration::ZERO;
        let mut t_keys = Duration::ZERO;
        let mut t_dkim = Duration::ZERO;
        let mut t_spf = Duration::ZERO;
        let mut t_full = Duration::ZERO;
        for (raw, env) in set.iter() {
            let t = Instant::now();
            let message = AuthenticatedMessage::parse(raw).unwrap();
            t_parse += t.elapsed();
            let cache = RecordCache::new();
            let t = Instant::now();
            cache.fetch(&resolver, &key_questions(&message)).await;
            t_keys += t.elapsed();
            let t = Instant::now();
            let _ = verify_dkim(&resolver, &cache, &message).await;
            t_dkim += t.elapsed();
            let t = Instant::now();
            let q = SpfQuery::mail_from(
                env.ip.unwrap(),
                env.mail_from.as_deref().unwrap(),
                env.helo.as_deref().unwrap(),
            );
            let _ = evaluate(&resolver, &q).await;
            t_spf += t.elapsed();
            let t = Instant::now();
            let _ = verify_message(&resolver, raw, env).await;
            t_full += t.elapsed();
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
        println!(
            "  per message, one at a time, warm DNS cache: whole verify_message {:.0} µs = \
             parse + body hashes {:.0} µs, key lookups {:.0} µs, DKIM (mail-auth, {:.2} signatures \
             on average) {:.0} µs, SPF check_host {:.0} µs, the rest (ARC, DMARC, header rules, \
             findings, a second parse) {:.0} µs",
            us(t_full),
            us(t_parse),
            us(t_keys),
            set.iter()
                .map(
                    |(raw, _)| String::from_utf8_lossy(&raw[..raw.len().min(4000)])
                        .matches("DKIM-Signature:")
                        .count()
                )
                .sum::<usize>() as f64
                / n,
            us(t_dkim),
            us(t_spf),
            us(t_full) - us(t_parse) - us(t_keys) - us(t_dkim) - us(t_spf),
        );
    });
}

fn compare_mailauth(dir: &Path, server: &TestDnsServer, count: usize) {
    let node_dir = root().join("target/mailauth-bench");
    let script = root().join("benches/compare_mailauth.js");
    if !node_dir.join("node_modules/mailauth").is_dir() {
        println!(
            "mailauth: skipped (run `mkdir -p target/mailauth-bench && cd target/mailauth-bench \
             && npm install mailauth`)"
        );
        return;
    }
    for parallel in [1, 16] {
        let out = Command::new("node")
            .arg(&script)
            .arg(dir)
            .arg(server.addr().to_string())
            .arg(parallel.to_string())
            .current_dir(&node_dir)
            .env("NODE_PATH", node_dir.join("node_modules"))
            .output();
        match out {
            Ok(o) if o.status.success() => {
                print!("{}", String::from_utf8_lossy(&o.stdout));
            }
            Ok(o) => println!(
                "mailauth ({parallel} at a time): failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => {
                println!("mailauth: skipped (cannot run node: {e})");
                return;
            }
        }
    }
    let _ = count;
}

fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    write_zones(&zones);
    let started = Instant::now();
    let signers = Signers::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let set: Set = Arc::new(
        (0..args.messages)
            .map(|i| message(i, &mut rng, &signers))
            .collect(),
    );
    let bytes: usize = set.iter().map(|(m, _)| m.len()).sum();
    println!(
        "{} messages, {:.1} MB ({:.1} KB on average), {} brands on {} ESPs; generated and signed in {:.1} s",
        set.len(),
        bytes as f64 / 1e6,
        bytes as f64 / set.len() as f64 / 1024.0,
        BRANDS,
        ESPS,
        started.elapsed().as_secs_f64()
    );
    let server = TestDnsServer::builder()
        .zone_dir(&zones)
        .log_queries(false)
        .start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // One warm-up run (page faults, the process-wide evaluator, aws-lc initialisation).
    run_once(&rt, &set, &server, 64);
    for &concurrency in &args.concurrency {
        let peak_reset = reset_peak_rss();
        let mut times = Vec::new();
        let mut last = (BTreeMap::new(), 0u64, 0u64);
        for _ in 0..args.reps {
            let (elapsed, dist, queries, _) = run_once(&rt, &set, &server, concurrency);
            times.push(elapsed);
            last = (dist, queries, server.query_count());
        }
        times.sort();
        let best = times[0];
        let median = times[times.len() / 2];
        let rate = |d: Duration| set.len() as f64 / d.as_secs_f64();
        println!(
            "concurrency {concurrency:>3}: best {:.3} s = {:.0} msg/s, median {:.3} s = {:.0} msg/s \
             ({} reps, cold resolver each) | DNS queries per rep: {} (server saw {}) | peak RSS {}{} | verdicts {:?}",
            best.as_secs_f64(),
            rate(best),
            median.as_secs_f64(),
            rate(median),
            args.reps,
            last.1,
            last.2,
            mib(proc_status_kib("VmHWM:")),
            if peak_reset { "" } else { " (since start)" },
            last.0
        );
    }
    if args.profile {
        profile(&rt, &set, &server);
    }
    if args.compare_mailauth {
        let messages = dir.path().join("messages");
        std::fs::create_dir_all(&messages).unwrap();
        for (i, (raw, env)) in set.iter().enumerate() {
            std::fs::write(messages.join(format!("{i:05}.eml")), raw).unwrap();
            std::fs::write(
                messages.join(format!("{i:05}.json")),
                serde_json::json!({
                    "ip": env.ip.map(|ip| ip.to_string()),
                    "helo": env.helo,
                    "sender": env.mail_from,
                })
                .to_string(),
            )
            .unwrap();
        }
        compare_mailauth(&messages, &server, set.len());
    }
}
