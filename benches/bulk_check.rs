//! Bulk-check benchmark: how fast mailshift checks a thousand realistic sending domains.
//!
//! ```text
//! cargo bench --bench bulk_check                                   # 1,000 domains, hickory test server
//! cargo bench --bench bulk_check -- --domains 5000 --concurrency 16,64,256 --reps 7
//! cargo bench --bench bulk_check -- --nsd                          # also against NSD on 127.0.0.2:53
//! cargo bench --bench bulk_check -- --compare-checkdmarc           # NSD + checkdmarc in the same run
//! ```
//!
//! The bench generates (deterministically) N sending domains as zone files: SPF with one or two
//! ESP includes that nest two or three levels, DMARC with reports to an external service that
//! authorises every domain through a wildcard `*._report._dmarc` record, one to three DKIM
//! selectors with 2048-bit RSA keys (some delegated to an ESP by CNAME), MX with one or two hosts
//! (own or a shared hosted provider) with A/AAAA. About 5% of the domains publish no DMARC, so
//! the DMARC tree walk runs down to the `test.` TLD zone, which answers NXDOMAIN. Reverse zones
//! answer the PTR questions checkdmarc asks about MX addresses.
//!
//! It serves them from the in-process hickory test server (`tests/support/dns_server.rs`) on
//! loopback, runs the engine in-process on a 2-worker tokio runtime with a fresh (cold) resolver
//! per repetition, and prints wall time, domains per second, queries per domain (the resolver's
//! count and the server's), duplicate questions seen by the server, peak memory and the status
//! distribution. For profiling it also prints how busy the thread polling `check_domains` was,
//! the fetch / analyse / ndjson stages timed apart, and how fast the server alone answers the same questions from a raw UDP client (one socket,
//! and a new socket per question as hickory's client does). It then compares the server's query
//! log on and off and times the `mailshift` binary end to end on the same set.
//!
//! With `--nsd` (needs Debian's `nsd`, run as root) the set is also served by NSD on
//! 127.0.0.2:53, and mailshift is measured against it. `--compare-checkdmarc` adds the
//! checkdmarc comparison (`benches/compare_checkdmarc.py`, with checkdmarc 6.0.4 installed in
//! `target/bench-venv`, see that script); both are skipped with a message when the tools are
//! missing, so CI never depends on them.

#[path = "../tests/support/dns_server.rs"]
mod dns_server;
mod support;

use dns_server::TestDnsServer;
use futures::StreamExt;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use mailshift::dns::{DnsConfig, DnsStats, Resolver};
use mailshift::domain::{parse_domains_text, DomainRequest, InputError};
use mailshift::engine::{check_domains, CheckOptions, CheckRun};
use mailshift::fetch::Family;
use mailshift::finding::{Severity, Status};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};
use support::{mib, proc_status_kib, reset_peak_rss};

/// The allocator the `mailshift` binary uses, so in-process figures match the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The 2048-bit RSA public key of `fixtures/zones/clean.test.zone`, split in two strings.
const DKIM_KEY_1: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAz8H1/4L2veDpe6523AWslMzpoQlPmS9k5oddhqn7nsQA/ha2sA8/RGdAIBQ+IU+ltrwFEzkkTKLIF2GBw6KcnRqsK1OFG5NwVIZgDHotGjJ0zgRctlMFeehbFl9eT4qs1+bKI+ycvZJHusaJg4trl+oL3Mgjz5pDD5lzj+h4G5i2RKjUg8C3wHyGo5U2zB+EW";
const DKIM_KEY_2: &str = "ffzd1dbb29iC5POf9SOE/hrW/DuOq4Cep5XKjS5yidzAqNIzcQ1QBaO10ISiO1vp6sHtTLajPI0i/2yl0rm7cWZE0EZaVwSRyesXN2eNfFKyZ/PKU93gyKW1A2kHepC7jvXgCmgyV37BaWpFOy44wIDAQAB";

/// Number of ESPs (shared SPF include trees and DKIM targets) and their popularity weights.
const ESP_WEIGHTS: [u64; 6] = [40, 25, 12, 10, 8, 5];
/// Hosted mailbox providers (shared MX hosts).
const MX_PROVIDERS: usize = 3;
const SELECTOR_NAMES: [&str; 8] = [
    "s1",
    "s2",
    "google",
    "selector1",
    "selector2",
    "k1",
    "mail",
    "dkim",
];
/// The domain numbering leaves room in 198.18.0.0/16 for two MX hosts per domain.
const MAX_DOMAINS: usize = 30_000;
const NSD_DEFAULT_ADDR: &str = "127.0.0.2:53";

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

struct Args {
    domains: usize,
    concurrency: Vec<usize>,
    reps: usize,
    seed: u64,
    cli: bool,
    floor: bool,
    split: bool,
    analyse_reps: usize,
    nsd: bool,
    nsd_addr: SocketAddr,
    nsd_servers: usize,
    compare_checkdmarc: bool,
    checkdmarc_python: Option<PathBuf>,
    keep: Option<PathBuf>,
    baseline_bin: Option<PathBuf>,
    rtt_ms: Option<u64>,
}

const USAGE: &str = "\
usage: cargo bench --bench bulk_check -- [OPTIONS]

  --domains N             domains to generate (default 1000, at most 30000)
  --concurrency N[,N..]   --concurrency values to measure (default 64)
  --reps N                timed repetitions per setting, each with a cold resolver (default 5)
  --seed N                generator seed (default 1)
  --no-cli                do not time the mailshift binary
  --no-floor              do not measure the server alone
  --no-split              do not time the fetch and analyse stages separately
  --analyse-reps N        repetitions of the analyse and ndjson stage timing (default 5; raise it
                          to profile the analysers with perf)
  --nsd                   also serve the set with NSD on --nsd-addr and measure against it
  --nsd-addr IP:PORT      where NSD listens (default 127.0.0.2:53; checkdmarc needs port 53)
  --nsd-servers N         NSD server processes (default 1)
  --compare-checkdmarc    run checkdmarc on the same set against NSD (implies --nsd)
  --checkdmarc-python P   python with checkdmarc installed (default target/bench-venv/bin/python)
  --keep DIR              write the zones and domains list to DIR and keep them
  --baseline-bin PATH     also time another mailshift binary (an earlier build) on the same set,
                          alternately with this build with and without --with mta-sts,tls-rpt,bimi,
                          and print the three medians and the ratios to the baseline (also against
                          NSD with --nsd)
  --rtt-ms N              with --baseline-bin: the same comparison against a test server that
                          holds every answer back N ms, as a resolver across a network would";

