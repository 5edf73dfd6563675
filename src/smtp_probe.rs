//! The SMTP probe (`check --probe-smtp`): what a sending server meets when it connects to each
//! MX host of a domain on port 25 — the greeting, the EHLO extensions, whether STARTTLS is
//! offered and works, the TLS version and cipher suite, and the certificate presented, checked
//! for the MX host's name with the run's trust (the system's roots, or only `--https-ca`; the
//! verifier is `web::certificate_verifier`, shared with the HTTPS fetches). The certificate's
//! verdict is recorded beside the chain instead of aborting the handshake, so the analyser
//! (`checks::smtp`) can say "expired" or "not valid for mx1.example.com" and still show what
//! was presented, and a DANE check can match the same chain against TLSA records.
//!
//! No mail is ever sent: the conversation ends with QUIT once TLS is up (or once it is clear it
//! will not be). Everything is bounded — hosts, addresses per host, line length, lines per
//! reply, the transcript, one deadline per host — because the other end may be hostile or not
//! SMTP at all. What the server said is kept apart from failing to reach it: many networks
//! block outgoing port 25, which says nothing about the domain, so the analyser calls that
//! inconclusive. Nothing here judges; [`SmtpProbes`] is data for `checks::smtp`.

use crate::dns::{QueryType, RecordData, Resolver};
use crate::domain::DomainName;
use crate::fetch::{mx_hosts, DomainRecords};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};

/// The port senders deliver to (RFC 5321 §4.5.4.2 and §3.1).
pub const DEFAULT_PORT: u16 = 25;
/// MX hosts probed per domain at most (as RFC 7208 §4.6.4 bounds the MX hosts looked up).
pub const MAX_HOSTS: usize = crate::fetch::MAX_MX_HOSTS;
/// Addresses probed per host at most: one IPv4 and one IPv6 when it has both.
pub const MAX_ADDRESSES_PER_HOST: usize = 2;
/// A reply line longer than this ends the conversation. RFC 5321 §4.5.3.1.5 allows 512 octets;
/// real banners are sometimes longer, a server streaming one endless line is not SMTP.
pub const MAX_LINE_BYTES: usize = 2048;
/// Lines of one reply at most (an EHLO reply has one per extension: a dozen in practice).
pub const MAX_REPLY_LINES: usize = 64;
/// Lines of the transcript kept for evidence.
pub const MAX_TRANSCRIPT_LINES: usize = 80;
/// Certificates of a presented chain kept at most.
pub const MAX_CHAIN: usize = 8;
/// Characters of one transcript line or reply text kept.
const MAX_TEXT_CHARS: usize = 300;
/// MX hosts probed at once across the run (each with up to [`MAX_ADDRESSES_PER_HOST`]
/// connections): a bulk run of many domains must not open thousands of sockets to port 25.
pub const MAX_HOSTS_AT_ONCE: usize = 32;
/// QUIT is a courtesy: its answer is waited for this long at most.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// How the probe connects.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The port probed (25; a test server listens elsewhere: the hidden `--smtp-port`).
    pub port: u16,
    /// For the TCP connection to one address.
    pub connect_timeout: Duration,
    /// For everything one MX host takes: its addresses are probed at once, each within it.
    pub deadline: Duration,
    /// Trust only these CA certificates instead of the system's roots (`--https-ca`).
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// No connections at all (`--offline`).
    pub offline: bool,
    /// The EHLO name; `None`: the machine's host name when it is a fully qualified name, or
    /// else the address literal of the connection's local end ([`ehlo_name`]).
    pub ehlo_name: Option<String>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            port: DEFAULT_PORT,
            connect_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(10),
            ca_certs: Vec::new(),
            offline: false,
            ehlo_name: None,
        }
    }
}

/// The SMTP side of a run: the configuration, and the certificate verifier built once, on
/// first use (reading the system's roots is not free).
#[derive(Debug)]
pub struct SmtpProber {
    config: SmtpConfig,
    verifier: tokio::sync::OnceCell<Result<Arc<dyn ServerCertVerifier>, String>>,
    machine_name: std::sync::OnceLock<Option<String>>,
    /// Bounds the hosts probed at once ([`MAX_HOSTS_AT_ONCE`]); a host's deadline starts when
    /// it gets its turn.
    hosts_at_once: tokio::sync::Semaphore,
}

