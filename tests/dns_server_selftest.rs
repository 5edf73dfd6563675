//! Self-test of the in-process test DNS server (`tests/support/dns_server.rs`).
//!
//! Uses both hickory-resolver (the client the product uses) and hand-built raw DNS messages
//! (to check header bits such as AA and TC exactly).

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::{Resolver, TokioResolver};

use support::dns_server::{unreachable_nameserver, TestDnsServer};

const ZONE: &str = "selftest.test.";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/selftest")
}

fn server() -> TestDnsServer {
    TestDnsServer::builder()
        .zone_dir(fixtures())
        .servfail("broken.selftest.test")
        .blackhole("silent.selftest.test.")
        .start()
}

fn fqdn(label: &str) -> String {
    if label.is_empty() {
        ZONE.to_owned()
    } else {
        format!("{label}.{ZONE}")
    }
}

// ----- hickory-resolver client ---------------------------------------------------------------

fn resolver_for(addr: SocketAddr, timeout: Duration) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let name_server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
    let config = ResolverConfig::from_name_servers(vec![name_server]);

    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    opts.ndots = 0;
    opts.edns0 = true;

    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .expect("build resolver")
}

fn resolver(server: &TestDnsServer) -> TokioResolver {
    resolver_for(server.addr(), Duration::from_secs(2))
}

fn txt_strings(records: &[Record]) -> Vec<Vec<String>> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn big_txt_expected() -> Vec<String> {
    let chars: Vec<char> = ('a'..='z').collect();
    (0..16)
        .map(|i| format!("{i:02}:{}", chars[i].to_string().repeat(252)))
        .collect()
}

// ----- raw client ----------------------------------------------------------------------------

fn query_message(name: &str, rtype: RecordType, edns_payload: Option<u16>) -> Message {
    let mut msg = Message::query();
    msg.add_query(hickory_proto::op::Query::query(
        Name::from_str(name).unwrap(),
        rtype,
    ));
    if let Some(payload) = edns_payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        msg.set_edns(edns);
    }
    msg
}

/// One query over UDP; `None` on timeout.
fn raw_udp(
    addr: SocketAddr,
    name: &str,
    rtype: RecordType,
    edns_payload: Option<u16>,
    timeout: Duration,
) -> Option<Message> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    let query = query_message(name, rtype, edns_payload);
    socket.send_to(&query.to_vec().unwrap(), addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match socket.recv_from(&mut buf) {
        Ok((len, _)) => {
            let response = Message::from_vec(&buf[..len]).expect("decode response");
            assert_eq!(response.metadata.id, query.metadata.id);
            Some(response)
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            None
        }
        Err(e) => panic!("udp recv: {e}"),
    }
}

fn udp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    raw_udp(addr, name, rtype, None, Duration::from_secs(2)).expect("UDP query timed out")
}

/// One query over TCP.
fn raw_tcp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut stream = std::net::TcpStream::connect(addr).expect("TCP connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let query = query_message(name, rtype, None).to_vec().unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("TCP response length");
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).expect("TCP response body");
    Message::from_vec(&buf).expect("decode TCP response")
}

fn has_soa(msg: &Message) -> bool {
    msg.authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA)
}

// ----- tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn answers_a_and_txt() {
    let server = server();
    let resolver = resolver(&server);

    let a = resolver.ipv4_lookup(fqdn("www")).await.expect("A lookup");
    let addrs: Vec<IpAddr> = a
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    assert_eq!(addrs, vec![IpAddr::from([192, 0, 2, 10])]);

    let txt = resolver.txt_lookup(fqdn("txt")).await.expect("TXT lookup");
    assert_eq!(
        txt_strings(txt.answers()),
        vec![vec!["hello world".to_owned(), "second string".to_owned()]]
    );

    let apex = resolver.txt_lookup(fqdn("")).await.expect("apex TXT");
    assert_eq!(txt_strings(apex.answers()), vec![vec!["v=spf1 -all"]]);
}

#[test]
fn answers_are_authoritative() {
    let server = server();
    let response = udp(server.addr(), &fqdn("www"), RecordType::A);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative, "AA bit must be set");
    assert!(!response.metadata.truncation);
    assert_eq!(response.answers.len(), 1);
}