fn parse_args() -> Args {
    let mut args = Args {
        domains: 1000,
        concurrency: vec![64],
        reps: 5,
        seed: 1,
        cli: true,
        floor: true,
        split: true,
        analyse_reps: 5,
        nsd: false,
        nsd_addr: NSD_DEFAULT_ADDR.parse().expect("default NSD address"),
        nsd_servers: 1,
        compare_checkdmarc: false,
        checkdmarc_python: None,
        keep: None,
        baseline_bin: None,
        rtt_ms: None,
    };
    let mut it = std::env::args().skip(1);
    let fail = |msg: String| -> ! {
        eprintln!("bulk_check: {msg}\n{USAGE}");
        std::process::exit(2)
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| fail(format!("{name} needs a value")))
        };
        let number = |name: &str, text: String| -> usize {
            text.parse()
                .unwrap_or_else(|_| fail(format!("{name}: `{text}` is not a number")))
        };
        match arg.as_str() {
            // cargo bench passes `--bench`; a filter word may follow from the command line.
            "--bench" => {}
            "--domains" => args.domains = number("--domains", value("--domains")),
            "--concurrency" => {
                args.concurrency = value("--concurrency")
                    .split(',')
                    .map(|c| number("--concurrency", c.to_string()).max(1))
                    .collect()
            }
            "--reps" => args.reps = number("--reps", value("--reps")).max(1),
            "--seed" => args.seed = number("--seed", value("--seed")) as u64,
            "--no-cli" => args.cli = false,
            "--no-floor" => args.floor = false,
            "--no-split" => args.split = false,
            "--analyse-reps" => {
                args.analyse_reps = number("--analyse-reps", value("--analyse-reps")).max(1)
            }
            "--nsd" => args.nsd = true,
            "--nsd-addr" => {
                let text = value("--nsd-addr");
                args.nsd_addr = text
                    .parse()
                    .unwrap_or_else(|_| fail(format!("--nsd-addr: `{text}` is not IP:PORT")))
            }
            "--nsd-servers" => {
                args.nsd_servers = number("--nsd-servers", value("--nsd-servers")).max(1)
            }
            "--compare-checkdmarc" => {
                args.compare_checkdmarc = true;
                args.nsd = true;
            }
            "--checkdmarc-python" => {
                args.checkdmarc_python = Some(PathBuf::from(value("--checkdmarc-python")))
            }
            "--keep" => args.keep = Some(PathBuf::from(value("--keep"))),
            "--baseline-bin" => args.baseline_bin = Some(PathBuf::from(value("--baseline-bin"))),
            "--rtt-ms" => args.rtt_ms = Some(number("--rtt-ms", value("--rtt-ms")) as u64),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other if !other.starts_with('-') => {} // a bench name filter: ignored
            other => fail(format!("unknown option {other}")),
        }
    }
    if args.domains == 0 || args.domains > MAX_DOMAINS {
        fail(format!("--domains must be between 1 and {MAX_DOMAINS}"));
    }
    args
}

// ---------------------------------------------------------------------------------------------
// The generated domain set
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator (Knuth's MMIX LCG; the high bits are used).
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Lcg {
        let mut lcg = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
        lcg.next();
        lcg
    }
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `percent`%.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut pick = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                return i;
            }
            pick -= w;
        }
        weights.len() - 1
    }
}

/// What the generator made of one domain (what its checks should find).
struct DomainPlan {
    name: String,
    selectors: Vec<String>,
    has_dmarc: bool,
}

struct BenchSet {
    /// Every `*.zone` file (one zone each).
    zone_dir: PathBuf,
    /// `(zone origin without the dot, file name)`.
    zones: Vec<(String, String)>,
    /// The domains file, with each domain's selectors.
    domains_file: PathBuf,
    domains: Vec<DomainPlan>,
    zone_bytes: u64,
}

fn esp_zone(k: usize) -> String {
    format!("esp{k}.bench-esp.test")
}

fn soa_ns(origin: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 3600\n\
         @ IN SOA ns1.bench-dns.test. hostmaster.{origin}. ( 2026112501 3600 600 86400 300 )\n\
         @ IN NS ns1.bench-dns.test.\n\
         @ IN NS ns2.bench-dns.test.\n"
    )
}

fn dkim_txt() -> String {
    format!("\"v=DKIM1; k=rsa; p={DKIM_KEY_1}\" \"{DKIM_KEY_2}\"")
}

/// IPv4 of MX host `h` (0 or 1) of domain `i`: 198.18.0.0/16 (RFC 2544 benchmarking range).
fn mx_v4(i: usize, h: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, (i / 128) as u8, ((i % 128) * 2 + h) as u8)
}

/// IPv6 of MX host `h` of domain `i`, inside 2001:db8:18::/48.
fn mx_v6(i: usize, h: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0x0db8, 0x0018, 0, 0, 0, i as u16, h as u16 + 1)
}

/// Hosted MX provider `p`, host `h`: addresses in the top of the same ranges.
fn hosted_v4(p: usize, h: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 255, (p * 2 + h + 1) as u8)
}
fn hosted_v6(p: usize, h: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0x0db8, 0x0018, 0xffff, 0, 0, p as u16, h as u16 + 1)
}

/// Owner of a PTR record for `v4` inside `18.198.in-addr.arpa.`.
fn ptr4_owner(v4: Ipv4Addr) -> String {
    let o = v4.octets();
    format!("{}.{}", o[3], o[2])
}

/// Owner of a PTR record for `v6` inside the ip6.arpa zone of 2001:db8:18::/48 (the low 80 bits,
/// nibble-reversed).
fn ptr6_owner(v6: Ipv6Addr) -> String {
    let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
    let low: Vec<String> = hex[12..].chars().rev().map(|c| c.to_string()).collect();
    low.join(".")
}

const PTR6_ZONE: &str = "8.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa";