/// What the probe of one domain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpProbes {
    pub port: u16,
    /// The MX hosts probed, in preference order.
    pub hosts: Vec<HostProbe>,
    /// MX hosts beyond [`MAX_HOSTS`], not probed.
    pub hosts_not_probed: usize,
    /// `--offline`: nothing was probed.
    pub offline: bool,
    /// The deadline per host, in seconds (for messages).
    pub deadline_secs: u64,
    /// When the probe ran (seconds since the Unix epoch): certificates are judged then.
    pub probed_at: i64,
    /// The domain publishes no MX record, so its own name was probed: senders deliver to
    /// it as the implicit MX (RFC 5321 §5.1).
    pub implicit_mx: bool,
}

/// One MX host and the probes of its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProbe {
    pub host: DomainName,
    pub addresses: Vec<SmtpProbe>,
    /// Addresses beyond [`MAX_ADDRESSES_PER_HOST`], not probed.
    pub addresses_not_probed: usize,
    /// Why no address was probed: none published, or the lookup failed.
    pub no_address: Option<String>,
}

/// One conversation with one address of an MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpProbe {
    pub host: DomainName,
    pub address: SocketAddr,
    /// How far the conversation got (where a timeout or a failure happened).
    pub stage: Stage,
    /// The greeting (RFC 5321 §4.2: 220, or 421/554 refusing the session).
    pub banner: Option<Reply>,
    /// The name given with EHLO.
    pub ehlo_name: Option<String>,
    pub ehlo: Option<Reply>,
    /// The EHLO extensions, one per line after the first, keyword upper-cased (`SIZE 35882577`).
    pub extensions: Vec<String>,
    pub starttls_offered: bool,
    /// The answer to STARTTLS (220: go ahead).
    pub starttls: Option<Reply>,
    /// The TLS handshake, when STARTTLS was answered 220.
    pub tls: Option<TlsOutcome>,
    /// Why the conversation stopped early; `None` when it ran to QUIT (whatever was said).
    pub error: Option<ProbeError>,
    /// What the server did that is worth knowing but decides nothing (data pipelined after its
    /// STARTTLS reply, which was discarded).
    pub notes: Vec<String>,
    /// The conversation, `C:`/`S:` lines, bounded.
    pub transcript: Vec<String>,
    pub elapsed_ms: u64,
}

impl SmtpProbe {
    /// A conversation not yet started, at `stage`.
    fn new(host: DomainName, address: SocketAddr, stage: Stage) -> SmtpProbe {
        SmtpProbe {
            host,
            address,
            stage,
            banner: None,
            ehlo_name: None,
            ehlo: None,
            extensions: Vec::new(),
            starttls_offered: false,
            starttls: None,
            tls: None,
            error: None,
            notes: Vec::new(),
            transcript: Vec::new(),
            elapsed_ms: 0,
        }
    }
}

/// How far a conversation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Banner,
    Ehlo,
    Starttls,
    Handshake,
    Quit,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What the client was waiting for, as a noun: "no greeting within 10 s".
        f.write_str(match self {
            Stage::Connect => "connection",
            Stage::Banner => "greeting",
            Stage::Ehlo => "answer to EHLO",
            Stage::Starttls => "answer to STARTTLS",
            Stage::Handshake => "TLS handshake",
            Stage::Quit => "answer to QUIT",
        })
    }
}

/// An SMTP reply: its code and the text of each line (after the code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// `554 5.7.1 go away` (the first line), for messages.
    pub fn first_line(&self) -> String {
        match self.lines.first() {
            Some(text) if !text.is_empty() => format!("{} {text}", self.code),
            _ => self.code.to_string(),
        }
    }
}

/// Why a conversation stopped before it was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("the connection was refused")]
    Refused,
    #[error("no connection within {seconds} s")]
    ConnectTimeout { seconds: u64 },
    #[error("could not connect ({reason})")]
    Connect { reason: String },
    #[error("no {stage} within {seconds} s")]
    Timeout { stage: Stage, seconds: u64 },
    #[error("the server closed the connection before the {stage}")]
    Closed { stage: Stage },
    #[error("the {stage} is not an SMTP reply: {reason}")]
    NotSmtp { stage: Stage, reason: String },
    #[error("the connection failed before the {stage} ({reason})")]
    Io { stage: Stage, reason: String },
}