#[tokio::test]
async fn absent_name_is_nxdomain() {
    let server = server();
    let err = resolver(&server)
        .txt_lookup(fqdn("does-not-exist"))
        .await
        .expect_err("absent name must fail");
    assert!(err.is_nx_domain(), "expected NXDOMAIN, got {err:?}");

    let response = udp(server.addr(), &fqdn("does-not-exist"), RecordType::TXT);
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(response.metadata.authoritative);
    assert!(response.answers.is_empty());
    assert!(has_soa(&response), "NXDOMAIN should carry the SOA");
}

#[tokio::test]
async fn empty_non_terminal_is_nodata() {
    let server = server();
    let err = resolver(&server)
        .txt_lookup(fqdn("ent"))
        .await
        .expect_err("no records at an empty non-terminal");
    assert!(err.is_no_records_found(), "{err:?}");
    assert!(
        !err.is_nx_domain(),
        "empty non-terminal must be NODATA: {err:?}"
    );

    let response = udp(server.addr(), &fqdn("ent"), RecordType::TXT);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    assert!(response.answers.is_empty());
    assert!(has_soa(&response), "NODATA should carry the SOA");

    // The name below it exists.
    let leaf = udp(server.addr(), &fqdn("leaf.ent"), RecordType::TXT);
    assert_eq!(leaf.answers.len(), 1);

    // Existing name, other type: NODATA as well.
    let response = udp(server.addr(), &fqdn("www"), RecordType::TXT);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn cname_is_returned_and_chased_in_zone() {
    let server = server();

    // Raw: the CNAME plus the in-zone target.
    let response = udp(server.addr(), &fqdn("alias"), RecordType::A);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    let types: Vec<RecordType> = response.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, vec![RecordType::CNAME, RecordType::A]);
    match &response.answers[0].data {
        RData::CNAME(target) => assert_eq!(target.0.to_string(), fqdn("www")),
        other => panic!("expected CNAME, got {other:?}"),
    }

    // Any query type at a CNAME owner gets the CNAME (here: TXT at an alias of an A-only name).
    let response = udp(server.addr(), &fqdn("alias"), RecordType::TXT);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(response.answers.len(), 1);
    assert_eq!(response.answers[0].record_type(), RecordType::CNAME);

    // Out-of-zone target: only the CNAME.
    let response = udp(server.addr(), &fqdn("external"), RecordType::TXT);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(response.answers.len(), 1);
    assert_eq!(response.answers[0].record_type(), RecordType::CNAME);

    // Through the resolver.
    let resolver = resolver(&server);
    let txt = resolver
        .txt_lookup(fqdn("alias-txt"))
        .await
        .expect("TXT via CNAME");
    assert!(txt
        .answers()
        .iter()
        .any(|r| r.record_type() == RecordType::CNAME));
    assert_eq!(
        txt_strings(txt.answers()),
        vec![vec!["hello world".to_owned(), "second string".to_owned()]]
    );
    let cname = resolver
        .lookup(fqdn("alias"), RecordType::CNAME)
        .await
        .expect("CNAME lookup");
    assert_eq!(cname.answers().len(), 1);
}

#[test]
fn wildcard_is_synthesised() {
    let server = server();
    let response = udp(server.addr(), &fqdn("anything.wild"), RecordType::TXT);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(response.answers.len(), 1);
    assert_eq!(response.answers[0].name.to_string(), fqdn("anything.wild"));
    assert_eq!(txt_strings(&response.answers), vec![vec!["wildcard"]]);
}

