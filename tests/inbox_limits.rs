//! The seed inbox under attack, as an MX on the internet is: slow senders (one byte at a time,
//! in commands and in DATA) are cut off by deadlines that reading does not extend; one client
//! address cannot take every slot; rejections spend the error budget; an overflowing `SIZE=`
//! is over the limit; strangers' messages are kept only up to a quota, and the drop is
//! reported; accept errors (out of file descriptors) back off instead of spinning.

mod support;

use mailshift::seed::store::{StoreLimits, StoreReader};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::inbox::{start_inbox, start_inbox_full, start_inbox_with, Client};
use support::{fixture_server, fixtures, mailshift};

/// Writes `bytes` one at a time, `pause` apart, until the server closes the connection or
/// `limit` passes; returns what the server said and how long it let the client trickle.
fn trickle(
    client: &mut Client,
    bytes: &[u8],
    pause: Duration,
    limit: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    client
        .writer
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut heard = Vec::new();
    for b in bytes.iter().cycle() {
        if started.elapsed() > limit {
            break;
        }
        if client.writer.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(pause);
        let mut buf = [0u8; 512];
        match client.writer.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                heard.extend_from_slice(&buf[..n]);
                if heard.windows(3).any(|w| w == b"421") {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    (
        String::from_utf8_lossy(&heard).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_client_sending_a_byte_at_a_time_is_cut_off_by_the_command_deadline() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let inbox = start_inbox(dns.addr(), &dir.path().join("seed.db"), |c| {
        c.command_timeout = Duration::from_secs(1);
    });
    let (mut slow, greeting) = Client::connect(inbox.addr);
    assert!(greeting.starts_with("220"));
    // One byte every 200 ms never completes "EHLO slow.example.net\r\n" in time; before the
    // deadline, each byte restarted an idle timer and the client stayed forever.
    let (heard, held) = trickle(
        &mut slow,
        b"EHLO slow.example.net ",
        Duration::from_millis(200),
        Duration::from_secs(8),
    );
    assert!(
        heard.contains("421 4.4.2 The command did not arrive in time"),
        "{heard:?} after {held:?}"
    );
    assert!(held < Duration::from_secs(5), "held for {held:?}");
}

#[test]
fn data_trickled_below_the_minimum_rate_is_cut_off_and_the_slot_freed() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let inbox = start_inbox(dns.addr(), &dir.path().join("seed.db"), |c| {
        c.max_connections = 2;
        c.data_grace = Duration::from_secs(1);
        c.min_data_rate = 1000;
    });
    let (mut slow, _) = Client::connect(inbox.addr);
    assert!(slow.cmd("EHLO slow.example.net").starts_with("250"));
    assert!(slow
        .cmd("MAIL FROM:<a@slow.example.net>")
        .starts_with("250"));
    assert!(slow.cmd("RCPT TO:<inbox1@seeds.test>").starts_with("250"));
    assert!(slow.cmd("DATA").starts_with("354"));
    let (heard, held) = trickle(
        &mut slow,
        b"Subject: slow\r\n",
        Duration::from_millis(100),
        Duration::from_secs(8),
    );
    assert!(
        heard.contains("421 4.4.2 The message data is arriving too slowly"),
        "{heard:?} after {held:?}"
    );
    assert!(held < Duration::from_secs(5), "held for {held:?}");
    // The slots are free again for a real sender.
    let (mut fast, greeting) = Client::connect(inbox.addr);
    assert!(greeting.starts_with("220"), "{greeting}");
    let reply = fast.deliver(
        "fast.example.net",
        "a@fast.example.net",
        "inbox1@seeds.test",
        b"Subject: fast\r\nX-Mailshift-Token: fast1\r\n\r\nhello",
    );
    assert!(reply.starts_with("250"), "{reply}");
}

#[test]
fn one_client_address_cannot_take_every_connection() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let inbox = start_inbox(dns.addr(), &dir.path().join("seed.db"), |c| {
        c.max_connections = 10;
        c.max_connections_per_client = 2;
    });
    let (_a, first) = Client::connect(inbox.addr);
    let (_b, second) = Client::connect(inbox.addr);
    let (_c, third) = Client::connect(inbox.addr);
    assert!(first.starts_with("220") && second.starts_with("220"));
    assert!(
        third.starts_with("421 4.7.0 Too many connections from your address"),
        "{third}"
    );
    drop(_a);
    std::thread::sleep(Duration::from_millis(200));
    let (_d, again) = Client::connect(inbox.addr);
    assert!(
        again.starts_with("220"),
        "a closed connection frees its slot: {again}"
    );
}

#[test]
fn refused_recipients_spend_the_error_budget_and_an_overflowing_size_is_over_the_limit() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let inbox = start_inbox(dns.addr(), &dir.path().join("seed.db"), |c| {
        c.max_errors = 10;
        c.max_message_size = 1 << 20;
    });
    let (mut c, _) = Client::connect(inbox.addr);
    assert!(c.cmd("EHLO prober.example.net").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@prober.example.net>").starts_with("250"));
    let mut replies = Vec::new();
    for i in 0..2000 {
        let reply = c.cmd(&format!("RCPT TO:<user{i}@victim.example.com>"));
        let closed = reply.contains("421") || reply.is_empty();
        replies.push(reply);
        if closed {
            break;
        }
    }
    // Ten refusals spend the budget; the 421 that closes the session follows the tenth.
    assert!(
        replies.len() <= 11,
        "{} replies before the session was closed",
        replies.len()
    );
    assert!(
        replies
            .last()
            .unwrap()
            .contains("421 4.7.0 Too many errors"),
        "{replies:?}"
    );
    // SIZE values past 2^64 must not wrap around into a small one.
    let (mut c, _) = Client::connect(inbox.addr);
    assert!(c.cmd("EHLO big.example.net").starts_with("250"));
    for size in [
        "99999999999999999999999999",
        "18446744073709551617",
        "2000000",
    ] {
        let reply = c.cmd(&format!("MAIL FROM:<a@big.example.net> SIZE={size}"));
        assert!(reply.starts_with("552"), "SIZE={size}: {reply}");
    }
    assert!(c
        .cmd("MAIL FROM:<a@big.example.net> SIZE=1000")
        .starts_with("250"));
}

#[test]
fn strangers_messages_are_kept_only_up_to_the_quota_and_the_drop_is_reported() {
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("quota.db");
    let limits = StoreLimits {
        unknown_messages: 5,
        unknown_bytes: 1 << 20,
    };
    let inbox = start_inbox_with(dns.addr(), &store, limits, |_| {});
    let (mut c, _) = Client::connect(inbox.addr);
    for i in 0..20 {
        let reply = c.deliver(
            "stranger.example.net",
            "x@stranger.example.net",
            "inbox2@seeds.test",
            format!("Subject: junk {i}\r\nX-Mailshift-Token: nosuch{i}\r\n\r\nspam {i}").as_bytes(),
        );
        assert!(reply.starts_with("250"), "{reply}");
        c.cmd("RSET");
    }
    c.cmd("QUIT");
    drop(inbox);
    let reader = StoreReader::open(&store).unwrap().unwrap();
    let kept: Vec<String> = reader
        .arrivals()
        .unwrap()
        .into_iter()
        .filter_map(|a| a.token)
        .collect();
    assert_eq!(
        kept,
        ["nosuch15", "nosuch16", "nosuch17", "nosuch18", "nosuch19"],
        "the newest five are kept"
    );
    let dropped = reader.dropped().unwrap();
    assert_eq!(dropped.messages, 15);
    assert!(dropped.bytes > 0 && dropped.first_received_at.is_some());
    drop(reader);
    // `seed results` reports the drop.
    let plan = dir.path().join("seed.toml");
    std::fs::copy(fixtures().join("plans/seed.toml"), &plan).unwrap();
    let out = mailshift()
        .args(["seed", "results"])
        .arg(&plan)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("15 message(s) from unknown senders") && text.contains("dropped"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mailshift()
        .args(["seed", "results", "--format", "json"])
        .arg(&plan)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let report = support::json(&out.stdout);
    assert_eq!(report["dropped"]["messages"], 15, "{report}");
}

#[test]
fn signatures_from_random_domains_cannot_grow_the_dns_cache() {
    // Strangers send messages carrying many DKIM signatures with random d=: each is a key
    // lookup the inbox makes and caches. The cache is bounded by size, so it stops growing.
    let dns = fixture_server();
    let dir = tempfile::tempdir().unwrap();
    let inbox = start_inbox_full(
        dns.addr(),
        &dir.path().join("seed.db"),
        StoreLimits::default(),
        128 * 1024,
        |c| c.max_errors = 1000,
    );
    let (mut c, _) = Client::connect(inbox.addr);
    let mut most = 0;
    for m in 0..60 {
        let mut message = String::new();
        for k in 0..16 {
            message.push_str(&format!(
                "DKIM-Signature: v=1; a=rsa-sha256; d=rnd{m}x{k}.stranger.test; s=s{k}; \
                 h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==\r\n"
            ));
        }
        message.push_str(&format!(
            "From: a@rnd{m}.stranger.test\r\nSubject: {m}\r\n\r\nx"
        ));
        let reply = c.deliver(
            "stranger.test",
            "a@stranger.test",
            "inbox1@seeds.test",
            message.as_bytes(),
        );
        assert!(reply.starts_with("250"), "{reply}");
        c.cmd("RSET");
        most = most.max(inbox.resolver.cached_names());
    }
    // 60 messages asked about some 1,000 names; 128 KiB holds a few hundred.
    assert!(
        dns.queries().len() > 960,
        "the keys were asked: {}",
        dns.queries().len()
    );
    assert!(most < 700, "the cache grew to {most} names");
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn out_of_file_descriptors_the_accept_loop_backs_off_instead_of_spinning() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("seed.toml");
    std::fs::copy(fixtures().join("plans/seed.toml"), &plan).unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("mailshift"));
    cmd.args(["seed", "inbox"])
        .arg(&plan)
        .args(["--listen", "127.0.0.1:0", "--offline"])
        // Every connection is kept (none refused), so the descriptors run out.
        .args([
            "--max-connections",
            "200",
            "--max-connections-per-client",
            "200",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 48,
                rlim_max: 48,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse::<std::net::SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // More connections than the process has descriptors for: accept() fails with EMFILE while
    // the rest wait in the listen queue.
    let held: Vec<std::net::TcpStream> = (0..80)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    assert!(held.len() > 48, "connections opened: {}", held.len());
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(child.id()) - before;
    let _ = child.kill();
    let _ = child.wait();
    // Spinning burnt a whole core (about 2 CPU-seconds here); backing off burns almost none.
    assert!(
        used < 0.5,
        "the inbox used {used:.2} CPU-seconds in 2 s while out of descriptors"
    );
}