impl ProbeError {
    /// True when the server was never reached: nothing it said, only that this machine could
    /// not talk to it (port 25 blocked, no route, refused).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ProbeError::Refused | ProbeError::ConnectTimeout { .. } | ProbeError::Connect { .. }
        )
    }
}

/// What the TLS handshake after STARTTLS gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOutcome {
    /// `TLS 1.3`, when the handshake completed.
    pub version: Option<String>,
    /// `TLS13_AES_256_GCM_SHA384`, when the handshake completed.
    pub cipher_suite: Option<String>,
    /// Why the handshake did not complete.
    pub failure: Option<TlsFailure>,
    /// The chain as presented, leaf first (DER), even when the handshake failed later or the
    /// certificate is not valid: what a DANE check matches TLSA records against.
    pub chain: Vec<Vec<u8>>,
    /// The leaf certificate's names and dates.
    pub leaf: Option<CertSummary>,
    /// The certificate checked for the MX host's name with the run's trust; `None` when no
    /// certificate was presented.
    pub verdict: Option<CertVerdict>,
}

/// A handshake that did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    pub kind: TlsFailureKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailureKind {
    /// The server broke the handshake (an alert, garbage, a closed connection, no common
    /// cipher suite).
    Handshake,
    /// The server offers nothing newer than TLS 1.1 (rustls speaks only TLS 1.2 and 1.3).
    NoModernVersion,
    /// Not attempted: mailshift's own TLS setup failed (no system roots).
    NotAttempted,
}

/// The certificate's verdict for the MX host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertVerdict {
    Valid,
    Invalid {
        problem: CertProblem,
        /// In plain words ("it has expired").
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    UntrustedIssuer,
    WrongName,
    Expired,
    NotYetValid,
    Revoked,
    Other,
}

/// What a leaf certificate says about itself (x509-parser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    /// The DNS names of its subjectAltName (at most 100).
    pub dns_names: Vec<String>,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
}

