//! In-process authoritative DNS server for integration tests and benchmarks.
//!
//! Built on hickory-server: every `*.zone` file is loaded into an in-memory zone handler and
//! served from a [`Catalog`], wrapped in a small [`RequestHandler`] that counts and logs queries
//! and can inject SERVFAIL answers or drop queries entirely ("blackhole").
//!
//! The server listens on `127.0.0.1:PORT` for both UDP and TCP (same port) and runs on its own
//! background thread with its own tokio runtime, so it can be used from `#[test]`,
//! `#[tokio::test]` and plain `main()` (benches).
//!
//! Signed zones (DNSSEC) are loaded from `*.rfc3597` files, every RDATA in RFC 3597 generic
//! form (what `fixtures/zones-dnssec/sign.sh` writes: hickory's zone parser refuses DNSKEY,
//! RRSIG, NSEC and NSEC3), with each RRSIG attached to the RRset it covers; questions with the
//! DO bit get the signatures, and negative answers the zone's own NSEC or NSEC3 records. A DS
//! question about the apex of a served zone is answered from its parent zone when that is
//! served too, as a resolver would ask the parent's servers.
//!
//! This file is also included by benches via `#[path]`, so it refers only to std, dependencies
//! and the `mailshift` library, never to `crate::` or `super::`.

// Not every helper is used by every test crate / bench that includes this file.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::dnssec::rdata::DNSSECRData;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::proto::serialize::binary::{BinDecoder, BinEncodable, Restrict};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponseBuilder, ZoneHandler, ZoneType,
};
use hickory_server::Server;

/// How long an idle TCP connection is kept open by the server.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection buffer of outgoing TCP responses.
const TCP_RESPONSE_BUFFER: usize = 64;
/// Requested UDP socket buffer size (the kernel caps it at net.core.rmem_max / wmem_max).
const UDP_RECV_BUFFER: usize = 8 * 1024 * 1024;
/// How many times to try to get the same port for TCP as for UDP.
const BIND_ATTEMPTS: usize = 20;

/// A running in-process authoritative DNS server. Dropping it shuts the server down.
pub struct TestDnsServer {
    addr: SocketAddr,
    state: Arc<SharedState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Builder for [`TestDnsServer`], see [`TestDnsServer::builder`].
#[derive(Debug, Clone)]
pub struct TestDnsServerBuilder {
    zone_files: Vec<PathBuf>,
    servfail: Vec<String>,
    blackhole: Vec<String>,
    log_queries: bool,
    worker_threads: usize,
    address: Ipv4Addr,
    port: u16,
    delay: Option<Duration>,
}

impl TestDnsServer {
    /// Starts building a server.
    ///
    /// Zones are added with [`TestDnsServerBuilder::zone_dir`] (every `*.zone` file in the
    /// directory, non-recursive) and [`TestDnsServerBuilder::zone_file`]. The zone origin is the
    /// file name without `.zone` (e.g. `example.com.zone` -> `example.com.`), unless the file
    /// sets its own `$ORIGIN` (more precisely: the owner of the zone's single SOA record is used
    /// as the origin).
    pub fn builder() -> TestDnsServerBuilder {
        TestDnsServerBuilder {
            zone_files: Vec::new(),
            servfail: Vec::new(),
            blackhole: Vec::new(),
            log_queries: true,
            worker_threads: 2,
            address: Ipv4Addr::LOCALHOST,
            port: 0,
            delay: None,
        }
    }

    /// `127.0.0.1:PORT`, serving both UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port, the same for UDP and TCP.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `"127.0.0.1:PORT"`, suitable for a `--nameserver` flag.
    pub fn nameserver_arg(&self) -> String {
        self.addr.to_string()
    }

    /// Number of requests the server received (UDP + TCP), including SERVFAIL-ed and
    /// blackholed ones. Requests hickory cannot parse at all are not counted.
    pub fn query_count(&self) -> u64 {
        self.state.total.load(Ordering::Relaxed)
    }

    /// Number of requests received over TCP (a subset of [`Self::query_count`]).
    pub fn tcp_query_count(&self) -> u64 {
        self.state.tcp.load(Ordering::Relaxed)
    }

