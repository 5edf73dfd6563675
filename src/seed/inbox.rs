//! The seed inbox: a small SMTP server that plays the seed mailbox.
//!
//! Point a seed domain's MX at it. It accepts mail only for the plan's seed addresses (it never
//! relays), enforces size, connection, error and time limits, offers STARTTLS when given a
//! certificate, and answers malformed SMTP with a proper 5xx — a hostile client cannot crash it.
//! Every message is verified on arrival (SPF for the connecting IP, DKIM, DMARC, ARC, header rules)
//! and stored with its verdict, durably, *before* the 250: an acknowledged message is never lost.
//! Commands are parsed with smtp-proto; sessions run on Tokio.

use super::store::{NewArrival, Store};
use crate::dns::Resolver;
use crate::verify::{verify_message, Envelope};
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{Error as SmtpError, Request};
use std::collections::HashSet;
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
    pub max_recipients: usize,
    /// Bad commands tolerated per session before it is closed.
    pub max_errors: usize,
    /// Time allowed for each command (and for each chunk of DATA).
    pub command_timeout: Duration,
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
            max_recipients: 100,
            max_errors: 10,
            command_timeout: Duration::from_secs(120),
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

/// A running inbox's shared parts.
struct Shared {
    config: InboxConfig,
    store: Arc<Store>,
    resolver: Resolver,
    connections: Semaphore,
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
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = cache_expiry.tick() => self.shared.resolver.clear_cache(),
                accepted = self.listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let shared = self.shared.clone();
                    sessions.spawn(async move { session(stream, peer, shared).await });
                }
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
    let Ok(_permit) = shared.connections.try_acquire() else {
        let mut stream = stream;
        let _ = stream
            .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
            .await;
        return;
    };
    let mut state = Session {
        peer,
        helo: None,
        tls: false,
        errors: 0,
        tx: Transaction::default(),
    };
    let mut stream = stream;
    let greeting = format!(
        "220 {} ESMTP mailshift seed inbox\r\n",
        shared.config.hostname
    );
    if stream.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    match run(&mut stream, &mut state, &shared).await {
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
            let _ = run(&mut tls_stream, &mut state, &shared).await;
        }
    }
}

async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, text: &str) -> bool {
    stream.write_all(text.as_bytes()).await.is_ok() && stream.flush().await.is_ok()
}

/// Serves commands on one stream until QUIT, an error, a timeout, or STARTTLS.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    state: &mut Session,
    shared: &Shared,
) -> End {
    let config = &shared.config;
    let mut receiver = RequestReceiver::default();
    let mut data: Option<Incoming> = None;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut stopping = shared.stopping.clone();
    loop {
        let read = tokio::select! {
            read = tokio::time::timeout(config.command_timeout, stream.read(&mut chunk)) => read,
            _ = stopping.changed() => {
                reply(stream, "421 4.3.2 The seed inbox is shutting down; try again later\r\n").await;
                return End::Close;
            }
        };
        let n = match read {
            Err(_) => {
                reply(
                    stream,
                    "421 4.4.2 Idle for too long, closing the connection\r\n",
                )
                .await;
                return End::Close;
            }
            Ok(Err(_)) | Ok(Ok(0)) => return End::Close,
            Ok(Ok(n)) => n,
        };
        let mut iter = chunk[..n].iter();
        let mut out = String::new();
        loop {
            if let Some(incoming) = data.as_mut() {
                let done = incoming.receiver.ingest(&mut iter, &mut incoming.message);
                if incoming.message.len() > config.max_message_size {
                    // Keep reading to the end of DATA, but no longer keep the bytes.
                    incoming.too_large = true;
                    incoming.message.clear();
                }
                if !done {
                    break;
                }
                if let Some(finished) = data.take() {
                    if finished.too_large {
                        out.push_str(&format!(
                            "552 5.3.4 The message is larger than {} bytes\r\n",
                            config.max_message_size
                        ));
                    } else {
                        out.push_str(&deliver(state, shared, finished.message).await);
                    }
                }
                state.tx = Transaction::default();
                continue;
            }
            if iter.as_slice().is_empty() {
                break;
            }
            match receiver.ingest(&mut iter) {
                Ok(request) => {
                    let request = request.into_owned();
                    match handle(request, state, config) {
                        Action::Reply(text) => out.push_str(&text),
                        Action::Data => {
                            out.push_str("354 Start mail input; end with <CRLF>.<CRLF>\r\n");
                            data = Some(Incoming {
                                receiver: DataReceiver::new(),
                                message: Vec::new(),
                                too_large: false,
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
                    state.errors += 1;
                    out.push_str(&error_reply(&error));
                    if state.errors >= config.max_errors {
                        out.push_str("421 4.7.0 Too many errors, closing the connection\r\n");
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

/// A message being received after DATA.
struct Incoming {
    receiver: DataReceiver,
    message: Vec<u8>,
    too_large: bool,
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

fn handle(request: Request<String>, state: &mut Session, config: &InboxConfig) -> Action {
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
            if from.size > config.max_message_size {
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
