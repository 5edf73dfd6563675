//! The seed inbox: a small SMTP server that plays the seed mailbox.
//!
//! Point a seed domain's MX at it. It is an MX on the internet, so it holds like one: it
//! accepts mail only for the plan's seed addresses (it never relays); each command must arrive
//! whole within a deadline that does not restart on every byte, and the DATA phase has its own
//! deadline and a minimum rate (a client trickling a byte every few seconds is cut off, as
//! Postfix's `smtpd_timeout` and per-client limits do); connections are capped in all and per
//! client address; every 5xx reply counts against a session's error budget; accept errors
//! (out of file descriptors) back off instead of spinning. It offers STARTTLS when given a
//! certificate, and answers malformed SMTP with a proper 5xx — a hostile client cannot crash it.
//! Every message is verified on arrival (SPF for the connecting IP, DKIM, DMARC, ARC, header rules)
//! and stored with its verdict, durably, *before* the 250: an acknowledged message is never lost.
//! Commands are parsed with smtp-proto; sessions run on Tokio.

use super::store::{NewArrival, Store};
use crate::dns::Resolver;
use crate::verify::{verify_message, Envelope};
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{Error as SmtpError, Request};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::rustls;

/// The inbox's limits and identity.
#[derive(Clone)]
pub struct InboxConfig {
    /// The name in the greeting and in `Received:`.
    pub hostname: String,
    /// Addresses mail is accepted for (lower case); everything else is refused.
    pub recipients: HashSet<String>,
    pub max_message_size: usize,
    pub max_connections: usize,
    /// Connections at once from one client address (one IPv6 /64).
    pub max_connections_per_client: usize,
    pub max_recipients: usize,
    /// 5xx replies (bad commands, refused recipients, …) tolerated per session before it is
    /// closed with 421.
    pub max_errors: usize,
    /// Time allowed for each whole command line, counted from the previous reply: reading one
    /// byte at a time does not extend it.
    pub command_timeout: Duration,
    /// The whole DATA phase may take at most this long.
    pub data_timeout: Duration,
    /// After `data_grace`, DATA must arrive at least this fast (bytes per second, averaged over
    /// the phase).
    pub min_data_rate: u64,
    pub data_grace: Duration,
    /// A whole session (all its messages) may last at most this long.
    pub session_timeout: Duration,
    /// STARTTLS, when a certificate was given.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long DNS answers are reused before the cache is emptied: an inbox runs for weeks,
    /// and a DKIM key rotated meanwhile must be seen.
    pub dns_cache_lifetime: Duration,
}

impl InboxConfig {
    pub fn new(recipients: impl IntoIterator<Item = String>) -> InboxConfig {
        InboxConfig {
            hostname: "mailshift-seed-inbox".into(),
            recipients: recipients
                .into_iter()
                .map(|r| r.to_ascii_lowercase())
                .collect(),
            max_message_size: 25 * 1024 * 1024,
            max_connections: 100,
            max_connections_per_client: 10,
            max_recipients: 100,
            max_errors: 10,
            command_timeout: Duration::from_secs(120),
            data_timeout: Duration::from_secs(600),
            min_data_rate: 1024,
            data_grace: Duration::from_secs(30),
            session_timeout: Duration::from_secs(1800),
            tls: None,
            dns_cache_lifetime: Duration::from_secs(300),
        }
    }
}

/// Loads a PEM certificate chain and private key into a TLS server configuration.
pub fn tls_config(
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let read = |p: &std::path::Path| {
        crate::files::read(p, crate::files::FileKind::Pem).map_err(|e| e.to_string())
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate ({e})", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in the file",
            cert_path.display()
        ));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("{}: not a PEM private key ({e})", key_path.display()))?
        .ok_or_else(|| format!("{}: no private key in the file", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(config))
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The key a client's connections are counted under: its address, or its /64 for IPv6 (one
/// host can use a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// One connection counted against its client's limit, until dropped.
struct ClientSlot<'a> {
    shared: &'a Shared,
    key: IpAddr,
}

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut clients) = self.shared.clients.lock() {
            if let Some(n) = clients.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    clients.remove(&self.key);
                }
            }
        }
    }
}

