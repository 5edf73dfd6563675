//! Seed-inbox benchmark: how many signed messages per second the SMTP seed inbox receives,
//! verifies and durably stores.
//!
//! ```text
//! cargo bench --bench inbox_bench                                     # 2,000 messages, 20 connections
//! cargo bench --bench inbox_bench -- --messages 20000 --connections 50 --reps 3   # memory stays flat
//! ```
//!
//! Each repetition starts a fresh inbox (new SQLite store in a temporary directory, cold DNS
//! cache) on a 2-worker Tokio runtime, served by the in-process DNS test server
//! (`tests/support/dns_server.rs`) with `fixtures/zones`. The messages are generated once,
//! deterministically: 8–30 KB text bodies, DKIM-signed (RSA-2048, relaxed/relaxed) as
//! `seed-sender.test`, whose SPF authorises 127.0.0.1 and whose DMARC is `p=reject`, with
//! one-click unsubscribe headers. `--connections` clients (on their own runtime thread) each hold
//! one SMTP session and deliver their share back to back; a message counts when its `250` comes
//! back, which the inbox sends only after the verdict and the message are committed to disk.
//!
//! Printed: wall time and messages/s per repetition (best and median), megabytes/s, how many
//! verdicts passed (every one must: a benchmark that verifies nothing would be fast for nothing),
//! DNS queries, the peak resident memory of the whole process (server and clients included) and
//! its resident memory after each repetition, to show that memory stays bounded.

#[path = "../tests/support/dns_server.rs"]
mod dns_server;
mod support;

use dns_server::TestDnsServer;
use mailshift::dns::{DnsConfig, Resolver};
use mailshift::seed::inbox::{Inbox, InboxConfig};
use mailshift::seed::send::Signer;
use mailshift::seed::store::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{proc_status_kib, Rng};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const RECIPIENT: &str = "inbox1@seeds.test";
const FROM: &str = "news@seed-sender.test";
/// Distinct messages generated (and held in memory) at most.
const POOL: usize = 2000;

struct Options {
    messages: usize,
    connections: usize,
    reps: usize,
}

fn options() -> Options {
    let mut o = Options {
        messages: 2000,
        connections: 20,
        reps: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        match args[i].as_str() {
            "--messages" => o.messages = value().unwrap_or(o.messages),
            "--connections" => o.connections = value().unwrap_or(o.connections).max(1),
            "--reps" => o.reps = value().unwrap_or(o.reps).max(1),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

const WORDS: [&str; 16] = [
    "spring",
    "collection",
    "outdoor",
    "jacket",
    "trail",
    "weekend",
    "offer",
    "members",
    "free",
    "shipping",
    "waterproof",
    "boots",
    "camp",
    "season",
    "new",
    "arrivals",
];

fn messages(n: usize) -> Vec<Vec<u8>> {
    let pem = std::fs::read_to_string(fixtures().join("keys/rsa2048.pem")).expect("test key");
    let signer = Signer::load(&pem, "seed-sender.test", "seed").expect("signer");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let size = 8 * 1024 + (rng.next() % (22 * 1024)) as usize;
            let mut body = String::with_capacity(size + 100);
            let mut line = 0;
            while body.len() < size {
                let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
                body.push_str(w);
                line += w.len() + 1;
                if line > 70 {
                    body.push_str("\r\n");
                    line = 0;
                } else {
                    body.push(' ');
                }
            }
            let token = format!("bench{i:06}");
            let message = format!(
                "From: Northwind <{FROM}>\r\nTo: <{RECIPIENT}>\r\nSubject: Benchmark seed {i}\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{token}@seed-sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nList-Unsubscribe: <https://seed-sender.test/u?t={token}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nX-Mailshift-Token: {token}\r\n\r\n{body}\r\n"
            );
            signer.sign(message.as_bytes()).expect("sign")
        })
        .collect()
}

/// Resident memory now and at its peak (kB), from /proc.
fn memory_kb() -> (u64, u64) {
    (
        proc_status_kib("VmRSS:").unwrap_or(0),
        proc_status_kib("VmHWM:").unwrap_or(0),
    )
}

async fn reply(reader: &mut BufReader<TcpStream>, line: &mut String) -> String {
    let mut all = String::new();
    loop {
        line.clear();
        if reader.read_line(line).await.unwrap_or(0) == 0 {
            return all;
        }
        all.push_str(line);
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return all;
        }
    }
}

/// One SMTP session delivering `messages`; returns how many were acknowledged with 250.
async fn client(addr: SocketAddr, messages: Vec<Arc<Vec<u8>>>) -> usize {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut acknowledged = 0;
    reply(&mut reader, &mut line).await;
    reader
        .get_mut()
        .write_all(b"EHLO bench.seed-sender.test\r\n")
        .await
        .expect("write");
    assert!(reply(&mut reader, &mut line).await.starts_with("250"));
    for m in messages {
        let envelope = format!("MAIL FROM:<{FROM}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n");
        // The inbox advertises PIPELINING: the envelope goes in one write.
        reader
            .get_mut()
            .write_all(envelope.as_bytes())
            .await
            .expect("write");
        let replies = [
            reply(&mut reader, &mut line).await,
            reply(&mut reader, &mut line).await,
            reply(&mut reader, &mut line).await,
        ];
        assert!(replies[2].starts_with("354"), "{replies:?}");
        let stream = reader.get_mut();
        stream.write_all(&m).await.expect("write");
        stream.write_all(b"\r\n.\r\n").await.expect("write");
        if reply(&mut reader, &mut line).await.starts_with("250") {
            acknowledged += 1;
        }
    }
    let _ = reader.get_mut().write_all(b"QUIT\r\n").await;
    acknowledged
}

