//! Bulk at scale: does `mailshift check` stream a hundred thousand or a million domains in
//! bounded memory, and linear time?
//!
//! ```text
//! cargo bench --bench bulk_scale                                  # 100,000 domains
//! cargo bench --bench bulk_scale -- --domains 100000,1000000      # and a million
//! cargo bench --bench bulk_scale -- --domains 20000 --concurrency 64,256
//! ```
//!
//! Zone files for a million domains would take the DNS server (and this machine) longer to
//! load than the run itself, so the answers come from a synthetic authoritative server on
//! loopback that computes them from the name, in the shapes real sending domains publish:
//! `d{i}.scale.test` has SPF through one of four ESP include trees (two levels), DKIM keys
//! (RSA-2048) at `s1` and `s2`, MX with A/AAAA (its own host, or one of three shared hosted
//! providers), and DMARC `p=reject` with an internal report address — except every twentieth
//! domain, which has no DMARC, so its DMARC walk goes up to `scale.test` and `test`. Every
//! other name is NXDOMAIN.
//!
//! The `mailshift` binary checks the list (`--format ndjson`, two selectors per domain, named in
//! the file) with its output piped to this process, which counts the lines and reads the
//! summary. Its memory is sampled from `/proc` every 50 ms (the resident size at each quarter of
//! the run shows whether it is flat) and its peak taken from `wait4`'s `ru_maxrss`. The bench
//! checks that every domain was reported with the planned status.

mod support;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The 2048-bit RSA public key of `fixtures/zones/clean.test.zone`.
const DKIM: &str = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAz8H1/4L2veDpe6523AWslMzpoQlPmS9k5oddhqn7nsQA/ha2sA8/RGdAIBQ+IU+ltrwFEzkkTKLIF2GBw6KcnRqsK1OFG5NwVIZgDHotGjJ0zgRctlMFeehbFl9eT4qs1+bKI+ycvZJHusaJg4trl+oL3Mgjz5pDD5lzj+h4G5i2RKjUg8C3wHyGo5U2zB+EWffzd1dbb29iC5POf9SOE/hrW/DuOq4Cep5XKjS5yidzAqNIzcQ1QBaO10ISiO1vp6sHtTLajPI0i/2yl0rm7cWZE0EZaVwSRyesXN2eNfFKyZ/PKU93gyKW1A2kHepC7jvXgCmgyV37BaWpFOy44wIDAQAB";

const USAGE: &str = "\
usage: cargo bench --bench bulk_scale -- [OPTIONS]

  --domains N[,N..]       list sizes to run (default 100000)
  --concurrency N[,N..]   --concurrency values (default 64)
  --server-threads N      threads of the synthetic DNS server (default 1)
  --probe                 name no selectors: mailshift probes its 26 common ones per domain";

struct Args {
    sizes: Vec<usize>,
    concurrency: Vec<usize>,
    server_threads: usize,
    probe: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: vec![100_000],
        concurrency: vec![64],
        server_threads: 1,
        probe: false,
    };
    let mut it = std::env::args().skip(1);
    let list = |v: Option<String>, name: &str| -> Vec<usize> {
        v.unwrap_or_default()
            .split(',')
            .map(|x| {
                x.trim().parse().unwrap_or_else(|_| {
                    eprintln!("{name}: `{x}` is not a number\n{USAGE}");
                    std::process::exit(2)
                })
            })
            .collect()
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--domains" => args.sizes = list(it.next(), "--domains"),
            "--concurrency" => args.concurrency = list(it.next(), "--concurrency"),
            "--server-threads" => {
                args.server_threads = list(it.next(), "--server-threads")[0].max(1)
            }
            "--probe" => args.probe = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other if other.starts_with('-') => {
                eprintln!("unknown option {other}\n{USAGE}");
                std::process::exit(2)
            }
            _ => {}
        }
    }
    args
}

// ---------------------------------------------------------------------------------------------
// The synthetic authoritative server
// ---------------------------------------------------------------------------------------------

/// Domains without DMARC: every twentieth.
fn has_dmarc(i: u64) -> bool {
    i % 20 != 7
}

fn txt(name: &Name, text: &str) -> Record {
    // One record of 255-byte strings, as zone files write long keys.
    let parts: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    Record::from_rdata(name.clone(), 300, RData::TXT(TXT::new(parts)))
}