    /// Resets both the total and the TCP query counters to zero (the query log is kept; see
    /// [`Self::clear_queries`]).
    pub fn reset_query_count(&self) {
        self.state.total.store(0, Ordering::Relaxed);
        self.state.tcp.store(0, Ordering::Relaxed);
    }

    /// Log of every query received, in arrival order: (name, lowercase and fully qualified
    /// with a trailing dot; record type, e.g. `"TXT"`). Empty if the builder disabled logging.
    pub fn queries(&self) -> Vec<(String, String)> {
        self.state
            .log
            .as_ref()
            .map(|log| lock(log).clone())
            .unwrap_or_default()
    }

    /// Log of every query received over TCP, in arrival order (same format as
    /// [`Self::queries`]).
    pub fn tcp_queries(&self) -> Vec<(String, String)> {
        self.state
            .tcp_log
            .as_ref()
            .map(|log| lock(log).clone())
            .unwrap_or_default()
    }

    /// Clears the query logs.
    pub fn clear_queries(&self) {
        if let Some(log) = &self.state.log {
            lock(log).clear();
        }
        if let Some(log) = &self.state.tcp_log {
            lock(log).clear();
        }
    }
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Do not double-panic if the server thread panicked while we are unwinding.
            let result = thread.join();
            if result.is_err() && !std::thread::panicking() {
                panic!("test DNS server thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for TestDnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDnsServer")
            .field("addr", &self.addr)
            .field("query_count", &self.query_count())
            .finish()
    }
}

impl TestDnsServerBuilder {
    /// Adds every `*.zone` file in `dir` (non-recursive, in file-name order). May be called
    /// several times. Panics if the directory cannot be read.
    pub fn zone_dir(mut self, dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
            panic!(
                "test DNS server: cannot read zone directory {}: {e}",
                dir.display()
            )
        });
        let mut files: Vec<PathBuf> = entries
            .map(|entry| {
                entry
                    .unwrap_or_else(|e| {
                        panic!(
                            "test DNS server: cannot read zone directory {}: {e}",
                            dir.display()
                        )
                    })
                    .path()
            })
            .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "zone"))
            .collect();
        files.sort();
        self.zone_files.extend(files);
        self
    }

    /// Adds one zone file. Its origin is the file name without a trailing `.zone` (unless the
    /// file sets `$ORIGIN`). A file named `*.rfc3597` is a signed zone in RFC 3597 generic form
    /// (see the module doc).
    pub fn zone_file(mut self, path: impl AsRef<Path>) -> Self {
        self.zone_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Listens on `address` (any 127.0.0.0/8 address: Linux answers them all on loopback)
    /// and `port` (0: any free one) instead of `127.0.0.1:0`. Several servers on one port at
    /// different loopback addresses stand for a zone's name servers, which resolvers ask on
    /// one port (`--authoritative-port`).
    pub fn bind(mut self, address: Ipv4Addr, port: u16) -> Self {
        self.address = address;
        self.port = port;
        self
    }

    /// Queries for this name or any name below it get SERVFAIL. Trailing dot optional,
    /// case-insensitive.
    pub fn servfail(mut self, name: &str) -> Self {
        self.servfail.push(name.to_owned());
        self
    }

    /// Queries for this name or any name below it are never answered (the client times out).
    /// They are still counted and logged.
    pub fn blackhole(mut self, name: &str) -> Self {
        self.blackhole.push(name.to_owned());
        self
    }

    /// Whether to record every query for [`TestDnsServer::queries`] (default `true`). Counting
    /// is always on; turning the log off avoids a mutex push per query in benchmarks.
    pub fn log_queries(mut self, enabled: bool) -> Self {
        self.log_queries = enabled;
        self
    }

    /// Holds every answer back this long, as a resolver across a network would (benchmarks
    /// use it to see what a run costs when the network, not the CPU, is the limit). Questions
    /// are still answered concurrently.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Number of tokio worker threads of the server runtime (default 2; 1 gives a
    /// current-thread runtime).
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = n.max(1);
        self
    }

    /// Loads the zones, binds UDP and TCP on `127.0.0.1` (same OS-chosen port) and starts the
    /// server on a background thread with its own tokio runtime. Panics (naming the file) if a
    /// zone fails to load, or if the sockets cannot be bound.
    pub fn start(self) -> TestDnsServer {
        let mut catalog = Catalog::new();
        let mut loaded: BTreeMap<LowerName, PathBuf> = BTreeMap::new();
        let mut handlers: Vec<(LowerName, Arc<dyn ZoneHandler>)> = Vec::new();
        for path in &self.zone_files {
            let handler = load_zone(path);
            let origin = handler.origin().clone();
            if let Some(previous) = loaded.insert(origin.clone(), path.clone()) {
                panic!(
                    "test DNS server: zone {origin} is defined twice: {} and {}",
                    previous.display(),
                    path.display()
                );
            }
            let handler = Arc::new(handler) as Arc<dyn ZoneHandler>;
            handlers.push((origin.clone(), handler.clone()));
            catalog.upsert(origin, vec![handler]);
        }
        let ds_routes = ds_routes(&handlers);

        let state = Arc::new(SharedState {
            total: AtomicU64::new(0),
            tcp: AtomicU64::new(0),
            log: self.log_queries.then(|| Mutex::new(Vec::new())),
            tcp_log: self.log_queries.then(|| Mutex::new(Vec::new())),
        });
        let handler = TestHandler {
            catalog,
            ds_routes,
            servfail: self.servfail.iter().map(|n| parse_name(n)).collect(),
            blackhole: self.blackhole.iter().map(|n| parse_name(n)).collect(),
            state: state.clone(),
            delay: self.delay,
        };

        let (udp, tcp) = bind_same_port(self.address, self.port);
        let addr = udp.local_addr().expect("test DNS server: udp local_addr");

        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let worker_threads = self.worker_threads;
        let thread = std::thread::Builder::new()
            .name(format!("test-dns-{}", addr.port()))
            .spawn(move || {
                let runtime = if worker_threads <= 1 {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                } else {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(worker_threads)
                        .thread_name("test-dns-worker")
                        .enable_all()
                        .build()
                }
                .expect("test DNS server: failed to build tokio runtime");

                runtime.block_on(async move {
                    let udp = tokio::net::UdpSocket::from_std(udp)
                        .expect("test DNS server: register UDP socket");
                    let tcp = tokio::net::TcpListener::from_std(tcp)
                        .expect("test DNS server: register TCP listener");
                    let mut server = Server::new(handler);
                    server.register_socket(udp);
                    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
                    let _ = ready_tx.send(());

                    // Wait for Drop (or for the owner to disappear).
                    let _ = shutdown_rx.await;
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), server.shutdown_gracefully())
                            .await;
                });
                // Anything still running (e.g. a stuck connection) is cancelled here.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("test DNS server: failed to spawn server thread");

        ready_rx
            .recv()
            .expect("test DNS server: server thread died during startup");

        TestDnsServer {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }
}