/// A running inbox's shared parts.
struct Shared {
    config: InboxConfig,
    store: Arc<Store>,
    resolver: Resolver,
    connections: Semaphore,
    /// Open connections per client address.
    clients: std::sync::Mutex<HashMap<IpAddr, usize>>,
    /// Becomes `true` when the inbox shuts down: idle sessions say 421 and close.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// The listening inbox.
pub struct Inbox {
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Inbox {
    /// Binds `listen`. Must be called inside a Tokio runtime.
    pub async fn bind(
        listen: SocketAddr,
        config: InboxConfig,
        store: Arc<Store>,
        resolver: Resolver,
    ) -> std::io::Result<Inbox> {
        let listener = TcpListener::bind(listen).await?;
        let connections = Semaphore::new(config.max_connections.max(1));
        let (stop, stopping) = tokio::sync::watch::channel(false);
        Ok(Inbox {
            listener,
            shared: Arc::new(Shared {
                config,
                store,
                resolver,
                connections,
                clients: std::sync::Mutex::new(HashMap::new()),
                stopping,
            }),
            stop,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` completes. Then sessions waiting for a command are
    /// told 421 and closed; a message being verified and stored is finished first, so nothing
    /// acknowledged is lost and nothing unacknowledged was promised.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut sessions = tokio::task::JoinSet::new();
        let lifetime = self
            .shared
            .config
            .dns_cache_lifetime
            .max(Duration::from_secs(1));
        let mut cache_expiry =
            tokio::time::interval_at(tokio::time::Instant::now() + lifetime, lifetime);
        // After an accept error (out of file descriptors, EMFILE/ENFILE), the pending
        // connection stays queued and the listener stays readable: accepting again at once
        // would spin. Wait, longer each time, until an accept succeeds.
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let mut paused_until: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = cache_expiry.tick() => self.shared.resolver.clear_cache(),
                _ = tokio::time::sleep_until(paused_until.unwrap_or_else(tokio::time::Instant::now)),
                    if paused_until.is_some() => paused_until = None,
                accepted = self.listener.accept(), if paused_until.is_none() => match accepted {
                    Ok((stream, peer)) => {
                        backoff = ACCEPT_BACKOFF_MIN;
                        let shared = self.shared.clone();
                        sessions.spawn(async move { session(stream, peer, shared).await });
                    }
                    Err(_) => {
                        paused_until = Some(tokio::time::Instant::now() + backoff);
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        let _ = self.stop.send(true);
        while sessions.join_next().await.is_some() {}
    }
}

/// Per-session SMTP state (reset by RSET, a new MAIL, and STARTTLS).
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpt: Vec<String>,
}

struct Session {
    peer: SocketAddr,
    helo: Option<String>,
    tls: bool,
    errors: usize,
    tx: Transaction,
}

/// How a run over one stream ended.
enum End {
    Close,
    StartTls,
}

async fn session(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    let Ok(_permit) = shared.connections.try_acquire() else {
        refuse(
            &mut stream,
            b"421 4.3.2 Too many connections, try again later\r\n",
        )
        .await;
        return;
    };
    let key = client_key(peer.ip());
    let admitted = shared.clients.lock().is_ok_and(|mut clients| {
        let n = clients.entry(key).or_insert(0);
        if *n >= shared.config.max_connections_per_client {
            false
        } else {
            *n += 1;
            true
        }
    });
    if !admitted {
        refuse(
            &mut stream,
            b"421 4.7.0 Too many connections from your address, try again later\r\n",
        )
        .await;
        return;
    }
    let _slot = ClientSlot {
        shared: &shared,
        key,
    };
    let session_deadline = tokio::time::Instant::now() + shared.config.session_timeout;
    let mut state = Session {
        peer,
        helo: None,
        tls: false,
        errors: 0,
        tx: Transaction::default(),
    };
    let greeting = format!(
        "220 {} ESMTP mailshift seed inbox\r\n",
        shared.config.hostname
    );
    if !reply(&mut stream, &greeting).await {
        return;
    }
    match run(&mut stream, &mut state, &shared, session_deadline).await {
        End::Close => {}
        End::StartTls => {
            let Some(config) = shared.config.tls.clone() else {
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let handshake =
                tokio::time::timeout(shared.config.command_timeout, acceptor.accept(stream)).await;
            let Ok(Ok(mut tls_stream)) = handshake else {
                return;
            };
            // RFC 3207 §4.2: forget everything said before TLS.
            state.helo = None;
            state.tx = Transaction::default();
            state.tls = true;
            let _ = run(&mut tls_stream, &mut state, &shared, session_deadline).await;
        }
    }
}

/// Says why a connection is not served, without waiting on a client that does not read.
async fn refuse(stream: &mut TcpStream, text: &[u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(text)).await;
}

/// A client that stops reading cannot hold a session either: a reply that cannot be written
/// within this time ends it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, text: &str) -> bool {
    let write = async {
        stream.write_all(text.as_bytes()).await?;
        stream.flush().await
    };
    matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(Ok(())))
}

/// Serves commands on one stream until QUIT, an error, a deadline, or STARTTLS.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    state: &mut Session,
    shared: &Shared,
    session_deadline: tokio::time::Instant,
) -> End {
    use tokio::time::Instant;
    let config = &shared.config;
    let mut receiver = RequestReceiver::default();
    let mut data: Option<Incoming> = None;
    let mut chunk = vec![0u8; 64 * 1024];
    // The bytes of the command being received (for what smtp-proto does not check: SIZE).
    let mut line: Vec<u8> = Vec::new();
    let mut stopping = shared.stopping.clone();
    let mut command_deadline = Instant::now() + config.command_timeout;
    loop {
        let (deadline, why) = match &data {
            Some(incoming) => (
                incoming.deadline(config),
                "421 4.4.2 The message data is arriving too slowly, closing the connection\r\n",
            ),
            None => (
                command_deadline,
                "421 4.4.2 The command did not arrive in time, closing the connection\r\n",
            ),
        };
        let (deadline, why) = if session_deadline < deadline {
            (
                session_deadline,
                "421 4.4.2 The session has lasted too long, closing the connection\r\n",
            )
        } else {
            (deadline, why)
        };
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)) => read,
            _ = stopping.changed() => {
                reply(stream, "421 4.3.2 The seed inbox is shutting down; try again later\r\n").await;
                return End::Close;
            }
        };
        let n = match read {
            Err(_) => {
                reply(stream, why).await;
                return End::Close;
            }
            Ok(Err(_)) | Ok(Ok(0)) => return End::Close,
            Ok(Ok(n)) => n,
        };
        let mut iter = chunk[..n].iter();
        let mut out = String::new();
        loop {
            if let Some(incoming) = data.as_mut() {
                let before = iter.as_slice().len();
                let done = incoming.receiver.ingest(&mut iter, &mut incoming.message);
                incoming.received += (before - iter.as_slice().len()) as u64;
                if incoming.message.len() > config.max_message_size {
                    // Keep reading to the end of DATA, but no longer keep the bytes.
                    incoming.too_large = true;
                    incoming.message.clear();
                }
                if !done {
                    break;
                }
                if let Some(finished) = data.take() {
                    let answer = if finished.too_large {
                        format!(
                            "552 5.3.4 The message is larger than {} bytes\r\n",
                            config.max_message_size
                        )
                    } else {
                        deliver(state, shared, finished.message).await
                    };
                    if count_error(state, &answer, config, &mut out) {
                        reply(stream, &out).await;
                        return End::Close;
                    }
                }
                state.tx = Transaction::default();
                command_deadline = Instant::now() + config.command_timeout;
                continue;
            }
            if iter.as_slice().is_empty() {
                break;
            }
            let before = iter.as_slice();
            let result = receiver.ingest(&mut iter);
            let consumed = before.len() - iter.as_slice().len();
            if line.len() < MAX_LINE_KEPT {
                line.extend_from_slice(&before[..consumed.min(MAX_LINE_KEPT)]);
            }
            match result {
                Ok(request) => {
                    let request = request.into_owned();
                    let raw = std::mem::take(&mut line);
                    command_deadline = Instant::now() + config.command_timeout;
                    match handle(request, &raw, state, config) {
                        Action::Reply(text) => {
                            if count_error(state, &text, config, &mut out) {
                                reply(stream, &out).await;
                                return End::Close;
                            }
                        }
                        Action::Data => {
                            out.push_str("354 Start mail input; end with <CRLF>.<CRLF>\r\n");
                            data = Some(Incoming {
                                receiver: DataReceiver::new(),
                                message: Vec::new(),
                                too_large: false,
                                started: Instant::now(),
                                received: 0,
                            });
                        }
                        Action::StartTls => {
                            out.push_str("220 2.0.0 Ready to start TLS\r\n");
                            // Anything pipelined after STARTTLS is discarded (RFC 3207 §5).
                            reply(stream, &out).await;
                            return End::StartTls;
                        }
                        Action::Quit => {
                            out.push_str("221 2.0.0 Bye\r\n");
                            reply(stream, &out).await;
                            return End::Close;
                        }
                    }
                }
                Err(SmtpError::NeedsMoreData { .. }) => break,
                Err(error) => {
                    let raw = std::mem::take(&mut line);
                    let text = match (&error, declared_size(&raw)) {
                        // A number too large for smtp-proto is still a size: over the limit.
                        (SmtpError::InvalidParameter { param: "SIZE" }, Some(_)) => format!(
                            "552 5.3.4 The message is larger than {} bytes\r\n",
                            config.max_message_size
                        ),
                        _ => error_reply(&error),
                    };
                    if count_error(state, &text, config, &mut out) {
                        reply(stream, &out).await;
                        return End::Close;
                    }
                }
            }
        }
        if !out.is_empty() && !reply(stream, &out).await {
            return End::Close;
        }
    }
}

/// The most of one command line kept for mailshift's own checks (SMTP lines are 512 bytes;
/// extensions make them longer, never this long).
const MAX_LINE_KEPT: usize = 4096;

/// Adds a reply to `out`; a 5xx reply counts against the session's error budget. Returns true
/// when the budget is spent (`out` then ends with the 421 that closes the session).
fn count_error(state: &mut Session, text: &str, config: &InboxConfig, out: &mut String) -> bool {
    out.push_str(text);
    if !text.starts_with('5') {
        return false;
    }
    state.errors += 1;
    if state.errors >= config.max_errors {
        out.push_str("421 4.7.0 Too many errors, closing the connection\r\n");
        return true;
    }
    false
}

/// A message being received after DATA.
struct Incoming {
    receiver: DataReceiver,
    message: Vec<u8>,
    too_large: bool,
    started: tokio::time::Instant,
    /// Bytes received so far (also those not kept past the size limit).
    received: u64,
}

impl Incoming {
    /// When the DATA phase must have ended or made more progress: the grace period plus the
    /// time the bytes so far earn at the minimum rate, and never past the phase's limit.
    fn deadline(&self, config: &InboxConfig) -> tokio::time::Instant {
        let earned =
            Duration::from_secs_f64(self.received as f64 / config.min_data_rate.max(1) as f64);
        let by_rate = self.started + config.data_grace + earned;
        by_rate.min(self.started + config.data_timeout)
    }
}

fn error_reply(error: &SmtpError) -> String {
    match error {
        SmtpError::UnknownCommand => "500 5.5.1 Unknown command\r\n".into(),
        SmtpError::ResponseTooLong => "500 5.5.2 Line too long\r\n".into(),
        SmtpError::InvalidSenderAddress => "501 5.1.7 Bad sender address\r\n".into(),
        SmtpError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address\r\n".into(),
        SmtpError::SyntaxError { syntax } => format!("501 5.5.2 Syntax: {syntax}\r\n"),
        SmtpError::InvalidParameter { param } => format!("501 5.5.4 Invalid parameter {param}\r\n"),
        SmtpError::UnsupportedParameter { param } => {
            format!("504 5.5.4 Unsupported parameter {}\r\n", sanitize(param))
        }
        _ => "500 5.5.2 Syntax error\r\n".into(),
    }
}

/// Client text echoed in a reply: printable ASCII only, bounded.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

enum Action {
    Reply(String),
    Data,
    StartTls,
    Quit,
}

/// The value of a `SIZE=` parameter in a raw MAIL command: `Some(None)` when it is too large
/// to represent (smtp-proto wraps such values around, so they are read here as well).
fn declared_size(line: &[u8]) -> Option<Option<u64>> {
    let text = String::from_utf8_lossy(line);
    let upper = text.to_ascii_uppercase();
    let at = upper.find(" SIZE=")? + " SIZE=".len();
    let digits: String = upper[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return None;
    }
    Some(digits.parse::<u64>().ok())
}

fn handle(
    request: Request<String>,
    raw: &[u8],
    state: &mut Session,
    config: &InboxConfig,
) -> Action {
    let ok = |text: &str| Action::Reply(format!("250 {text}\r\n"));
    match request {
        Request::Ehlo { host } | Request::Lhlo { host } => {
            state.helo = Some(sanitize(&host));
            state.tx = Transaction::default();
            let mut lines = vec![
                format!("{} greets {}", config.hostname, sanitize(&host)),
                format!("SIZE {}", config.max_message_size),
                "8BITMIME".into(),
                "SMTPUTF8".into(),
                "PIPELINING".into(),
                "ENHANCEDSTATUSCODES".into(),
            ];
            if config.tls.is_some() && !state.tls {
                lines.push("STARTTLS".into());
            }
            let n = lines.len();
            let text: String = lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("250{}{l}\r\n", if i + 1 == n { ' ' } else { '-' }))
                .collect();
            Action::Reply(text)
        }
        Request::Helo { host } => {
            state.helo = Some(sanitize(&host));
            state.tx = Transaction::default();
            ok(&config.hostname)
        }
        Request::StartTls => {
            if state.tls {
                Action::Reply("503 5.5.1 TLS is already active\r\n".into())
            } else if config.tls.is_none() {
                Action::Reply(
                    "502 5.5.1 STARTTLS is not offered (no certificate configured)\r\n".into(),
                )
            } else {
                Action::StartTls
            }
        }
        Request::Mail { from } => {
            if state.helo.is_none() {
                return Action::Reply("503 5.5.1 Say EHLO or HELO first\r\n".into());
            }
            if state.tx.mail_from.is_some() {
                return Action::Reply(
                    "503 5.5.1 Sender already given (RSET to start over)\r\n".into(),
                );
            }
            // An out-of-range SIZE is over any limit (it must not wrap into a small one).
            let declared = match declared_size(raw) {
                Some(Some(size)) => size.max(from.size as u64),
                Some(None) => u64::MAX,
                None => from.size as u64,
            };
            if declared > config.max_message_size as u64 {
                return Action::Reply(format!(
                    "552 5.3.4 The message is larger than {} bytes\r\n",
                    config.max_message_size
                ));
            }
            state.tx.mail_from = Some(from.address);
            ok("2.1.0 Sender OK")
        }
        Request::Rcpt { to } => {
            if state.tx.mail_from.is_none() {
                return Action::Reply("503 5.5.1 Say MAIL FROM first\r\n".into());
            }
            if state.tx.rcpt.len() >= config.max_recipients {
                return Action::Reply("452 4.5.3 Too many recipients\r\n".into());
            }
            let address = to.address.to_ascii_lowercase();
            if !config.recipients.contains(&address) {
                return Action::Reply(format!(
                    "550 5.7.1 <{}> is not a seed address of this inbox; relaying denied\r\n",
                    sanitize(&to.address)
                ));
            }
            state.tx.rcpt.push(address);
            ok("2.1.5 Recipient OK")
        }
        Request::Data => {
            if state.tx.rcpt.is_empty() {
                Action::Reply("503 5.5.1 No valid recipients\r\n".into())
            } else {
                Action::Data
            }
        }
        Request::Bdat { .. } => Action::Reply("502 5.5.1 CHUNKING is not offered\r\n".into()),
        Request::Rset => {
            state.tx = Transaction::default();
            ok("2.0.0 Reset")
        }
        Request::Noop { .. } => ok("2.0.0 OK"),
        Request::Vrfy { .. } => {
            Action::Reply("252 2.1.5 Cannot verify, but will accept seed addresses\r\n".into())
        }
        Request::Quit => Action::Quit,
        Request::Auth { .. } => {
            Action::Reply("502 5.5.1 AUTH is not offered: this inbox only receives\r\n".into())
        }
        other => Action::Reply(format!("502 5.5.1 {} is not implemented\r\n", other.name())),
    }
}

/// The seed token of a message: the `X-Mailshift-Token` header.
pub fn token_of(message: &[u8]) -> Option<String> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| message.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(&message[..head_end]);
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("x-mailshift-token") {
                let token: String = value
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if !token.is_empty() && token.len() <= 64 {
                    return Some(token);
                }
            }
        }
    }
    None
}

/// Verifies, stores durably, and answers for one message.
async fn deliver(state: &Session, shared: &Shared, message: Vec<u8>) -> String {
    let ip: IpAddr = state.peer.ip();
    let envelope = Envelope {
        ip: Some(ip),
        helo: state.helo.clone(),
        mail_from: state.tx.mail_from.clone(),
        rcpt: state.tx.rcpt.clone(),
    };
    let verdict = verify_message(&shared.resolver, &message, &envelope).await;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let received = format!(
        "Received: from {} ([{ip}]) by {} (mailshift seed inbox) with {}; {now}\r\n",
        state.helo.as_deref().unwrap_or("unknown"),
        shared.config.hostname,
        if state.tls { "ESMTPS" } else { "ESMTP" }
    );
    let mut stored = received.into_bytes();
    stored.extend_from_slice(&message);
    let arrival = NewArrival {
        token: token_of(&message),
        received_at: now,
        remote_ip: ip.to_string(),
        helo: state.helo.clone().unwrap_or_default(),
        mail_from: state.tx.mail_from.clone().unwrap_or_default(),
        rcpt: state.tx.rcpt.join(", "),
        tls: state.tls,
        status: verdict.status.as_str().to_string(),
        verdict: serde_json::to_value(&verdict).unwrap_or(serde_json::Value::Null),
        message: stored,
    };
    match shared.store.record_arrival(arrival).await {
        Ok(id) => format!("250 2.0.0 Stored as message {id}\r\n"),
        Err(_) => "451 4.3.0 Cannot store the message right now; try again later\r\n".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_come_from_the_header() {
        assert_eq!(
            super::token_of(
                b"From: a@b.test\r\nX-Mailshift-Token: abc123\r\n\r\nX-Mailshift-Token: no\r\n"
            )
            .as_deref(),
            Some("abc123")
        );
        assert_eq!(super::token_of(b"From: a@b.test\r\n\r\nbody"), None);
        assert_eq!(super::token_of(b""), None);
    }
}