/// The answers for one question: `None` is NXDOMAIN, an empty list NODATA.
fn answer(qname: &Name, qtype: RecordType) -> Option<Vec<Record>> {
    let text = qname.to_ascii().to_ascii_lowercase();
    let text = text.trim_end_matches('.');
    let labels: Vec<&str> = text.split('.').collect();
    // Everything lives under scale.test.
    let (&"test", rest) = labels.split_last()? else {
        return None;
    };
    let (&"scale", rest) = rest.split_last()? else {
        return None;
    };
    let domain_index = |label: &str| label.strip_prefix('d')?.parse::<u64>().ok();
    let v4 = |i: u64, host: u64| {
        Ipv4Addr::new(
            10,
            ((i >> 16) & 0xff) as u8,
            ((i >> 8) & 0xff) as u8,
            (i & 0xff) as u8 ^ host as u8,
        )
    };
    let v6 = |i: u64| Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0x25);
    let records = match rest {
        // An ESP's include tree: _spf.esp{e} → _n1.esp{e}.
        [first, esp] if esp.starts_with("esp") && *first == "_spf" => match qtype {
            RecordType::TXT => vec![txt(
                qname,
                &format!("v=spf1 ip4:198.51.100.0/24 include:_n1.{esp}.scale.test ~all"),
            )],
            _ => vec![],
        },
        [first, esp] if esp.starts_with("esp") && *first == "_n1" => match qtype {
            RecordType::TXT => vec![txt(
                qname,
                "v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:5::/48 -all",
            )],
            _ => vec![],
        },
        // Shared hosted mail providers.
        [host, "hosting"] if host.starts_with("mx") => match qtype {
            RecordType::A => vec![Record::from_rdata(
                qname.clone(),
                300,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 25))),
            )],
            RecordType::AAAA => vec![Record::from_rdata(
                qname.clone(),
                300,
                RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x25))),
            )],
            _ => vec![],
        },
        // A sending domain.
        [d] => {
            let i = domain_index(d)?;
            match qtype {
                RecordType::TXT => vec![txt(
                    qname,
                    &format!("v=spf1 include:_spf.esp{}.scale.test -all", i % 4),
                )],
                RecordType::MX => {
                    let exchange = if i % 3 == 0 {
                        format!("mx{}.hosting.scale.test.", i % 3)
                    } else {
                        format!("mx.{d}.scale.test.")
                    };
                    vec![Record::from_rdata(
                        qname.clone(),
                        300,
                        RData::MX(MX::new(10, Name::from_ascii(&exchange).ok()?)),
                    )]
                }
                _ => vec![],
            }
        }
        ["mx", d] => {
            let i = domain_index(d)?;
            match qtype {
                RecordType::A => vec![Record::from_rdata(
                    qname.clone(),
                    300,
                    RData::A(A(v4(i, 1))),
                )],
                RecordType::AAAA => vec![Record::from_rdata(
                    qname.clone(),
                    300,
                    RData::AAAA(AAAA(v6(i))),
                )],
                _ => vec![],
            }
        }
        ["_dmarc", d] => {
            let i = domain_index(d)?;
            if !has_dmarc(i) {
                return None;
            }
            match qtype {
                RecordType::TXT => vec![txt(
                    qname,
                    &format!("v=DMARC1; p=reject; rua=mailto:dmarc@{d}.scale.test"),
                )],
                _ => vec![],
            }
        }
        [selector, "_domainkey", d] if matches!(*selector, "s1" | "s2") => {
            domain_index(d)?;
            match qtype {
                RecordType::TXT => vec![txt(qname, DKIM)],
                _ => vec![],
            }
        }
        [] => vec![],
        _ => return None,
    };
    Some(records)
}