/// Binds a UDP socket on `127.0.0.1:0` that is never read, so queries sent to it time out.
/// Keep the returned socket alive for as long as the address is used. Returns the socket and
/// its `"127.0.0.1:PORT"` string.
pub fn unreachable_nameserver() -> (std::net::UdpSocket, String) {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("unreachable_nameserver: bind 127.0.0.1:0");
    let addr = socket
        .local_addr()
        .expect("unreachable_nameserver: local_addr");
    (socket, addr.to_string())
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

type QueryLog = Mutex<Vec<(String, String)>>;

struct SharedState {
    total: AtomicU64,
    tcp: AtomicU64,
    log: Option<QueryLog>,
    tcp_log: Option<QueryLog>,
}

fn lock(log: &QueryLog) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
    // A panic while holding this lock cannot leave the Vec inconsistent.
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

enum Action {
    Serve,
    ServFail,
    Blackhole,
}

struct TestHandler {
    catalog: Catalog,
    /// For each served zone whose parent zone is served too: a catalog of the parent alone,
    /// which answers DS questions about the zone's apex (the DS RRset, or the NSEC/NSEC3 proof
    /// that there is none, is the parent's data; the longest match would pick the child).
    ds_routes: HashMap<LowerName, Catalog>,
    servfail: Vec<LowerName>,
    blackhole: Vec<LowerName>,
    state: Arc<SharedState>,
    delay: Option<Duration>,
}

impl TestHandler {
    /// Counts and logs the request, and decides what to do with it.
    fn classify(&self, request: &Request) -> Action {
        let is_tcp = request.protocol() == Protocol::Tcp;
        self.state.total.fetch_add(1, Ordering::Relaxed);
        if is_tcp {
            self.state.tcp.fetch_add(1, Ordering::Relaxed);
        }

        let mut action = Action::Serve;
        for query in request.queries.queries() {
            let name = query.name();
            if let Some(log) = &self.state.log {
                let entry = (name.to_string(), query.query_type().to_string());
                if is_tcp {
                    if let Some(tcp_log) = &self.state.tcp_log {
                        lock(tcp_log).push(entry.clone());
                    }
                }
                lock(log).push(entry);
            }
            if self.blackhole.iter().any(|b| b.zone_of(name)) {
                action = Action::Blackhole;
            } else if matches!(action, Action::Serve)
                && self.servfail.iter().any(|s| s.zone_of(name))
            {
                action = Action::ServFail;
            }
        }
        action
    }
}

async fn send_servfail<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
) -> ResponseInfo {
    let response_edns = request.edns.as_ref().map(|req_edns| {
        let mut edns = Edns::new();
        edns.set_max_payload(req_edns.max_payload().max(512));
        edns
    });
    let response = MessageResponseBuilder::new(&request.queries, response_edns.as_ref())
        .error_msg(&request.metadata, ResponseCode::ServFail);
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => no_response_info(request, ResponseCode::ServFail),
    }
}