/// Generates the zone files and the domains list into `dir`.
fn generate(dir: &Path, count: usize, seed: u64) -> BenchSet {
    let zone_dir = dir.join("zones");
    std::fs::create_dir_all(&zone_dir).expect("create the zone directory");
    let mut rng = Lcg::new(seed);
    let mut zones: Vec<(String, String)> = Vec::new();
    let mut zone_bytes = 0u64;
    let mut write_zone = |origin: &str, text: &str| {
        let file = format!("{origin}.zone");
        std::fs::write(zone_dir.join(&file), text).expect("write a zone file");
        zone_bytes += text.len() as u64;
        zones.push((origin.to_string(), file));
    };

    // ESP zones are written after the domains, which add their DKIM CNAME targets to them.
    let mut esp_text: Vec<String> = (1..=ESP_WEIGHTS.len())
        .map(|k| {
            let zone = esp_zone(k);
            let mut t = soa_ns(&zone);
            // Like `_spf.google.com` → `_netblocks…`: two levels, three for odd-numbered ESPs.
            let _ = writeln!(
                t,
                "_spf IN TXT \"v=spf1 include:_netblocks.{zone} include:_netblocks2.{zone} ~all\""
            );
            let _ = writeln!(
                t,
                "_netblocks IN TXT \"v=spf1 ip4:203.0.113.{}/28 ip4:198.51.100.{}/28 ip6:2001:db8:e{k}::/48 ip6:2001:db8:e{k}:1::/48 ~all\"",
                k * 16,
                k * 16
            );
            if k % 2 == 1 {
                let _ = writeln!(
                    t,
                    "_netblocks2 IN TXT \"v=spf1 ip4:192.0.2.{}/29 include:_netblocks3.{zone} ~all\"",
                    k * 8
                );
                let _ = writeln!(
                    t,
                    "_netblocks3 IN TXT \"v=spf1 ip4:198.51.100.{}/29 ip6:2001:db8:e{k}:3::/48 ~all\"",
                    128 + k * 8
                );
            } else {
                let _ = writeln!(
                    t,
                    "_netblocks2 IN TXT \"v=spf1 ip4:192.0.2.{}/29 ip6:2001:db8:e{k}:2::/48 ~all\"",
                    k * 8
                );
            }
            t
        })
        .collect();

    let mut ptr4 = soa_ns("18.198.in-addr.arpa");
    let mut ptr6 = soa_ns(PTR6_ZONE);
    let mut list = String::from("# generated by benches/bulk_check.rs\n");
    let mut domains = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("d{i:04}.bench.test");
        let mut t = soa_ns(&name);

        // MX: own hosts (half the domains) or a hosted provider's.
        let own_mx = rng.chance(50);
        let mx_count = 1 + rng.below(2) as usize;
        let provider = rng.below(MX_PROVIDERS as u64) as usize;
        for h in 0..mx_count {
            if own_mx {
                let _ = writeln!(t, "@ IN MX {} mx{}", (h + 1) * 10, h + 1);
                let _ = writeln!(t, "mx{} IN A {}", h + 1, mx_v4(i, h));
                let _ = writeln!(
                    ptr4,
                    "{} IN PTR mx{}.{name}.",
                    ptr4_owner(mx_v4(i, h)),
                    h + 1
                );
                if rng.chance(70) {
                    let _ = writeln!(t, "mx{} IN AAAA {}", h + 1, mx_v6(i, h));
                    let _ = writeln!(
                        ptr6,
                        "{} IN PTR mx{}.{name}.",
                        ptr6_owner(mx_v6(i, h)),
                        h + 1
                    );
                }
            } else {
                let _ = writeln!(
                    t,
                    "@ IN MX {} mx{}.p{}.bench-mx.test.",
                    h * 5 + 1,
                    h + 1,
                    provider + 1
                );
            }
        }

        // SPF: an own address, one or two ESP includes (each 3-4 lookups), sometimes `mx`.
        let first = rng.weighted(&ESP_WEIGHTS);
        let mut esps = vec![first];
        if rng.chance(40) {
            let second = rng.weighted(&ESP_WEIGHTS);
            if second != first {
                esps.push(second);
            }
        }
        let mut spf = format!("v=spf1 ip4:198.19.{}.{}", i / 256, i % 256);
        if esps.len() == 1 && rng.chance(30) {
            spf.push_str(" mx"); // at most 4 + 1 lookups: stays clear of the budget warning
        }
        for k in &esps {
            let _ = write!(spf, " include:_spf.{}", esp_zone(k + 1));
        }
        spf.push_str(if rng.chance(60) { " ~all" } else { " -all" });
        let _ = writeln!(t, "@ IN TXT \"{spf}\"");
        // Verification tokens, as real apexes have: they share the TXT answer with SPF.
        if rng.chance(50) {
            let _ = writeln!(
                t,
                "@ IN TXT \"google-site-verification={:016x}{:016x}\"",
                rng.next(),
                rng.next()
            );
        }

        // DMARC: external reports to the report service, sometimes an internal address too.
        let has_dmarc = !rng.chance(5);
        if has_dmarc {
            let policy = if rng.chance(60) {
                "reject"
            } else {
                "quarantine"
            };
            let mut rua = "mailto:agg@bench-rua.test".to_string();
            if rng.chance(20) {
                let _ = write!(rua, ",mailto:dmarc@{name}");
            }
            let extra = if rng.chance(30) {
                "; adkim=s; aspf=s"
            } else {
                ""
            };
            let _ = writeln!(
                t,
                "_dmarc IN TXT \"v=DMARC1; p={policy}; rua={rua}{extra}\""
            );
        }

        // DKIM: 1-3 selectors; about a third delegated by CNAME to an ESP that holds the key.
        let n_sel = 1 + rng.below(3) as usize;
        let mut selectors: Vec<String> = Vec::new();
        while selectors.len() < n_sel {
            let s = SELECTOR_NAMES[rng.below(SELECTOR_NAMES.len() as u64) as usize].to_string();
            if !selectors.contains(&s) {
                selectors.push(s);
            }
        }
        for s in &selectors {
            if rng.chance(33) {
                let k = esps[rng.below(esps.len() as u64) as usize];
                let label = format!("d{i:04}");
                let _ = writeln!(
                    t,
                    "{s}._domainkey IN CNAME {s}.{label}.dkim.{}.",
                    esp_zone(k + 1)
                );
                let _ = writeln!(esp_text[k], "{s}.{label}.dkim IN TXT {}", dkim_txt());
            } else {
                let _ = writeln!(t, "{s}._domainkey IN TXT {}", dkim_txt());
            }
        }

        write_zone(&name, &t);
        let _ = writeln!(list, "{name} selectors={}", selectors.join(","));
        domains.push(DomainPlan {
            name,
            selectors,
            has_dmarc,
        });
    }

    for (k, text) in esp_text.iter().enumerate() {
        write_zone(&esp_zone(k + 1), text);
    }

    // Hosted MX providers.
    let mut mx = soa_ns("bench-mx.test");
    for p in 0..MX_PROVIDERS {
        for h in 0..2 {
            let host = format!("mx{}.p{}", h + 1, p + 1);
            let _ = writeln!(mx, "{host} IN A {}", hosted_v4(p, h));
            let _ = writeln!(mx, "{host} IN AAAA {}", hosted_v6(p, h));
            let _ = writeln!(
                ptr4,
                "{} IN PTR {host}.bench-mx.test.",
                ptr4_owner(hosted_v4(p, h))
            );
            let _ = writeln!(
                ptr6,
                "{} IN PTR {host}.bench-mx.test.",
                ptr6_owner(hosted_v6(p, h))
            );
        }
    }
    write_zone("bench-mx.test", &mx);

    // The DMARC report service: receives mail and authorises every domain's reports.
    let mut rua = soa_ns("bench-rua.test");
    rua.push_str("@ IN MX 10 mx\nmx IN A 198.18.254.25\nmx IN AAAA 2001:db8:18:fffe::25\n");
    rua.push_str("*._report._dmarc IN TXT \"v=DMARC1\"\n");
    let _ = writeln!(ptr4, "25.254 IN PTR mx.bench-rua.test.");
    write_zone("bench-rua.test", &rua);

    // The name servers every zone names.
    let mut dns = soa_ns("bench-dns.test");
    dns.push_str("ns1 IN A 198.18.254.1\nns2 IN A 198.18.254.2\n");
    write_zone("bench-dns.test", &dns);

    // The TLD: DMARC walks of domains without a record end here in NXDOMAIN.
    write_zone("test", &soa_ns("test"));
    write_zone("18.198.in-addr.arpa", &ptr4);
    write_zone(PTR6_ZONE, &ptr6);

    let domains_file = dir.join("domains.txt");
    std::fs::write(&domains_file, &list).expect("write the domains list");
    BenchSet {
        zone_dir,
        zones,
        domains_file,
        domains,
        zone_bytes,
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

/// The kernel's memory figures of this process, in KiB.
fn inputs(set: &BenchSet) -> Vec<Result<DomainRequest, InputError>> {
    let text = std::fs::read_to_string(&set.domains_file).expect("read the domains list");
    let inputs = parse_domains_text(&text, "domains.txt");
    assert!(
        inputs.iter().all(Result::is_ok),
        "the generated domains list has invalid lines"
    );
    inputs
}

fn dns_config(server: SocketAddr) -> DnsConfig {
    DnsConfig {
        nameservers: vec![server],
        timeout: Duration::from_secs(2),
        ..DnsConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}

struct Rep {
    wall: Duration,
    stats: DnsStats,
    server_queries: Option<u64>,
    engine_elapsed_ms: u64,
    /// CPU time of the thread that called `block_on` during the run.
    main_cpu: Option<Duration>,
}

/// One timed run with a fresh resolver.
fn timed_run(
    rt: &tokio::runtime::Runtime,
    server: SocketAddr,
    inputs: Vec<Result<DomainRequest, InputError>>,
    concurrency: usize,
) -> (Duration, DnsStats, CheckRun, Option<Duration>) {
    // What `check --domains-file` asks by default: MTA-STS, TLS-RPT and BIMI only with --with.
    let options = CheckOptions {
        concurrency,
        skip: Family::ALL.to_vec(),
        ..CheckOptions::default()
    };
    rt.block_on(async {
        let resolver = Resolver::new(&dns_config(server)).expect("build the resolver");
        let cpu_before = thread_cpu();
        let started = Instant::now();
        let run = check_domains(&resolver, inputs, &options, |_| {}).await;
        let wall = started.elapsed();
        // block_on polls the run on this thread: how busy was it?
        let cpu = thread_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        (wall, resolver.stats(), run, cpu)
    })
}

/// CPU time of the calling thread so far (`/proc/thread-self/schedstat`, in ns).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Prints a series of repetitions and returns the best and the median wall time.
fn report_reps(label: &str, domains: usize, reps: &[Rep]) -> (Duration, Duration) {
    let walls: Vec<Duration> = reps.iter().map(|r| r.wall).collect();
    let best = *walls.iter().min().expect("at least one repetition");
    let med = median(walls.clone());
    let last = reps.last().expect("at least one repetition");
    let per_domain = |q: u64| q as f64 / domains as f64;
    println!(
        "  {label}: best {} ({:.0} domains/s), median {} ({:.0} domains/s), runs: {}",
        secs(best),
        domains as f64 / best.as_secs_f64(),
        secs(med),
        domains as f64 / med.as_secs_f64(),
        walls
            .iter()
            .map(|w| format!("{:.3}", w.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let server = last.server_queries.map_or("n/a".into(), |q| {
        format!("{q} ({:.2}/domain)", per_domain(q))
    });
    println!(
        "    queries: resolver {} ({:.2}/domain, {} cache hits), server {server}; engine elapsed_ms {}",
        last.stats.queries,
        per_domain(last.stats.queries),
        last.stats.cache_hits,
        last.engine_elapsed_ms
    );
    let busy: Vec<String> = reps
        .iter()
        .filter_map(|r| {
            r.main_cpu
                .map(|c| format!("{:.0}%", 100.0 * c.as_secs_f64() / r.wall.as_secs_f64()))
        })
        .collect();
    if !busy.is_empty() {
        println!(
            "    the thread polling check_domains (block_on) was on a CPU for {} of each run's wall time",
            busy.join(" ")
        );
    }
    (best, med)
}

/// Status distribution, and a check that the generated zones say what the generator meant.
fn check_statuses(set: &BenchSet, run: &CheckRun) -> bool {
    let mut dist: BTreeMap<String, usize> = BTreeMap::new();
    for r in &run.domains {
        *dist.entry(r.status.to_string()).or_default() += 1;
    }
    let plans: HashMap<&str, &DomainPlan> =
        set.domains.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut unexpected = Vec::new();
    let mut not_pass_ids: BTreeMap<String, usize> = BTreeMap::new();
    for r in &run.domains {
        let Some(plan) = plans.get(r.domain.as_str()) else {
            unexpected.push(r);
            continue;
        };
        let ids: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warn)
            .map(|f| f.id.as_str())
            .collect();
        for id in &ids {
            *not_pass_ids.entry(id.to_string()).or_default() += 1;
        }
        let as_planned = if plan.has_dmarc {
            r.status == Status::Pass
        } else {
            ids == ["dmarc.missing"]
        };
        if !as_planned {
            unexpected.push(r);
        }
    }
    let without_dmarc = set.domains.iter().filter(|d| !d.has_dmarc).count();
    println!(
        "  statuses: {} (planned: {} pass, {} without DMARC)",
        dist.iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        set.domains.len() - without_dmarc,
        without_dmarc
    );
    if !not_pass_ids.is_empty() {
        println!(
            "  warn-or-worse findings: {}",
            not_pass_ids
                .iter()
                .map(|(id, n)| format!("{id} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !unexpected.is_empty() {
        println!(
            "  !! {} domains are not as generated; the first ones:",
            unexpected.len()
        );
        for r in unexpected.iter().take(3) {
            println!("    {} ({}):", r.domain, r.status);
            for f in r.findings.iter().filter(|f| f.severity >= Severity::Info) {
                println!("      [{}] {}: {}", f.severity, f.id, f.message);
            }
        }
    }
    unexpected.is_empty()
}

/// (name, type) questions the server saw more than once.
fn duplicates(queries: &[(String, String)]) -> Vec<((String, String), usize)> {
    let mut counts: HashMap<&(String, String), usize> = HashMap::new();
    for q in queries {
        *counts.entry(q).or_default() += 1;
    }
    let mut dups: Vec<((String, String), usize)> = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(q, n)| (q.clone(), n))
        .collect();
    dups.sort();
    dups
}

/// What [`measure`] found: (concurrency, best, median wall time) per concurrency, the last run's
/// reports and the server's log of the last run's questions.
type Measured = (
    Vec<(usize, Duration, Duration)>,
    Option<CheckRun>,
    Vec<(String, String)>,
);

/// Runs `reps` cold repetitions against `server` at each concurrency. `test_server` (if the
/// server is the in-process one) gives the server-side count and log.
fn measure(
    rt: &tokio::runtime::Runtime,
    set: &BenchSet,
    server: SocketAddr,
    test_server: Option<&TestDnsServer>,
    concurrency: &[usize],
    reps: usize,
    report_memory: bool,
) -> Measured {
    let rss_before = proc_status_kib("VmRSS:");
    let peak_reset = reset_peak_rss();
    let mut bests = Vec::new();
    let mut last_run = None;
    let mut log = Vec::new();
    for &c in concurrency {
        // One untimed warm-up (thread pools, sockets, page faults of the zone data).
        let _ = timed_run(rt, server, inputs(set), c);
        let mut series = Vec::new();
        for _ in 0..reps {
            if let Some(s) = test_server {
                s.clear_queries();
                s.reset_query_count();
            }
            // The previous run's reports are dropped first, so the peak is that of one run.
            drop(last_run.take());
            let (wall, stats, run, main_cpu) = timed_run(rt, server, inputs(set), c);
            let server_queries = test_server.map(|s| s.query_count());
            if let Some(s) = test_server {
                let q = s.queries();
                let dups = duplicates(&q);
                if !dups.is_empty() {
                    println!(
                        "  !! concurrency {c}: {} questions were asked more than once:",
                        dups.len()
                    );
                    for ((name, ty), n) in dups.iter().take(20) {
                        println!("       {name} {ty} ×{n}");
                    }
                }
                if s.tcp_query_count() > 0 {
                    println!("  note: {} queries went over TCP", s.tcp_query_count());
                }
                log = q;
            }
            series.push(Rep {
                wall,
                stats,
                server_queries,
                engine_elapsed_ms: run.summary.elapsed_ms,
                main_cpu,
            });
            last_run = Some(run);
        }
        let (best, med) = report_reps(&format!("concurrency {c:>4}"), set.domains.len(), &series);
        bests.push((c, best, med));
    }
    if report_memory {
        println!(
        "  memory: RSS {} before the runs (in-process server and zones included); peak {} during them{}",
        mib(rss_before),
        mib(proc_status_kib("VmHWM:")),
        if peak_reset {
            ""
        } else {
            " (VmHWM could not be reset: peak since start)"
        }
    );
    }
    (bests, last_run, log)
}

/// Times fetch and analysis separately (same concurrency, cold resolver).
fn split_stages(
    rt: &tokio::runtime::Runtime,
    set: &BenchSet,
    server: SocketAddr,
    concurrency: usize,
    analyse_reps: usize,
) {
    let requests: Vec<DomainRequest> = inputs(set).into_iter().map(|r| r.unwrap()).collect();
    let (fetch_wall, records) = rt.block_on(async {
        let resolver = Resolver::new(&dns_config(server)).expect("build the resolver");
        let started = Instant::now();
        let records: Vec<_> = futures::stream::iter(requests.iter().map(|req| {
            let resolver = &resolver;
            async move {
                let selectors = req
                    .selectors
                    .iter()
                    .map(|s| mailshift::fetch::Selector {
                        name: s.clone(),
                        used_by: None,
                        explicit: true,
                    })
                    .collect();
                mailshift::fetch::fetch_domain_skipping(
                    resolver,
                    &req.domain,
                    selectors,
                    &Family::ALL,
                )
                .await
            }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
        (started.elapsed(), records)
    });
    // Analysis and serialisation are pure CPU: repeat them and keep the best.
    let mut analyse_wall = Duration::MAX;
    let mut output_wall = Duration::MAX;
    let mut findings = 0;
    let mut bytes = 0;
    for _ in 0..analyse_reps.max(1) {
        let started = Instant::now();
        let analysed: Vec<Vec<mailshift::finding::Finding>> =
            records.iter().map(mailshift::checks::analyse).collect();
        analyse_wall = analyse_wall.min(started.elapsed());
        findings = analysed.iter().map(Vec::len).sum::<usize>();
        let reports: Vec<mailshift::engine::DomainReport> = records
            .iter()
            .zip(analysed)
            .map(|(r, findings)| mailshift::engine::DomainReport {
                domain: r.domain.to_string(),
                unicode: None,
                status: Status::of(&findings),
                findings,
                error: None,
            })
            .collect();
        let started = Instant::now();
        bytes = reports
            .iter()
            .map(|r| mailshift::output::ndjson::domain_line(r).len())
            .sum::<usize>();
        output_wall = output_wall.min(started.elapsed());
    }
    let per_domain = |d: Duration| d.as_secs_f64() * 1e6 / records.len() as f64;
    println!(
        "  stages (concurrency {concurrency}): fetch {} (cold resolver); analyse {} ({:.1} µs/domain, {findings} findings); \
         ndjson lines {} ({:.1} µs/domain, {:.1} MiB) — analyse and ndjson single-threaded, best of {}",
        secs(fetch_wall),
        secs(analyse_wall),
        per_domain(analyse_wall),
        secs(output_wall),
        per_domain(output_wall),
        bytes as f64 / 1048576.0,
        analyse_reps.max(1)
    );
}

/// `check` over the set's domains file against `server`, ndjson to `out`: how the bench runs
/// every binary it times.
fn check_args<'c>(
    cmd: &'c mut Command,
    set: &BenchSet,
    server: SocketAddr,
    concurrency: usize,
    out: &Path,
) -> &'c mut Command {
    cmd.arg("check")
        .arg("--nameserver")
        .arg(server.to_string())
        .arg("--domains-file")
        .arg(&set.domains_file)
        .args(["--format", "ndjson", "--timeout", "2", "--concurrency"])
        .arg(concurrency.to_string())
        .arg("-o")
        .arg(out)
}

/// `check --with` every family a domains file leaves out by default: what checkdmarc checks.
const WITH_EVERY_FAMILY: [&str; 2] = ["--with", "mta-sts,tls-rpt,bimi"];

/// Times the `mailshift` binary end to end (with `/usr/bin/time` for its peak RSS when present),
/// with `extra` arguments.
fn measure_cli(
    set: &BenchSet,
    server: SocketAddr,
    concurrency: usize,
    reps: usize,
    out_dir: &Path,
    extra: &[&str],
) -> Option<Duration> {
    let exe = env!("CARGO_BIN_EXE_mailshift");
    let out = out_dir.join("cli-report.ndjson");
    let use_time = Path::new("/usr/bin/time").exists();
    let mut walls = Vec::new();
    let mut max_rss_kib = None;
    let mut summary = String::new();
    for _ in 0..reps {
        let mut cmd = if use_time {
            let mut c = Command::new("/usr/bin/time");
            c.args(["-f", "maxrss_kib=%M", exe]);
            c
        } else {
            Command::new(exe)
        };
        check_args(&mut cmd, set, server, concurrency, &out)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let output = cmd.output().expect("run the mailshift binary");
        walls.push(started.elapsed());
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(kib) = stderr
            .lines()
            .find_map(|l| l.strip_prefix("maxrss_kib="))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            max_rss_kib = Some(kib);
        }
        // Exit 1: some domains fail (the ones without DMARC), as planned.
        let code = output.status.code();
        if !matches!(code, Some(0) | Some(1)) {
            println!("  !! mailshift exited with {code:?}: {stderr}");
            return None;
        }
        summary = std::fs::read_to_string(&out)
            .ok()
            .and_then(|t| t.lines().last().map(str::to_string))
            .unwrap_or_default();
    }
    let best = *walls.iter().min().expect("at least one repetition");
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap_or_default();
    let s = &summary["summary"];
    println!(
        "  mailshift check{}{} (binary, --concurrency {concurrency}): best {} ({:.0} domains/s), median {}; \
         summary: pass {} fail {} warn {} inconclusive {}, {} queries, elapsed_ms {}; max RSS {}",
        if extra.is_empty() { "" } else { " " },
        extra.join(" "),
        secs(best),
        set.domains.len() as f64 / best.as_secs_f64(),
        secs(median(walls)),
        s["pass"],
        s["fail"],
        s["warn"],
        s["inconclusive"],
        s["queries"],
        s["elapsed_ms"],
        mib(max_rss_kib)
    );
    Some(best)
}

/// Times this build's binary (a domains file's default families), the same with `--with
/// mta-sts,tls-rpt,bimi` (the families a domains file checks only when asked, one question
/// each per domain), and `baseline` alternately on the same set, so the machine's drift from
/// minute to minute falls on all alike: whether a change made `check` slower, and what the
/// three families cost.
fn compare_binaries(
    set: &BenchSet,
    server: SocketAddr,
    concurrency: usize,
    reps: usize,
    out_dir: &Path,
    baseline: &Path,
) {
    let current = Path::new(env!("CARGO_BIN_EXE_mailshift"));
    let run = |exe: &Path, extra: &[&str]| -> Option<(Duration, String)> {
        let out = out_dir.join("compare.ndjson");
        let started = Instant::now();
        let mut cmd = Command::new(exe);
        let status = check_args(&mut cmd, set, server, concurrency, &out)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        let wall = started.elapsed();
        if !matches!(status.code(), Some(0) | Some(1)) {
            println!("  !! {} exited with {:?}", exe.display(), status.code());
            return None;
        }
        let summary = std::fs::read_to_string(&out)
            .ok()
            .and_then(|t| t.lines().last().map(str::to_string))
            .unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(&summary).unwrap_or_default();
        Some((wall, doc["summary"]["queries"].to_string()))
    };
    let mut walls: [Vec<Duration>; 3] = Default::default();
    let mut queries: [String; 3] = Default::default();
    for _ in 0..reps {
        for (k, (exe, extra)) in [
            (current, &[][..]),
            (current, &WITH_EVERY_FAMILY[..]),
            (baseline, &[][..]),
        ]
        .into_iter()
        .enumerate()
        {
            let Some((wall, asked)) = run(exe, extra) else {
                return;
            };
            walls[k].push(wall);
            queries[k] = asked;
        }
    }
    let [ours, with_families, theirs] = walls.map(median);
    let ratio = |a: Duration| a.as_secs_f64() / theirs.as_secs_f64();
    println!(
        "  this build: median {} ({} queries), this / baseline = {:.2}",
        secs(ours),
        queries[0],
        ratio(ours)
    );
    println!(
        "  this build with --with mta-sts,tls-rpt,bimi: median {} ({} queries), this / baseline = {:.2}",
        secs(with_families),
        queries[1],
        ratio(with_families)
    );
    println!(
        "  baseline: median {} ({} queries)",
        secs(theirs),
        queries[2]
    );
}

/// The questions as wire-format queries (message id = index).
fn query_packets(questions: &[(String, String)]) -> Vec<Vec<u8>> {
    questions
        .iter()
        .enumerate()
        .filter_map(|(i, (name, ty))| {
            let name = Name::from_ascii(name).ok()?;
            let ty = RecordType::from_str(ty).ok()?;
            let mut msg = Message::new(i as u16, MessageType::Query, OpCode::Query);
            msg.metadata.recursion_desired = true;
            msg.add_query(Query::query(name, ty));
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            msg.set_edns(edns);
            msg.to_vec().ok()
        })
        .collect()
}

/// How the floor client talks to the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FloorMode {
    /// One connected socket, `window` questions in flight: the server's own speed.
    SharedSocket,
    /// A new socket per question (bind, connect, send, receive, close), as hickory's UDP client
    /// does for source-port randomisation: what that costs the client.
    SocketPerQuery,
}

/// Sends `packets` to `server` with at most `window` in flight, on the calling thread, and
/// waits for every answer. Returns (wall, answered, lost).
fn server_floor(
    rt: &tokio::runtime::Runtime,
    server: SocketAddr,
    packets: &[Vec<u8>],
    window: usize,
    mode: FloorMode,
) -> (Duration, usize, usize) {
    rt.block_on(async {
        let started = Instant::now();
        let (answered, lost) = match mode {
            FloorMode::SharedSocket => {
                let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                    .await
                    .expect("bind a UDP socket");
                socket
                    .connect(server)
                    .await
                    .expect("connect the UDP socket");
                let mut next = 0usize;
                let mut outstanding = 0usize;
                let mut answered = 0usize;
                let mut lost = 0usize;
                let mut buf = vec![0u8; 4096];
                while next < packets.len() || outstanding > 0 {
                    while next < packets.len() && outstanding < window {
                        socket.send(&packets[next]).await.expect("send a query");
                        next += 1;
                        outstanding += 1;
                    }
                    let received =
                        tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf));
                    match received.await {
                        Ok(Ok(_)) => {
                            outstanding -= 1;
                            answered += 1;
                        }
                        Ok(Err(e)) => panic!("receive an answer: {e}"),
                        Err(_) => {
                            lost += outstanding;
                            outstanding = 0;
                        }
                    }
                }
                (answered, lost)
            }
            FloorMode::SocketPerQuery => {
                let results: Vec<bool> =
                    futures::stream::iter(packets.iter().map(|p| async move {
                        let Ok(socket) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
                            return false;
                        };
                        if socket.connect(server).await.is_err() || socket.send(p).await.is_err() {
                            return false;
                        }
                        let mut buf = [0u8; 4096];
                        let received =
                            tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf));
                        matches!(received.await, Ok(Ok(_)))
                    }))
                    .buffer_unordered(window)
                    .collect()
                    .await;
                let answered = results.iter().filter(|ok| **ok).count();
                (answered, results.len() - answered)
            }
        };
        (started.elapsed(), answered, lost)
    })
}