struct Rep {
    seconds: f64,
    acknowledged: usize,
    stored: usize,
    passed: usize,
    queries: u64,
    rss_after_kb: u64,
}

fn run_once(dns: SocketAddr, messages: &[Arc<Vec<u8>>], total: usize, connections: usize) -> Rep {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("bench.seed.db");
    let inbox_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let resolver = inbox_rt.block_on(async {
        Resolver::new(&DnsConfig {
            nameservers: vec![dns],
            timeout: Duration::from_secs(2),
            ..DnsConfig::default()
        })
        .expect("resolver")
    });
    let stats_resolver = resolver.clone();
    // The bench's tokens were not recorded by `seed send`, and large runs repeat messages: the
    // quota on strangers' messages is lifted so every message is kept (the quota's bookkeeping
    // still runs for each one).
    let store = Arc::new(
        Store::open_with(
            &store_path,
            mailshift::seed::store::StoreLimits {
                unknown_messages: u64::MAX,
                unknown_bytes: u64::MAX,
            },
        )
        .expect("store"),
    );
    let mut config = InboxConfig::new([RECIPIENT.to_string()]);
    config.max_connections = connections + 10;
    // Every client of the bench connects from 127.0.0.1.
    config.max_connections_per_client = connections + 10;
    let inbox = inbox_rt
        .block_on(Inbox::bind(
            "127.0.0.1:0".parse().expect("addr"),
            config,
            store,
            resolver,
        ))
        .expect("bind");
    let addr = inbox.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = inbox_rt.spawn(inbox.serve(async {
        let _ = stop_rx.await;
    }));

    let mut shares: Vec<Vec<Arc<Vec<u8>>>> = vec![Vec::new(); connections];
    for i in 0..total {
        shares[i % connections].push(messages[i % messages.len()].clone());
    }
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let acknowledged: usize = client_rt.block_on(async {
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|share| tokio::spawn(client(addr, share)))
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("client task");
        }
        total
    });
    let seconds = started.elapsed().as_secs_f64();
    let rss_after_kb = memory_kb().0;
    let _ = stop_tx.send(());
    inbox_rt.block_on(served).expect("inbox task");
    let queries = stats_resolver.stats().queries;
    drop(stats_resolver);
    drop(inbox_rt);
    // Counted in SQL, so the check does not load 20,000 verdicts into this process's memory.
    let db = rusqlite::Connection::open(&store_path).expect("store");
    let count = |sql: &str| -> usize {
        db.query_row(sql, [], |r| r.get::<_, i64>(0))
            .expect("count") as usize
    };
    let stored = count("SELECT COUNT(*) FROM received");
    let passed = count(
        "SELECT COUNT(*) FROM received WHERE status = 'pass' \
         AND json_extract(verdict, '$.dkim[0].result') = 'pass' \
         AND json_extract(verdict, '$.spf.result') = 'pass' \
         AND json_extract(verdict, '$.dmarc.result') = 'pass'",
    );
    Rep {
        seconds,
        acknowledged,
        stored,
        passed,
        queries,
        rss_after_kb,
    }
}

fn main() {
    let o = options();
    let server = TestDnsServer::builder()
        .zone_dir(fixtures().join("zones"))
        .log_queries(false)
        .worker_threads(1)
        .start();
    let generated = Instant::now();
    // At most POOL distinct messages are held in memory; bigger runs send them again, so the
    // bench's own memory does not hide whether the inbox's grows with the number of messages.
    let messages: Vec<Arc<Vec<u8>>> = messages(o.messages.min(POOL))
        .into_iter()
        .map(Arc::new)
        .collect();
    let bytes: usize = (0..o.messages)
        .map(|i| messages[i % messages.len()].len())
        .sum();
    println!(
        "inbox bench: {} signed messages ({} distinct; {:.1} MB, {}–{} KB), {} connections, {} reps (generated in {:.1} s)",
        o.messages,
        messages.len(),
        bytes as f64 / 1e6,
        messages.iter().map(|m| m.len()).min().unwrap_or(0) / 1024,
        messages.iter().map(|m| m.len()).max().unwrap_or(0) / 1024,
        o.connections,
        o.reps,
        generated.elapsed().as_secs_f64()
    );
    let (rss_start, _) = memory_kb();
    println!(
        "resident memory before the first repetition: {} MiB",
        rss_start / 1024
    );
    let mut times = Vec::new();
    for rep in 1..=o.reps {
        let r = run_once(server.addr(), &messages, o.messages, o.connections);
        println!(
            "rep {rep}: {:.3} s, {:.0} msg/s, {:.1} MB/s; acknowledged {}, stored {}, verdicts passing {}; {} DNS queries; RSS when the last message was acknowledged {} MiB",
            r.seconds,
            o.messages as f64 / r.seconds,
            bytes as f64 / 1e6 / r.seconds,
            r.acknowledged,
            r.stored,
            r.passed,
            r.queries,
            r.rss_after_kb / 1024
        );
        if r.acknowledged != o.messages || r.stored != o.messages || r.passed != o.messages {
            eprintln!("error: not every message was acknowledged, stored and verified as passing");
            std::process::exit(1);
        }
        times.push(r.seconds);
    }
    times.sort_by(f64::total_cmp);
    let best = times[0];
    let median = times[times.len() / 2];
    let (_, peak) = memory_kb();
    println!(
        "best {:.3} s ({:.0} msg/s), median {:.3} s ({:.0} msg/s); peak RSS {} MiB (whole process: DNS server, clients, messages held in memory {:.0} MiB)",
        best,
        o.messages as f64 / best,
        median,
        o.messages as f64 / median,
        peak / 1024,
        messages.iter().map(|m| m.len()).sum::<usize>() as f64 / 1048576.0
    );
}