impl CertSummary {
    /// Reads a DER certificate; `None` when it does not parse.
    pub fn read(der: &[u8]) -> Option<CertSummary> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let dns_names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(name) => Some(clip(name)),
                        _ => None,
                    })
                    .take(100)
                    .collect()
            })
            .unwrap_or_default();
        Some(CertSummary {
            subject: clip(&cert.subject().to_string()),
            issuer: clip(&cert.issuer().to_string()),
            dns_names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

impl SmtpProber {
    pub fn new(config: SmtpConfig) -> SmtpProber {
        SmtpProber {
            config,
            verifier: tokio::sync::OnceCell::new(),
            machine_name: std::sync::OnceLock::new(),
            hosts_at_once: tokio::sync::Semaphore::new(MAX_HOSTS_AT_ONCE),
        }
    }

    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    async fn verifier(&self) -> Result<Arc<dyn ServerCertVerifier>, String> {
        self.verifier
            .get_or_init(|| async { crate::web::certificate_verifier(&self.config.ca_certs) })
            .await
            .clone()
    }

    /// The configured EHLO name, or the machine's when it is usable.
    fn named(&self) -> Option<String> {
        if let Some(name) = &self.config.ehlo_name {
            return Some(name.clone());
        }
        self.machine_name.get_or_init(machine_name).clone()
    }

    /// Probes every MX host of `records` (at most [`MAX_HOSTS`]), all at once, each within the
    /// deadline; the hosts' addresses come from `resolver` (its cache: the fetch asked already).
    pub async fn probe(&self, resolver: &Resolver, records: &DomainRecords) -> SmtpProbes {
        let mut probes = SmtpProbes {
            port: self.config.port,
            hosts: Vec::new(),
            hosts_not_probed: 0,
            offline: self.config.offline,
            deadline_secs: self.config.deadline.as_secs(),
            probed_at: chrono::Utc::now().timestamp(),
            implicit_mx: false,
        };
        if self.config.offline {
            return probes;
        }
        let mut hosts: Vec<DomainName> = Vec::new();
        let mx = records.get(&records.domain, QueryType::Mx);
        for host in mx.map(mx_hosts).unwrap_or_default() {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        // No MX records at all (not a null MX, not a failed lookup): senders deliver to the
        // domain's own address, "an implicit MX RR, with a preference of 0" (RFC 5321 §5.1).
        if mx.is_some_and(|a| a.outcome == crate::dns::Outcome::NoData) {
            hosts.push(records.domain.clone());
            probes.implicit_mx = true;
        }
        probes.hosts_not_probed = hosts.len().saturating_sub(MAX_HOSTS);
        hosts.truncate(MAX_HOSTS);
        probes.hosts =
            futures::future::join_all(hosts.into_iter().map(|h| self.probe_host(resolver, h)))
                .await;
        probes
    }

    async fn probe_host(&self, resolver: &Resolver, host: DomainName) -> HostProbe {
        // The semaphore is never closed, so a permit always comes.
        let _turn = self.hosts_at_once.acquire().await.ok();
        let deadline = Instant::now() + self.config.deadline;
        let (a, aaaa) = futures::join!(
            resolver.lookup(&host, QueryType::A),
            resolver.lookup(&host, QueryType::Aaaa)
        );
        let ips = |answer: &crate::dns::Answer| -> Vec<IpAddr> {
            answer
                .records()
                .iter()
                .filter_map(|r| match r.data {
                    RecordData::A(ip) => Some(IpAddr::V4(ip)),
                    RecordData::Aaaa(ip) => Some(IpAddr::V6(ip)),
                    _ => None,
                })
                .collect()
        };
        let (v4, v6) = (ips(&a), ips(&aaaa));
        let total = v4.len() + v6.len();
        // One of each family first: they are often different machines, or one is not served.
        let mut chosen: Vec<IpAddr> = v4
            .iter()
            .take(1)
            .chain(v6.iter().take(1))
            .copied()
            .collect();
        for ip in v4.iter().chain(&v6) {
            if chosen.len() >= MAX_ADDRESSES_PER_HOST {
                break;
            }
            if !chosen.contains(ip) {
                chosen.push(*ip);
            }
        }
        let no_address = if chosen.is_empty() {
            Some(match [&a, &aaaa].iter().find_map(|x| x.failed()) {
                Some(e) => format!("its addresses could not be looked up ({e})"),
                None => "it has no A or AAAA record".to_string(),
            })
        } else {
            None
        };
        let addresses =
            futures::future::join_all(chosen.iter().map(|ip| {
                self.probe_address(&host, SocketAddr::new(*ip, self.config.port), deadline)
            }))
            .await;
        HostProbe {
            host,
            addresses_not_probed: total.saturating_sub(addresses.len()),
            addresses,
            no_address,
        }
    }

    /// One conversation, ended by the host's deadline whatever the server does.
    async fn probe_address(
        &self,
        host: &DomainName,
        address: SocketAddr,
        deadline: Instant,
    ) -> SmtpProbe {
        let started = Instant::now();
        let mut probe = SmtpProbe::new(host.clone(), address, Stage::Connect);
        let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
        let outcome = tokio::time::timeout_at(deadline, self.converse(&mut probe, &seen)).await;
        let seconds = self.config.deadline.as_secs();
        match outcome {
            Ok(Ok(())) => {}
            // A QUIT that fails changes nothing: the server was already judged.
            Ok(Err(_)) | Err(_) if probe.stage == Stage::Quit => {}
            Ok(Err(e)) => probe.error = Some(e),
            Err(_) => {
                probe.error = Some(ProbeError::Timeout {
                    stage: probe.stage,
                    seconds,
                });
            }
        }
        if let Some(tls) = &mut probe.tls {
            // What the verifier saw survives a handshake that failed or timed out after it.
            if let Some(seen) = seen.lock().ok().and_then(|mut s| s.take()) {
                tls.leaf = seen.chain.first().and_then(|der| CertSummary::read(der));
                tls.chain = seen.chain.into_iter().map(|c| c.to_vec()).collect();
                tls.verdict = Some(seen.verdict);
            }
            if tls.version.is_none() && tls.failure.is_none() {
                tls.failure = Some(TlsFailure {
                    kind: TlsFailureKind::Handshake,
                    reason: match &probe.error {
                        Some(e) => e.to_string(),
                        None => "the handshake did not complete".into(),
                    },
                });
            }
        }
        probe.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        probe
    }

    async fn converse(
        &self,
        probe: &mut SmtpProbe,
        seen: &Arc<Mutex<Option<Seen>>>,
    ) -> Result<(), ProbeError> {
        probe.stage = Stage::Connect;
        let seconds = self.config.connect_timeout.as_secs();
        let tcp = match tokio::time::timeout(
            self.config.connect_timeout,
            TcpStream::connect(probe.address),
        )
        .await
        {
            Err(_) => return Err(ProbeError::ConnectTimeout { seconds }),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(ProbeError::Refused)
            }
            Ok(Err(e)) => {
                return Err(ProbeError::Connect {
                    reason: e.to_string(),
                })
            }
            Ok(Ok(tcp)) => tcp,
        };
        let local = tcp.local_addr().ok();
        let mut conn = Conn::new(tcp);

        probe.stage = Stage::Banner;
        let banner = conn.reply(probe).await?;
        let greeted = banner.code == 220;
        probe.banner = Some(banner);
        if !greeted {
            // 554: the server refuses the session and waits for QUIT (RFC 5321 §3.1); 421: it
            // closes. Either way nothing more is asked.
            conn.quit(probe).await;
            return Ok(());
        }

        probe.stage = Stage::Ehlo;
        let name = self.named().or_else(|| local.map(address_literal));
        let name = name.unwrap_or_else(|| "[127.0.0.1]".to_string());
        probe.ehlo_name = Some(name.clone());
        conn.send(probe, &format!("EHLO {name}")).await?;
        let ehlo = conn.reply(probe).await?;
        let accepted = ehlo.code == 250;
        if accepted {
            probe.extensions = extensions(&ehlo);
            probe.starttls_offered = probe
                .extensions
                .iter()
                .any(|e| e.split_whitespace().next() == Some("STARTTLS"));
        }
        probe.ehlo = Some(ehlo);
        if !accepted || !probe.starttls_offered {
            conn.quit(probe).await;
            return Ok(());
        }

        probe.stage = Stage::Starttls;
        conn.send(probe, "STARTTLS").await?;
        let reply = conn.reply(probe).await?;
        let go_ahead = reply.code == 220;
        probe.starttls = Some(reply);
        if !go_ahead {
            conn.quit(probe).await;
            return Ok(());
        }
        let (tcp, pipelined) = conn.into_inner();
        if pipelined {
            // RFC 3207 §5: anything before the handshake is untrusted; a server (or a
            // man in the middle) sending it is injecting commands.
            probe.notes.push(
                "the server sent data after its STARTTLS reply, before the TLS handshake (discarded)"
                    .into(),
            );
        }

        probe.stage = Stage::Handshake;
        probe.tls = Some(TlsOutcome::default());
        let verifier = match self.verifier().await {
            Ok(v) => v,
            Err(reason) => {
                not_attempted(probe, reason);
                return Ok(());
            }
        };
        let config = match client_config(verifier, seen.clone()) {
            Ok(config) => config,
            Err(reason) => {
                not_attempted(probe, reason);
                return Ok(());
            }
        };
        let server_name = match ServerName::try_from(probe.host.as_str().to_string()) {
            Ok(name) => name,
            Err(e) => {
                not_attempted(
                    probe,
                    format!("{} is not a TLS server name ({e})", probe.host),
                );
                return Ok(());
            }
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        match connector.connect(server_name, tcp).await {
            Ok(stream) => {
                let (version, suite) = {
                    let session = stream.get_ref().1;
                    (
                        session.protocol_version().map(version_name),
                        session
                            .negotiated_cipher_suite()
                            .map(|s| format!("{:?}", s.suite())),
                    )
                };
                probe.log(
                    "",
                    &format!(
                        "(TLS: {}, {})",
                        version.as_deref().unwrap_or("?"),
                        suite.as_deref().unwrap_or("?")
                    ),
                );
                if let Some(tls) = &mut probe.tls {
                    tls.version = version;
                    tls.cipher_suite = suite;
                }
                let mut conn = Conn::new(stream);
                conn.quit(probe).await;
                let mut stream = conn.into_inner().0;
                let _ = tokio::time::timeout(QUIT_WAIT, stream.shutdown()).await;
            }
            Err(e) => {
                let failure = handshake_failure(&e);
                probe.log("", &format!("(TLS handshake failed: {})", failure.reason));
                if let Some(tls) = &mut probe.tls {
                    tls.failure = Some(failure);
                }
            }
        }
        Ok(())
    }
}

/// Probes the domain's MX hosts and keeps the result in `records.smtp`.
pub async fn probe_smtp(prober: &SmtpProber, resolver: &Resolver, records: &mut DomainRecords) {
    let probes = prober.probe(resolver, records).await;
    records.smtp = Some(probes);
}

fn not_attempted(probe: &mut SmtpProbe, reason: String) {
    probe.log("", &format!("(TLS not attempted: {reason})"));
    if let Some(tls) = &mut probe.tls {
        tls.failure = Some(TlsFailure {
            kind: TlsFailureKind::NotAttempted,
            reason,
        });
    }
}

impl SmtpProbe {
    /// Adds a transcript line (`C: EHLO …`, `S: 250 …`), bounded.
    fn log(&mut self, who: &str, text: &str) {
        if self.transcript.len() > MAX_TRANSCRIPT_LINES {
            return;
        }
        if self.transcript.len() == MAX_TRANSCRIPT_LINES {
            self.transcript.push("…".into());
            return;
        }
        let text = clip(text);
        self.transcript.push(if who.is_empty() {
            text
        } else {
            format!("{who}: {text}")
        });
    }
}

/// The machine's host name, when it is a fully qualified name a receiving server can accept.
/// RFC 5321 §4.1.4 asks for the client's primary host name, or else an address literal; a bare
/// `laptop` or `localhost.localdomain` is refused by servers that check (Postfix's
/// `reject_non_fqdn_helo_hostname`), so those give way to the address literal.
fn machine_name() -> Option<String> {
    use lettre::transport::smtp::extension::ClientId;
    let ClientId::Domain(name) = ClientId::default() else {
        return None;
    };
    let name = DomainName::parse(&name).ok()?;
    let first = name.as_str().split('.').next().unwrap_or_default();
    let last = name.as_str().rsplit('.').next().unwrap_or_default();
    let local = first == "localhost" || ["localdomain", "local", "lan", "home"].contains(&last);
    (name.label_count() >= 2 && !local).then(|| name.to_string())
}

/// The EHLO name: `[192.0.2.1]`, or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
pub fn address_literal(local: SocketAddr) -> String {
    match local.ip() {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{ip}]"),
        },
    }
}

/// The extension lines of an EHLO reply (the first line is the server's name), keyword
/// upper-cased.
fn extensions(ehlo: &Reply) -> Vec<String> {
    ehlo.lines
        .iter()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let keyword = words.next()?.to_ascii_uppercase();
            let rest: Vec<&str> = words.collect();
            Some(if rest.is_empty() {
                keyword
            } else {
                format!("{keyword} {}", rest.join(" "))
            })
        })
        .collect()
}