/// How fast `server` answers the run's questions, without mailshift: the floor for the set.
/// Returns the best time of the one-socket client: the server's own time for the questions.
fn report_floor(
    rt: &tokio::runtime::Runtime,
    label: &str,
    server: SocketAddr,
    log: &[(String, String)],
) -> Option<Duration> {
    if log.is_empty() {
        return None;
    }
    let mut own_time = None;
    let packets = query_packets(log);
    for (mode, how) in [
        (FloorMode::SharedSocket, "one client socket"),
        (
            FloorMode::SocketPerQuery,
            "a new client socket per question",
        ),
    ] {
        let mut best: Option<(Duration, usize, usize)> = None;
        for _ in 0..3 {
            let r = server_floor(rt, server, &packets, 64, mode);
            if best.is_none_or(|b| r.0 < b.0) {
                best = Some(r);
            }
        }
        let (wall, answered, lost) = best.expect("three runs");
        if mode == FloorMode::SharedSocket {
            own_time = Some(wall);
        }
        println!(
            "  {label}, raw UDP client ({how}, 64 in flight): {answered} questions answered in {} ({:.0} queries/s){}",
            secs(wall),
            answered as f64 / wall.as_secs_f64(),
            if lost > 0 {
                format!(", {lost} lost")
            } else {
                String::new()
            }
        );
    }
    own_time
}