/// A `ResponseInfo` for a response that was never sent.
fn no_response_info(request: &Request, response_code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = response_code;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

// `RequestHandler` is declared with `#[async_trait]`; this is its expansion written by hand so
// that no extra dev-dependency is needed.
impl RequestHandler for TestHandler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if let Some(delay) = self.delay {
                tokio::time::sleep(delay).await;
            }
            match self.classify(request) {
                Action::Serve => {
                    let parent = request
                        .queries
                        .queries()
                        .first()
                        .filter(|q| q.query_type() == RecordType::DS)
                        .and_then(|q| self.ds_routes.get(q.name()));
                    parent
                        .unwrap_or(&self.catalog)
                        .handle_request::<R, T>(request, response_handle)
                        .await
                }
                Action::ServFail => send_servfail(request, response_handle).await,
                // Simply never respond: the client times out.
                Action::Blackhole => no_response_info(request, ResponseCode::NoError),
            }
        })
    }
}

/// Parses a user-supplied name as a fully-qualified, lowercase name.
fn parse_name(name: &str) -> LowerName {
    let mut parsed = Name::from_str(name)
        .unwrap_or_else(|e| panic!("test DNS server: invalid domain name {name:?}: {e}"));
    parsed.set_fqdn(true);
    LowerName::new(&parsed)
}

/// For each zone with a served ancestor, a catalog holding only the closest one (see
/// [`TestHandler::ds_routes`]).
fn ds_routes(handlers: &[(LowerName, Arc<dyn ZoneHandler>)]) -> HashMap<LowerName, Catalog> {
    let mut routes = HashMap::new();
    for (origin, _) in handlers {
        let parent = handlers
            .iter()
            .filter(|(other, _)| other != origin && other.zone_of(origin))
            .max_by_key(|(other, _)| other.num_labels());
        if let Some((parent_origin, parent)) = parent {
            let mut only_parent = Catalog::new();
            only_parent.upsert(parent_origin.clone(), vec![parent.clone()]);
            routes.insert(origin.clone(), only_parent);
        }
    }
    routes
}

/// Loads one zone file into an in-memory, authoritative zone handler.
fn load_zone(path: &Path) -> InMemoryZoneHandler {
    if path.extension().is_some_and(|ext| ext == "rfc3597") {
        return load_signed_zone(path);
    }
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("test DNS server: bad zone file name {}", path.display()));
    let default_origin = file_name.strip_suffix(".zone").unwrap_or(file_name);
    let default_origin = Name::from_str(default_origin).unwrap_or_else(|e| {
        panic!(
            "test DNS server: zone file {}: file name is not a valid zone origin: {e}",
            path.display()
        )
    });

    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "test DNS server: cannot read zone file {}: {e}",
            path.display()
        )
    });
    // hickory's lexer mis-reads quoted strings inside parentheses; mailshift's loader has the fix.
    let text = mailshift::dns::zone::flatten_parentheses(&text);
    let (parsed_origin, records) =
        Parser::new(text, Some(path.to_path_buf()), Some(default_origin))
            .parse()
            .unwrap_or_else(|e| {
                panic!(
                    "test DNS server: failed to parse zone file {}: {e}",
                    path.display()
                )
            });

    let origin = zone_origin(path, parsed_origin, &records);
    check_encodable(path, &records);
    InMemoryZoneHandler::new(origin, records, ZoneType::Primary, AxfrPolicy::Deny, None)
        .unwrap_or_else(|e| {
            panic!(
                "test DNS server: failed to load zone file {}: {e}",
                path.display()
            )
        })
}