/// `250-SIZE 100` → (250, false, "SIZE 100"); `220 ready` → (220, true, "ready"). `None` for a
/// line that is not a reply line.
fn parse_reply_line(line: &str) -> Option<(u16, bool, String)> {
    let bytes = line.as_bytes();
    let [a, b, c] = <[u8; 3]>::try_from(bytes.get(..3)?).ok()?;
    if ![a, b, c].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&a) {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    match bytes.get(3) {
        None => Some((code, true, String::new())),
        Some(b' ') => Some((code, true, line.get(4..).unwrap_or_default().to_string())),
        Some(b'-') => Some((code, false, line.get(4..).unwrap_or_default().to_string())),
        Some(_) => None,
    }
}

fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        other => format!("{other:?}"),
    }
}

/// What broke a handshake: a server that offers only TLS 1.0/1.1 is told apart.
fn handshake_failure(e: &std::io::Error) -> TlsFailure {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let old = matches!(
        tls,
        Some(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13
        )) | Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion
        ))
    );
    let reason = match tls {
        Some(tls) => tls.to_string(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection".into()
        }
        None => e.to_string(),
    };
    TlsFailure {
        kind: if old {
            TlsFailureKind::NoModernVersion
        } else {
            TlsFailureKind::Handshake
        },
        reason: clip(&reason),
    }
}