#[test]
fn out_of_zone_is_refused() {
    let server = server();
    let response = udp(server.addr(), "www.example.com.", RecordType::A);
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    // The file-name origin of origin-override.zone is not served: $ORIGIN wins.
    let response = udp(server.addr(), "origin-override.", RecordType::SOA);
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn origin_directive_overrides_file_name() {
    let server = server();
    let response = udp(server.addr(), "www.other.test.", RecordType::A);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    assert_eq!(response.answers.len(), 1);
}

#[test]
fn big_txt_is_truncated_over_udp_and_complete_over_tcp() {
    let server = server();
    let name = fqdn("big");

    // Without EDNS: 512-byte limit.
    let response = udp(server.addr(), &name, RecordType::TXT);
    assert!(response.metadata.truncation, "TC bit must be set (no EDNS)");
    // With EDNS 1232 (hickory-resolver's default) and even 4096 the ~4.2 KB answer does not fit.
    for payload in [1232, 4096] {
        let response = raw_udp(
            server.addr(),
            &name,
            RecordType::TXT,
            Some(payload),
            Duration::from_secs(2),
        )
        .expect("UDP response");
        assert!(response.metadata.truncation, "TC bit (EDNS {payload})");
    }

    let response = raw_tcp(server.addr(), &name, RecordType::TXT);
    assert!(!response.metadata.truncation);
    assert_eq!(txt_strings(&response.answers), vec![big_txt_expected()]);
    assert_eq!(server.tcp_query_count(), 1);
}

#[tokio::test]
async fn big_txt_through_resolver_falls_back_to_tcp() {
    let server = server();
    let txt = resolver(&server)
        .txt_lookup(fqdn("big"))
        .await
        .expect("big TXT");
    let strings = txt_strings(txt.answers());
    assert_eq!(strings.len(), 1);
    assert_eq!(strings[0].len(), 16, "all 16 character-strings");
    assert_eq!(strings[0], big_txt_expected());
    let total: usize = strings[0].iter().map(String::len).sum();
    assert_eq!(total, 16 * 255);

    let big = (fqdn("big"), "TXT".to_owned());
    assert!(server.tcp_query_count() >= 1, "retry must go over TCP");
    assert!(server.tcp_queries().contains(&big));
    // The UDP attempt came first.
    assert_eq!(server.queries().first(), Some(&big));
    assert!(server.query_count() >= 2);
}

#[tokio::test]
async fn servfail_names_get_servfail() {
    let server = server();
    let resolver = resolver(&server);
    for name in [fqdn("broken"), fqdn("x.broken"), fqdn("deeper.x.broken")] {
        let err = resolver
            .txt_lookup(name.as_str())
            .await
            .expect_err("servfail name must fail");
        assert!(!err.is_nx_domain(), "{name}: must not be NXDOMAIN: {err:?}");
        assert!(
            matches!(
                err,
                NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail))
            ),
            "{name}: expected SERVFAIL, got {err:?}"
        );

        let response = udp(server.addr(), &name, RecordType::TXT);
        assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
        assert!(response.answers.is_empty());
    }
    // A sibling that merely shares a prefix is unaffected.
    let response = udp(server.addr(), &fqdn("broken-not"), RecordType::TXT);
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn blackhole_names_time_out() {
    let server = server();
    let resolver = resolver_for(server.addr(), Duration::from_millis(300));
    let started = Instant::now();
    let err = resolver
        .txt_lookup(fqdn("silent"))
        .await
        .expect_err("blackholed name must time out");
    assert!(
        matches!(err, NetError::Timeout),
        "expected a timeout, got {err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(
        server.query_count() >= 1,
        "blackholed query is still counted"
    );
    assert_eq!(
        server.queries().first(),
        Some(&(fqdn("silent"), "TXT".to_owned()))
    );

    // Raw, including a name below it.
    for name in [fqdn("silent"), fqdn("a.b.silent")] {
        let response = raw_udp(
            server.addr(),
            &name,
            RecordType::A,
            None,
            Duration::from_millis(200),
        );
        assert!(response.is_none(), "{name}: expected no response");
    }
    // The server still answers other names.
    assert_eq!(
        udp(server.addr(), &fqdn("www"), RecordType::A)
            .answers
            .len(),
        1
    );
}