/// Loads a signed zone written in RFC 3597 generic form (`OWNER TTL CLASS TYPEnn \# LEN HEX`,
/// one record a line, as `ldns-read-zone -u TYPE` prints it). Each RRSIG is attached to the
/// RRset it covers once the handler holds the records (`InMemoryZoneHandler::new` drops
/// attached signatures, and would keep loose ones as an RRset of their own); the zone's
/// NSEC3PARAM, or its NSEC records, say how negative answers are proven.
fn load_signed_zone(path: &Path) -> InMemoryZoneHandler {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "test DNS server: cannot read zone file {}: {e}",
            path.display()
        )
    });
    let mut records: BTreeMap<RrKey, RecordSet> = BTreeMap::new();
    let mut signatures: Vec<Record> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let record = generic_record(line).unwrap_or_else(|e| {
            panic!(
                "test DNS server: zone file {}:{}: {e}: {line}",
                path.display(),
                number + 1
            )
        });
        if record.record_type() == RecordType::RRSIG {
            signatures.push(record);
            continue;
        }
        let key = RrKey::new(LowerName::new(&record.name), record.record_type());
        records
            .entry(key)
            .or_insert_with(|| RecordSet::new(record.name.clone(), record.record_type(), 0))
            .insert(record, 0);
    }
    let nx_proof_kind = nx_proof_kind(&records);
    let origin = zone_origin(path, Name::root(), &records);
    check_encodable(path, &records);
    let mut handler = InMemoryZoneHandler::new(
        origin,
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
        nx_proof_kind,
    )
    .unwrap_or_else(|e| {
        panic!(
            "test DNS server: failed to load zone file {}: {e}",
            path.display()
        )
    });
    let sets = handler.records_get_mut();
    for signature in signatures {
        let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &signature.data else {
            continue;
        };
        let key = RrKey::new(LowerName::new(&signature.name), rrsig.input().type_covered);
        let Some(set) = sets.get_mut(&key) else {
            panic!(
                "test DNS server: zone file {}: an RRSIG over {} {} covers no RRset",
                path.display(),
                signature.name,
                rrsig.input().type_covered
            );
        };
        Arc::make_mut(set).insert_rrsig(signature);
    }
    handler
}

/// One record in RFC 3597 generic form, its RDATA decoded by hickory's wire decoder.
fn generic_record(line: &str) -> Result<Record, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [owner, ttl, _class, record_type, marker, length, hex @ ..] = fields.as_slice() else {
        return Err("not OWNER TTL CLASS TYPE \\# LENGTH HEX".into());
    };
    if *marker != "\\#" {
        return Err("the RDATA is not in generic form (\\#)".into());
    }
    let record_type = record_type
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
        .map(RecordType::from)
        .ok_or_else(|| format!("`{record_type}` is not TYPEnn"))?;
    let length: u16 = length
        .parse()
        .map_err(|_| format!("bad length `{length}`"))?;
    let hex: String = hex.concat();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("bad hex `{hex}`"))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    if bytes.len() != usize::from(length) {
        return Err(format!("{} bytes of RDATA, not {length}", bytes.len()));
    }
    let data = RData::read(
        &mut BinDecoder::new(&bytes),
        record_type,
        Restrict::new(length),
    )
    .map_err(|e| format!("cannot decode the RDATA: {e}"))?;
    let ttl: u32 = ttl.parse().map_err(|_| format!("bad TTL `{ttl}`"))?;
    let mut name = Name::from_str(owner).map_err(|e| format!("bad owner `{owner}`: {e}"))?;
    name.set_fqdn(true);
    Ok(Record::from_rdata(name, ttl, data))
}