/// The TLS client of one connection: the run's protocol versions (1.2 and 1.3) and trust, with
/// a verifier that records its verdict in `seen` instead of aborting.
fn client_config(
    inner: Arc<dyn ServerCertVerifier>,
    seen: Arc<Mutex<Option<Seen>>>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recorder { inner, seen }))
        .with_no_client_auth())
}

/// What the verifier saw: the chain, and its verdict.
#[derive(Debug)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    verdict: CertVerdict,
}

/// Verifies like the run's verifier, but records the verdict and lets the handshake go on, so
/// a bad certificate is a finding about it rather than a failed connection. Only QUIT is ever
/// sent over such a connection. Handshake signatures are still checked by the real verifier.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => CertVerdict::Valid,
            Err(e) => cert_verdict(&e),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .take(MAX_CHAIN)
            .map(|c| c.clone().into_owned())
            .collect();
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(Seen { chain, verdict });
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn cert_verdict(e: &rustls::Error) -> CertVerdict {
    use rustls::CertificateError as C;
    let (problem, reason) = match e {
        rustls::Error::InvalidCertificate(why) => (
            match why {
                C::UnknownIssuer => CertProblem::UntrustedIssuer,
                C::NotValidForName | C::NotValidForNameContext { .. } => CertProblem::WrongName,
                C::Expired | C::ExpiredContext { .. } => CertProblem::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => CertProblem::NotYetValid,
                C::Revoked => CertProblem::Revoked,
                _ => CertProblem::Other,
            },
            crate::web::certificate_reason(why),
        ),
        other => (CertProblem::Other, other.to_string()),
    };
    CertVerdict::Invalid {
        problem,
        reason: clip(&reason),
    }
}