struct Server {
    addr: SocketAddr,
    answered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

fn start_server(threads: usize) -> Server {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the synthetic server");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..threads {
        let socket = socket.try_clone().unwrap();
        let answered = answered.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(q) = query.queries.first().cloned() else {
                    continue;
                };
                let mut response =
                    Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
                response.metadata.authoritative = true;
                response.metadata.recursion_desired = query.metadata.recursion_desired;
                response.add_query(q.clone());
                match answer(q.name(), q.query_type()) {
                    Some(records) => {
                        for r in records {
                            response.add_answer(r);
                        }
                    }
                    None => response.metadata.response_code = ResponseCode::NXDomain,
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    Server {
        addr,
        answered,
        stop,
    }
}

// ---------------------------------------------------------------------------------------------
// One run of the binary
// ---------------------------------------------------------------------------------------------

fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Outcome {
    wall: Duration,
    lines: u64,
    summary: serde_json::Value,
    peak_kib: u64,
    /// (seconds since start, RSS KiB)
    samples: Vec<(f64, u64)>,
    questions: u64,
}

fn run(domains_file: &std::path::Path, server: &Server, concurrency: usize) -> Outcome {
    let before = server.answered.load(Ordering::Relaxed);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailshift"))
        .arg("check")
        .arg("--nameserver")
        .arg(server.addr.to_string())
        .arg("--domains-file")
        .arg(domains_file)
        .args(["--format", "ndjson", "--timeout", "3", "--concurrency"])
        .arg(concurrency.to_string())
        .env("CI", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the mailshift binary");
    let started = Instant::now();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = 0u64;
        let mut last = String::new();
        let mut line = String::new();
        let mut r = BufReader::with_capacity(1 << 20, stdout);
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            lines += 1;
            std::mem::swap(&mut last, &mut line);
            line.clear();
        }
        (lines, last)
    });
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    samples.push((started.elapsed().as_secs_f64(), kib));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    assert_eq!(waited, pid as libc::pid_t, "wait4");
    let code = libc::WEXITSTATUS(status);
    assert!(matches!(code, 0 | 1), "mailshift exited with {code}");
    let samples = sampler.join().unwrap();
    let (lines, last) = reader.join().unwrap();
    let summary: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
    // The child was reaped by wait4; keep std from waiting on it again.
    std::mem::forget(child);
    Outcome {
        wall,
        lines,
        summary: summary["summary"].clone(),
        peak_kib: usage.ru_maxrss as u64,
        samples,
        questions: server.answered.load(Ordering::Relaxed) - before,
    }
}

/// The RSS sampled closest to a fraction of the run.
fn rss_at(samples: &[(f64, u64)], wall: f64, fraction: f64) -> String {
    samples
        .iter()
        .min_by(|a, b| {
            (a.0 - wall * fraction)
                .abs()
                .total_cmp(&(b.0 - wall * fraction).abs())
        })
        .map_or("?".into(), |s| format!("{:.0}", s.1 as f64 / 1024.0))
}

fn main() {
    let args = parse_args();
    let server = start_server(args.server_threads);
    println!(
        "bulk_scale: synthetic authoritative server on {} ({} thread(s)); the mailshift binary, ndjson piped to the bench",
        server.addr, args.server_threads
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut per_domain: Vec<(usize, f64)> = Vec::new();
    for &n in &args.sizes {
        let path = dir.path().join(format!("domains-{n}.txt"));
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            for i in 0..n {
                if args.probe {
                    writeln!(out, "d{i}.scale.test").unwrap();
                } else {
                    writeln!(out, "d{i}.scale.test selectors=s1,s2").unwrap();
                }
            }
        }
        let planned_fail = (0..n as u64).filter(|i| !has_dmarc(*i)).count() as u64;
        for &c in &args.concurrency {
            let o = run(&path, &server, c);
            let s = &o.summary;
            let secs = o.wall.as_secs_f64();
            let ok = o.lines == n as u64 + 1
                && s["domains"] == n
                && s["fail"] == planned_fail
                && s["pass"] == n as u64 - planned_fail;
            println!(
                "\n{n} domains, concurrency {c}: {secs:.2} s ({:.0} domains/s, {:.1} µs/domain)",
                n as f64 / secs,
                secs * 1e6 / n as f64
            );
            println!(
                "  peak RSS {:.1} MiB (ru_maxrss); RSS at 25/50/75/100% of the run: {} / {} / {} / {} MiB",
                o.peak_kib as f64 / 1024.0,
                rss_at(&o.samples, secs, 0.25),
                rss_at(&o.samples, secs, 0.5),
                rss_at(&o.samples, secs, 0.75),
                rss_at(&o.samples, secs, 1.0),
            );
            println!(
                "  DNS questions: {} by mailshift's count, {} answered by the server ({:.2}/domain)",
                s["queries"], o.questions, o.questions as f64 / n as f64
            );
            println!(
                "  statuses: pass {} fail {} warn {} inconclusive {} (planned: pass {}, fail {}) — {}",
                s["pass"],
                s["fail"],
                s["warn"],
                s["inconclusive"],
                n as u64 - planned_fail,
                planned_fail,
                if ok { "as planned" } else { "NOT AS PLANNED" }
            );
            if c == args.concurrency[0] {
                per_domain.push((n, secs / n as f64));
            }
        }
    }
    if per_domain.len() > 1 {
        let (n0, t0) = per_domain[0];
        for &(n, t) in &per_domain[1..] {
            println!(
                "\nlinearity: {n} domains cost {:.2}× per domain what {n0} did",
                t / t0
            );
        }
    }
    server.stop.store(true, Ordering::Relaxed);
}