/// How the zone proves that names and types do not exist: NSEC3 with its NSEC3PARAM's
/// parameters, NSEC, or not at all (an unsigned zone).
fn nx_proof_kind(records: &BTreeMap<RrKey, RecordSet>) -> Option<NxProofKind> {
    let param = records
        .values()
        .filter(|set| set.record_type() == RecordType::NSEC3PARAM)
        .flat_map(|set| set.records_without_rrsigs())
        .find_map(|record| match &record.data {
            RData::DNSSEC(DNSSECRData::NSEC3PARAM(param)) => Some(param.clone()),
            _ => None,
        });
    if let Some(param) = param {
        return Some(NxProofKind::Nsec3 {
            algorithm: param.hash_algorithm(),
            salt: Arc::from(param.salt()),
            iterations: param.iterations(),
            opt_out: param.opt_out(),
        });
    }
    records
        .keys()
        .any(|key| key.record_type == RecordType::NSEC)
        .then_some(NxProofKind::Nsec)
}

/// Encodes every record once so that a record hickory cannot put on the wire (e.g. a TXT
/// character-string longer than 255 bytes) fails loudly at load time. Otherwise hickory would
/// answer such queries with a bare SERVFAIL without a question section, which clients ignore,
/// so they would just time out.
fn check_encodable(path: &Path, records: &BTreeMap<RrKey, RecordSet>) {
    for rrset in records.values() {
        for record in rrset.records_without_rrsigs() {
            if let Err(e) = record.to_bytes() {
                panic!(
                    "test DNS server: zone file {}: record {} {} cannot be encoded: {e}",
                    path.display(),
                    record.name,
                    record.record_type()
                );
            }
        }
    }
}

/// The zone origin is the owner of the (single) SOA record; this honours `$ORIGIN` and also
/// works if the SOA owner is written out explicitly.
fn zone_origin(path: &Path, parsed_origin: Name, records: &BTreeMap<RrKey, RecordSet>) -> Name {
    let soa_owners: Vec<&LowerName> = records
        .keys()
        .filter(|key| key.record_type == RecordType::SOA)
        .map(|key| &key.name)
        .collect();
    match soa_owners.as_slice() {
        [owner] => Name::from(*owner),
        [] => panic!(
            "test DNS server: zone file {} has no SOA record (origin {parsed_origin})",
            path.display()
        ),
        many => panic!(
            "test DNS server: zone file {} has several SOA records: {}",
            path.display(),
            many.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Binds a UDP socket on `127.0.0.1:0` with a large receive buffer: with hundreds of queries
/// in flight the default (~208 KiB, i.e. a few hundred small datagrams) overflows whenever the
/// server task is briefly descheduled, and every dropped query costs the client a timeout.
fn bind_udp(address: Ipv4Addr, port: u16) -> std::net::UdpSocket {
    use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(SockProtocol::UDP))
        .expect("test DNS server: cannot create UDP socket");
    // Best effort: the kernel caps this at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_RECV_BUFFER);
    socket
        .bind(&SocketAddr::from((address, port)).into())
        .unwrap_or_else(|e| panic!("test DNS server: cannot bind UDP {address}:{port}: {e}"));
    socket.into()
}

/// Binds UDP on `address:port`, then TCP on the same port; with port 0, retries with a new
/// UDP port if that TCP port is taken.
fn bind_same_port(address: Ipv4Addr, port: u16) -> (std::net::UdpSocket, std::net::TcpListener) {
    let mut last_error = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = bind_udp(address, port);
        let port = udp
            .local_addr()
            .expect("test DNS server: udp local_addr")
            .port();
        match std::net::TcpListener::bind((address, port)) {
            Ok(tcp) => {
                udp.set_nonblocking(true)
                    .expect("test DNS server: set UDP socket non-blocking");
                tcp.set_nonblocking(true)
                    .expect("test DNS server: set TCP listener non-blocking");
                return (udp, tcp);
            }
            Err(e) => last_error = Some(e),
        }
    }
    panic!(
        "test DNS server: could not bind TCP on the same port as UDP after {BIND_ATTEMPTS} attempts: {last_error:?}"
    );
}