/// A connection read line by line, bounded.
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// The stream, and whether bytes were read past the last reply.
    fn into_inner(self) -> (S, bool) {
        (self.stream, !self.buf.is_empty())
    }

    /// One line without its CRLF (a bare LF is accepted), at most [`MAX_LINE_BYTES`].
    async fn line(&mut self, stage: Stage) -> Result<Vec<u8>, ProbeError> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf) {
                if end > MAX_LINE_BYTES {
                    break;
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE_BYTES {
                break;
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| ProbeError::Io {
                    stage,
                    reason: e.to_string(),
                })?;
            if n == 0 {
                return Err(ProbeError::Closed { stage });
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        Err(ProbeError::NotSmtp {
            stage,
            reason: format!(
                "a line longer than {MAX_LINE_BYTES} bytes (`{}…`)",
                clip(&String::from_utf8_lossy(
                    self.buf.get(..60).unwrap_or(&self.buf)
                ))
            ),
        })
    }

    /// One reply (all its lines), at most [`MAX_REPLY_LINES`], each logged.
    async fn reply(&mut self, probe: &mut SmtpProbe) -> Result<Reply, ProbeError> {
        let stage = probe.stage;
        let mut lines = Vec::new();
        let mut first_code = None;
        for _ in 0..MAX_REPLY_LINES {
            let raw = self.line(stage).await?;
            let text = String::from_utf8_lossy(&raw).into_owned();
            probe.log("S", &text);
            let Some((code, last, rest)) = parse_reply_line(&text) else {
                return Err(ProbeError::NotSmtp {
                    stage,
                    reason: format!("`{}` does not begin with a reply code", clip_to(&text, 60)),
                });
            };
            match first_code {
                Some(first) if first != code => {
                    return Err(ProbeError::NotSmtp {
                        stage,
                        reason: format!(
                            "a reply whose lines have different codes ({first}, {code})"
                        ),
                    })
                }
                _ => first_code = Some(code),
            }
            lines.push(clip(&rest));
            if last {
                return Ok(Reply { code, lines });
            }
        }
        Err(ProbeError::NotSmtp {
            stage,
            reason: format!("a reply of more than {MAX_REPLY_LINES} lines"),
        })
    }

    async fn send(&mut self, probe: &mut SmtpProbe, command: &str) -> Result<(), ProbeError> {
        probe.log("C", command);
        let stage = probe.stage;
        let io = |e: std::io::Error| ProbeError::Io {
            stage,
            reason: e.to_string(),
        };
        self.stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .map_err(io)?;
        self.stream.flush().await.map_err(io)
    }

    /// QUIT, politely: its answer is waited for briefly, and failures are ignored.
    async fn quit(&mut self, probe: &mut SmtpProbe) {
        let stage = probe.stage;
        probe.stage = Stage::Quit;
        let _ = tokio::time::timeout(QUIT_WAIT, async {
            self.send(probe, "QUIT").await?;
            self.reply(probe).await
        })
        .await;
        probe.stage = stage;
    }
}

fn clip(text: &str) -> String {
    clip_to(text, MAX_TEXT_CHARS)
}

fn clip_to(text: &str, max: usize) -> String {
    crate::words::clip(text, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_reply_lines_are_read_strictly() {
        assert_eq!(
            parse_reply_line("250-SIZE 100"),
            Some((250, false, "SIZE 100".into()))
        );
        assert_eq!(
            parse_reply_line("220 mx1.example.fi ESMTP"),
            Some((220, true, "mx1.example.fi ESMTP".into()))
        );
        assert_eq!(parse_reply_line("554"), Some((554, true, String::new())));
        for bad in ["", "22", "HTTP/1.1 400", "220_x", "650 x", "2a0 x", "ääää"] {
            assert_eq!(parse_reply_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn smtp_extensions_are_keywords_upper_cased() {
        let ehlo = Reply {
            code: 250,
            lines: vec![
                "mx1.example.fi Hello".into(),
                "size 35882577".into(),
                "starttls".into(),
                "  ".into(),
                "ENHANCEDSTATUSCODES".into(),
            ],
        };
        assert_eq!(
            extensions(&ehlo),
            ["SIZE 35882577", "STARTTLS", "ENHANCEDSTATUSCODES"]
        );
    }

    #[test]
    fn smtp_address_literals_follow_rfc5321() {
        assert_eq!(
            address_literal("192.0.2.7:4000".parse().unwrap()),
            "[192.0.2.7]"
        );
        assert_eq!(
            address_literal("[2001:db8::7]:4000".parse().unwrap()),
            "[IPv6:2001:db8::7]"
        );
        assert_eq!(
            address_literal("[::ffff:192.0.2.7]:4000".parse().unwrap()),
            "[192.0.2.7]"
        );
    }

    #[tokio::test]
    async fn smtp_lines_and_replies_are_bounded() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let mut probe = SmtpProbe::new(
            DomainName::from_ascii_unchecked("mx1.example.fi"),
            "127.0.0.1:25".parse().unwrap(),
            Stage::Banner,
        );
        let mut conn = Conn::new(client);
        server
            .write_all(b"220-mx1.example.fi\r\n220 ready\n")
            .await
            .unwrap();
        let reply = conn.reply(&mut probe).await.unwrap();
        assert_eq!(reply.code, 220);
        assert_eq!(reply.lines, ["mx1.example.fi", "ready"]);
        server
            .write_all(&[b'x'; MAX_LINE_BYTES + 10])
            .await
            .unwrap();
        let err = conn.reply(&mut probe).await.unwrap_err();
        assert!(
            matches!(&err, ProbeError::NotSmtp { reason, .. } if reason.contains("longer than")),
            "{err:?}"
        );
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut conn = Conn::new(client);
        for _ in 0..MAX_REPLY_LINES + 5 {
            server.write_all(b"250-PIPELINING\r\n").await.unwrap();
        }
        let err = conn.reply(&mut probe).await.unwrap_err();
        assert!(
            matches!(&err, ProbeError::NotSmtp { reason, .. } if reason.contains("more than")),
            "{err:?}"
        );
        assert!(probe.transcript.len() <= MAX_TRANSCRIPT_LINES + 1);
        let (client, mut server) = tokio::io::duplex(1 << 10);
        let mut conn = Conn::new(client);
        server.write_all(b"250-a\r\n251 b\r\n").await.unwrap();
        let err = conn.reply(&mut probe).await.unwrap_err();
        assert!(
            matches!(&err, ProbeError::NotSmtp { reason, .. } if reason.contains("different codes")),
            "{err:?}"
        );
        drop(server);
        let err = conn.reply(&mut probe).await.unwrap_err();
        assert_eq!(
            err,
            ProbeError::Closed {
                stage: Stage::Banner
            }
        );
    }
}