#[test]
fn counts_and_logs_queries() {
    let server = server();
    assert_eq!(server.query_count(), 0);
    udp(server.addr(), &fqdn("www"), RecordType::A);
    udp(server.addr(), "MIXED-case.SelfTest.test.", RecordType::TXT);
    udp(server.addr(), &fqdn("nope"), RecordType::MX);
    raw_tcp(server.addr(), &fqdn("txt"), RecordType::TXT);
    udp(server.addr(), "www.example.com.", RecordType::A); // refused, still counted
    assert_eq!(server.query_count(), 5);
    assert_eq!(server.tcp_query_count(), 1);
    assert_eq!(
        server.queries(),
        vec![
            (fqdn("www"), "A".to_owned()),
            (fqdn("mixed-case"), "TXT".to_owned()),
            (fqdn("nope"), "MX".to_owned()),
            (fqdn("txt"), "TXT".to_owned()),
            ("www.example.com.".to_owned(), "A".to_owned()),
        ]
    );
    assert_eq!(server.tcp_queries(), vec![(fqdn("txt"), "TXT".to_owned())]);

    server.reset_query_count();
    assert_eq!(server.query_count(), 0);
    assert_eq!(server.tcp_query_count(), 0);
    udp(server.addr(), &fqdn("www"), RecordType::A);
    assert_eq!(server.query_count(), 1);

    server.clear_queries();
    assert!(server.queries().is_empty());
}

#[test]
fn query_log_can_be_disabled() {
    let server = TestDnsServer::builder()
        .zone_file(fixtures().join("selftest.test.zone"))
        .log_queries(false)
        .start();
    udp(server.addr(), &fqdn("www"), RecordType::A);
    assert_eq!(server.query_count(), 1);
    assert!(server.queries().is_empty());
}

#[test]
fn same_port_for_udp_and_tcp() {
    let server = server();
    let addr = server.addr();
    assert_eq!(addr.ip(), IpAddr::from(Ipv4Addr::LOCALHOST));
    assert_ne!(addr.port(), 0);
    assert_eq!(
        server.nameserver_arg(),
        format!("127.0.0.1:{}", addr.port())
    );
    assert_eq!(udp(addr, &fqdn("www"), RecordType::A).answers.len(), 1);
    assert_eq!(raw_tcp(addr, &fqdn("www"), RecordType::A).answers.len(), 1);
}

#[test]
fn many_servers_and_clean_shutdown() {
    let servers: Vec<TestDnsServer> = (0..8).map(|_| server()).collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.addr().port()).collect();
    for server in &servers {
        assert_eq!(
            udp(server.addr(), &fqdn("www"), RecordType::A)
                .answers
                .len(),
            1
        );
    }
    drop(servers);
    // After Drop the sockets are closed: nothing answers any more.
    for port in ports {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let response = raw_udp(
            addr,
            &fqdn("www"),
            RecordType::A,
            None,
            Duration::from_millis(100),
        );
        assert!(response.is_none());
    }
}

#[test]
fn bad_zone_file_panics_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.test.zone");
    std::fs::write(&path, "@ IN SOA this is not a valid soa\n").unwrap();
    let result = std::panic::catch_unwind(|| TestDnsServer::builder().zone_file(&path).start());
    let payload = result.expect_err("loading a broken zone must panic");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(
        message.contains(&path.display().to_string()),
        "panic message must name the file: {message}"
    );

    // A TXT character-string longer than 255 bytes cannot be encoded.
    let too_long = dir.path().join("toolong.test.zone");
    std::fs::write(
        &too_long,
        format!(
            "$TTL 60\n@ IN SOA ns. host. 1 2 3 4 5\nt IN TXT \"{}\"\n",
            "x".repeat(300)
        ),
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| TestDnsServer::builder().zone_file(&too_long).start());
    let payload = result.expect_err("an unencodable record must panic");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("toolong.test.zone") && message.contains("cannot be encoded"),
        "{message}"
    );

    let missing_soa = dir.path().join("nosoa.test.zone");
    std::fs::write(&missing_soa, "$TTL 60\nwww IN A 192.0.2.1\n").unwrap();
    let result =
        std::panic::catch_unwind(|| TestDnsServer::builder().zone_file(&missing_soa).start());
    let payload = result.expect_err("a zone without SOA must panic");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("nosoa.test.zone") && message.contains("no SOA"),
        "{message}"
    );
}

#[tokio::test]
async fn unreachable_nameserver_times_out() {
    let (_socket, arg) = unreachable_nameserver();
    let addr: SocketAddr = arg.parse().expect("127.0.0.1:PORT");
    assert_eq!(addr.ip(), IpAddr::from(Ipv4Addr::LOCALHOST));
    let resolver = resolver_for(addr, Duration::from_millis(200));
    let err = resolver
        .txt_lookup(fqdn("www"))
        .await
        .expect_err("nobody answers");
    assert!(matches!(err, NetError::Timeout), "{err:?}");
}