// ---------------------------------------------------------------------------------------------
// NSD and checkdmarc
// ---------------------------------------------------------------------------------------------

/// A running NSD, stopped (SIGTERM to the process we started) on drop.
struct Nsd {
    child: std::process::Child,
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn find_nsd() -> Option<PathBuf> {
    ["/usr/sbin/nsd", "/usr/local/sbin/nsd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn start_nsd(set: &BenchSet, dir: &Path, addr: SocketAddr, servers: usize) -> Result<Nsd, String> {
    let nsd = find_nsd().ok_or("nsd is not installed (apt-get install nsd)")?;
    let state = dir.join("nsd");
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    // RRL is off: NSD rate-limits answers per client /24 and per wildcard or NXDOMAIN class
    // (200/s by default), which drops and truncates a bulk run's answers from one address.
    let mut conf = format!(
        "server:\n  ip-address: {ip}@{port}\n  port: {port}\n  do-ip6: no\n  server-count: {servers}\n  \
         username: \"\"\n  zonesdir: \"{zones}\"\n  database: \"\"\n  zonelistfile: \"{st}/zone.list\"\n  \
         xfrdfile: \"{st}/xfrd.state\"\n  xfrdir: \"{st}\"\n  pidfile: \"{st}/nsd.pid\"\n  \
         logfile: \"{st}/nsd.log\"\n  verbosity: 0\n  hide-version: yes\n  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n  \
         receive-buffer-size: 4194304\n  send-buffer-size: 4194304\n  reuseport: {reuseport}\n\
         remote-control:\n  control-enable: no\n",
        ip = addr.ip(),
        port = addr.port(),
        reuseport = if servers > 1 { "yes" } else { "no" },
        zones = set.zone_dir.display(),
        st = state.display(),
    );
    for (origin, file) in &set.zones {
        let _ = write!(
            conf,
            "zone:\n  name: \"{origin}\"\n  zonefile: \"{file}\"\n"
        );
    }
    let conf_path = state.join("nsd.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    // Port 53 must be free: a stale or system NSD there would answer instead of ours.
    if std::net::UdpSocket::bind(addr).is_err() {
        return Err(format!(
            "{addr} is in use (a leftover NSD from an interrupted run? `pgrep -a nsd`) or needs root"
        ));
    }
    let child = Command::new(&nsd)
        .arg("-d")
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", nsd.display()))?;
    let mut nsd = Nsd { child };
    // Wait until it answers the SOA of the last domain (all zones loaded).
    let probe = {
        let mut msg = Message::new(4242, MessageType::Query, OpCode::Query);
        let last = format!("{}.", set.domains.last().map_or("test", |d| &d.name));
        msg.add_query(Query::query(
            Name::from_ascii(&last).map_err(|e| e.to_string())?,
            RecordType::SOA,
        ));
        msg.to_vec().map_err(|e| e.to_string())?
    };
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        if let Ok(Some(status)) = nsd.child.try_wait() {
            let log = std::fs::read_to_string(state.join("nsd.log")).unwrap_or_default();
            return Err(format!("nsd exited ({status}): {log}"));
        }
        let _ = socket.send_to(&probe, addr);
        if let Ok(n) = socket.recv(&mut buf) {
            if let Ok(m) = Message::from_vec(&buf[..n]) {
                if !m.answers.is_empty() {
                    return Ok(nsd);
                }
            }
        }
    }
    let _ = &mut nsd;
    Err("nsd did not answer within 30 s".into())
}

fn run_checkdmarc(args: &Args, set: &BenchSet, nameserver: SocketAddr) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = args
        .checkdmarc_python
        .clone()
        .unwrap_or_else(|| root.join("target/bench-venv/bin/python"));
    if !python.exists() {
        println!(
            "  checkdmarc: skipped, {} not found. Install it with:\n    \
             python3 -m venv target/bench-venv && target/bench-venv/bin/pip install checkdmarc==6.0.4",
            python.display()
        );
        return;
    }
    if nameserver.port() != 53 {
        println!("  checkdmarc: skipped, it only talks to port 53 (use --nsd-addr IP:53)");
        return;
    }
    let script = root.join("benches/compare_checkdmarc.py");
    let status = Command::new(&python)
        .arg(&script)
        .arg("--nameserver")
        .arg(nameserver.ip().to_string())
        .arg("--domains-file")
        .arg(&set.domains_file)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => println!("  checkdmarc: the driver exited with {s}"),
        Err(e) => println!("  checkdmarc: cannot run {}: {e}", python.display()),
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let temp;
    let dir = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).expect("create --keep directory");
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("mailshift-bench-")
                .tempdir()
                .expect("create a temporary directory");
            temp.path().to_path_buf()
        }
    };
    let set = generate(&dir, args.domains, args.seed);
    let sel_total: usize = set.domains.iter().map(|d| d.selectors.len()).sum();
    println!(
        "bulk_check: {} domains ({} DKIM selectors, {} without DMARC), {} zone files, {:.1} MiB of zone text, generated in {} at {}",
        set.domains.len(),
        sel_total,
        set.domains.iter().filter(|d| !d.has_dmarc).count(),
        set.zones.len(),
        set.zone_bytes as f64 / 1048576.0,
        secs(started.elapsed()),
        dir.display()
    );

    let rt = runtime();
    let main_c = args.concurrency[0];

    // 1. In-process hickory test server, query log on: timings, duplicates, statuses.
    let loaded = Instant::now();
    let server = TestDnsServer::builder()
        .zone_dir(&set.zone_dir)
        .log_queries(true)
        .start();
    println!(
        "\n[hickory test server {} (2 threads, in-process), query log on; zones loaded in {}]",
        server.addr(),
        secs(loaded.elapsed())
    );
    let (bests, last_run, log) = measure(
        &rt,
        &set,
        server.addr(),
        Some(&server),
        &args.concurrency,
        args.reps,
        true,
    );
    let dups = duplicates(&log);
    println!(
        "  duplicate (name, type) questions seen by the server in the last run: {}",
        dups.len()
    );
    if let Some(run) = &last_run {
        check_statuses(&set, run);
    }
    if args.split {
        split_stages(&rt, &set, server.addr(), main_c, args.analyse_reps);
    }
    if args.floor {
        report_floor(&rt, "hickory test server", server.addr(), &log);
    }

    // 2. Does the server's query log (a mutex on its hot path) cost anything? Runs alternate
    //    between two servers, so that drift in the machine's speed hits both alike.
    let quiet = TestDnsServer::builder()
        .zone_dir(&set.zone_dir)
        .log_queries(false)
        .start();
    println!(
        "
[query log cost: alternating runs, log on ({}) / log off ({}), concurrency {main_c}]",
        server.addr(),
        quiet.addr()
    );
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..args.reps {
        on.push(timed_run(&rt, server.addr(), inputs(&set), main_c).0);
        off.push(timed_run(&rt, quiet.addr(), inputs(&set), main_c).0);
    }
    for (label, walls) in [("log on ", on), ("log off", off)] {
        println!(
            "  {label}: best {}, median {}",
            secs(*walls.iter().min().expect("reps")),
            secs(median(walls))
        );
    }
    drop(server);
    if args.cli {
        println!("\n[the mailshift binary against the hickory test server (log off)]");
        let _ = measure_cli(&set, quiet.addr(), main_c, args.reps.min(3), &dir, &[]);
    }
    if let Some(baseline) = &args.baseline_bin {
        println!(
            "\n[this build against {} (alternating runs)]",
            baseline.display()
        );
        compare_binaries(&set, quiet.addr(), main_c, args.reps, &dir, baseline);
        if let Some(rtt) = args.rtt_ms {
            // On loopback both sides share two cores and the run is bound by CPU; against a
            // resolver across a network it is bound by the round trips, and questions asked
            // side by side cost a domain no extra round trip.
            let far = TestDnsServer::builder()
                .zone_dir(&set.zone_dir)
                .log_queries(false)
                .delay(Duration::from_millis(rtt))
                .start();
            println!(
                "\n[this build against {} with every answer held back {rtt} ms (alternating runs)]",
                baseline.display()
            );
            compare_binaries(&set, far.addr(), main_c, args.reps, &dir, baseline);
        }
    }
    drop(quiet);

    // 3. NSD, and checkdmarc against it.
    if args.nsd {
        println!(
            "\n[NSD on {} ({} server process{})]",
            args.nsd_addr,
            args.nsd_servers,
            if args.nsd_servers == 1 { "" } else { "es" }
        );
        match start_nsd(&set, &dir, args.nsd_addr, args.nsd_servers) {
            Err(e) => println!("  skipped: {e}"),
            Ok(nsd) => {
                let (_, run, _) = measure(
                    &rt,
                    &set,
                    args.nsd_addr,
                    None,
                    &args.concurrency,
                    args.reps,
                    false,
                );
                if let Some(run) = &run {
                    check_statuses(&set, run);
                }
                // Every family, as checkdmarc checks MTA-STS, TLS-RPT and BIMI too.
                let binary = if args.cli {
                    measure_cli(
                        &set,
                        args.nsd_addr,
                        main_c,
                        args.reps.min(3),
                        &dir,
                        &WITH_EVERY_FAMILY,
                    )
                } else {
                    None
                };
                let own = if args.floor {
                    report_floor(&rt, "NSD", args.nsd_addr, &log)
                } else {
                    None
                };
                if let (Some(binary), Some(own)) = (binary, own) {
                    let ratio = binary.as_secs_f64() / own.as_secs_f64();
                    println!(
                        "  the mailshift binary took {:.1}× NSD's own time for the same questions ({} against {}) — target ≤ 2.5×: {}",
                        ratio,
                        secs(binary),
                        secs(own),
                        if ratio <= 2.5 { "met" } else { "NOT met" }
                    );
                }
                if let Some(baseline) = &args.baseline_bin {
                    println!(
                        "\n[this build against {} on NSD (alternating runs)]",
                        baseline.display()
                    );
                    compare_binaries(&set, args.nsd_addr, main_c, args.reps, &dir, baseline);
                }
                if args.compare_checkdmarc {
                    run_checkdmarc(&args, &set, args.nsd_addr);
                }
                drop(nsd);
            }
        }
    } else {
        println!("\n(NSD and checkdmarc: add --nsd or --compare-checkdmarc)");
    }

    let target = Duration::from_millis(500) * (set.domains.len() as u32) / 1000;
    if let Some((c, best, med)) = bests.iter().min_by_key(|(_, _, m)| *m) {
        let verdict = if *med <= target {
            "met"
        } else if *best <= target {
            "met by the best run only, not by the median"
        } else {
            "NOT met"
        };
        println!(
            "\nin-process against the hickory test server, {} domains, concurrency {c}: best {}, median {} — target {}: {verdict}",
            set.domains.len(),
            secs(*best),
            secs(*med),
            secs(target),
        );
    }
    println!(
        "peak RSS of the bench process overall (generator, servers, runs): {}",
        mib(proc_status_kib("VmHWM:"))
    );
}