#[tokio::test]
async fn works_from_inside_a_tokio_runtime_and_concurrently() {
    let server = server();
    let resolver = Arc::new(resolver(&server));
    let mut tasks = Vec::new();
    // Distinct names (via the wildcard): hickory-resolver merges identical in-flight queries.
    for i in 0..64 {
        let resolver = resolver.clone();
        tasks.push(tokio::spawn(async move {
            let name = fqdn(&format!("n{i}.wild"));
            resolver.txt_lookup(name).await.map(|l| l.answers().len())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().expect("lookup"), 1);
    }
    assert_eq!(server.query_count(), 64);
}

// ----- throughput ----------------------------------------------------------------------------

/// `cargo test --release --test dns_server_selftest -- --ignored --nocapture throughput`
#[test]
#[ignore = "measurement, prints queries/second"]
fn throughput() {
    const QUERIES: usize = 20_000;
    const IN_FLIGHT: usize = 256;

    let server = TestDnsServer::builder()
        .zone_dir(fixtures())
        .log_queries(false)
        .start();
    let addr = server.addr();
    let names = [
        (fqdn("www"), RecordType::A),
        (fqdn("txt"), RecordType::TXT),
        (fqdn("nope"), RecordType::TXT),
        (fqdn("ent"), RecordType::TXT),
        (fqdn("alias"), RecordType::A),
    ];
    let queries: Arc<Vec<Vec<u8>>> = Arc::new(
        names
            .iter()
            .map(|(n, t)| query_message(n, *t, Some(1232)).to_vec().unwrap())
            .collect(),
    );

    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Raw UDP: IN_FLIGHT sockets, each with one query outstanding at a time.
    let (elapsed, lost) = client.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..IN_FLIGHT {
            let queries = queries.clone();
            let count = QUERIES / IN_FLIGHT + usize::from(worker < QUERIES % IN_FLIGHT);
            tasks.push(tokio::spawn(async move {
                let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .unwrap();
                socket.connect(addr).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut lost = 0usize;
                for i in 0..count {
                    let query = &queries[(worker + i) % queries.len()];
                    socket.send(query).await.unwrap();
                    match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await
                    {
                        Ok(Ok(_)) => {}
                        _ => lost += 1,
                    }
                }
                lost
            }));
        }
        let mut lost = 0;
        for task in tasks {
            lost += task.await.unwrap();
        }
        (started.elapsed(), lost)
    });
    let qps = QUERIES as f64 / elapsed.as_secs_f64();
    println!(
        "raw UDP: {QUERIES} queries, {IN_FLIGHT} in flight: {elapsed:?}, {qps:.0} queries/s, {lost} lost; server counted {}",
        server.query_count()
    );

    // Through hickory-resolver (what the product uses), IN_FLIGHT concurrent lookups.
    server.reset_query_count();
    let (elapsed, errors) = client.block_on(async {
        let resolver = Arc::new(resolver_for(addr, Duration::from_secs(2)));
        let semaphore = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(QUERIES);
        for i in 0..QUERIES {
            let permit = semaphore.clone().acquire_owned().await.unwrap();
            let resolver = resolver.clone();
            // Distinct names: hickory-resolver merges identical in-flight queries.
            let (name, rtype) = match i % 4 {
                0 => (fqdn(&format!("n{i}")), RecordType::TXT), // NXDOMAIN
                _ => (fqdn(&format!("n{i}.wild")), RecordType::TXT),
            };
            tasks.push(tokio::spawn(async move {
                let result = resolver.lookup(name.as_str(), rtype).await;
                drop(permit);
                match result {
                    Ok(_) => true,
                    Err(e) => e.is_nx_domain(),
                }
            }));
        }
        let mut errors = 0;
        for task in tasks {
            if !task.await.unwrap() {
                errors += 1;
            }
        }
        (started.elapsed(), errors)
    });
    let qps = QUERIES as f64 / elapsed.as_secs_f64();
    println!(
        "hickory-resolver: {QUERIES} lookups, {IN_FLIGHT} in flight: {elapsed:?}, {qps:.0} lookups/s, {errors} errors; server counted {}",
        server.query_count()
    );
}
