//! In-process SMTP servers with STARTTLS, for `check --probe-smtp`: one listener per loopback
//! address (127.0.0.x), all on one port as MX hosts are all on port 25, each with its own
//! behaviour — a good STARTTLS with a certificate from a test CA, no STARTTLS, an expired or
//! untrusted certificate or one for another name, a broken handshake, a server that speaks only
//! TLS 1.0, a 554 greeting, endless lines, silence. The CA's PEM file is what the client is told
//! to trust (`--https-ca`). Every command a client sends is logged, so tests can check that the
//! probe never sends mail. Runs on its own thread and runtime; dropping it stops the servers.

#![allow(dead_code)]

use super::https_server::make_ca;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::rustls;

/// The certificate a STARTTLS server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cert {
    /// From the test CA, for the host's name.
    Good,
    /// From the test CA, for the host's name, but valid only in 2020.
    Expired,
    /// From the test CA, for the host's name, valid until five days from now.
    ExpiringSoon,
    /// From the test CA, for `www.` + the host's parent domain.
    WrongName,
    /// From a CA the client does not trust.
    Untrusted,
}

/// What one address does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// A multi-line 220, EHLO with STARTTLS, the handshake with this certificate, then QUIT.
    Starttls(Cert),
    /// EHLO without STARTTLS.
    NoStarttls,
    /// STARTTLS offered, but answered 454.
    StarttlsRefused,
    /// STARTTLS answered 220, then plain text instead of a handshake.
    BrokenHandshake,
    /// STARTTLS answered 220, then a TLS 1.0 ServerHello (as an old OpenSSL limited to it).
    Tls10Only,
    /// `554` greeting; every command but QUIT answered 503 (RFC 5321 §3.1).
    Banner554,
    /// `220 ` and then bytes without end, never a line end.
    EndlessLine,
    /// A good greeting, then an EHLO reply whose continuation lines never end.
    EndlessEhlo,
    /// Accepts the connection and never says anything.
    Silent,
}

struct Host {
    ip: Ipv4Addr,
    name: String,
    behaviour: Behaviour,
}

#[derive(Default)]
pub struct SmtpServerBuilder {
    hosts: Vec<Host>,
}

impl SmtpServerBuilder {
    /// Serves `name` at `ip` (on the server's one port) doing `behaviour`.
    pub fn host(mut self, ip: Ipv4Addr, name: &str, behaviour: Behaviour) -> Self {
        self.hosts.push(Host {
            ip,
            name: name.to_string(),
            behaviour,
        });
        self
    }

    /// Starts every host on one free port, writing the test CA's PEM under `dir`.
    pub fn start(self, dir: &Path) -> TestSmtpServer {
        let (ca, ca_key) = make_ca("mailshift SMTP test CA");
        let (other, other_key) = make_ca("an untrusted SMTP CA");
        let ca_file = dir.join("smtp-test-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let listeners = bind_all(&self.hosts);
        let port = listeners[0].local_addr().unwrap().port();
        let log: Arc<Mutex<Vec<(Ipv4Addr, String)>>> = Arc::default();
        let mut served = Vec::new();
        let mut leaves = Vec::new();
        for (host, listener) in self.hosts.into_iter().zip(listeners) {
            let acceptor = match host.behaviour {
                Behaviour::Starttls(cert) => {
                    let (issuer, key) = match cert {
                        Cert::Untrusted => (&other, &other_key),
                        _ => (&ca, &ca_key),
                    };
                    let (acceptor, leaf) = acceptor(&host.name, cert, issuer, key);
                    leaves.push((host.ip, leaf));
                    Some(acceptor)
                }
                _ => None,
            };
            served.push((Arc::new(host), acceptor, listener));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread_log = log.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                for (host, acceptor, listener) in served {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let log = thread_log.clone();
                    tokio::spawn(async move {
                        loop {
                            let Ok((stream, _)) = listener.accept().await else {
                                continue;
                            };
                            tokio::spawn(session(
                                stream,
                                host.clone(),
                                acceptor.clone(),
                                log.clone(),
                            ));
                        }
                    });
                }
                let _ = stopped.await;
            });
        });
        TestSmtpServer {
            port,
            ca_file,
            leaves,
            log,
            _thread: super::server_thread::ServerThread::new(stop, thread),
        }
    }
}

/// Binds every host's address on one port: the first on any free port, the others on that one
/// (retried on another port if one of them is taken).
fn bind_all(hosts: &[Host]) -> Vec<std::net::TcpListener> {
    for _ in 0..20 {
        let first = std::net::TcpListener::bind(SocketAddr::from((hosts[0].ip, 0))).unwrap();
        let port = first.local_addr().unwrap().port();
        let mut all = vec![first];
        for host in &hosts[1..] {
            match std::net::TcpListener::bind(SocketAddr::from((host.ip, port))) {
                Ok(l) => all.push(l),
                Err(_) => break,
            }
        }
        if all.len() == hosts.len() {
            for l in &all {
                l.set_nonblocking(true).unwrap();
            }
            return all;
        }
    }
    panic!("no port free on every test address");
}

/// The TLS side of a STARTTLS host: its certificate (with the issuer), whatever the SNI.
fn acceptor(
    name: &str,
    cert: Cert,
    issuer: &rcgen::Certificate,
    issuer_key: &rcgen::KeyPair,
) -> (tokio_rustls::TlsAcceptor, Vec<u8>) {
    let named = match cert {
        Cert::WrongName => format!("www.{}", name.split_once('.').unwrap().1),
        _ => name.to_string(),
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![named.clone()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, named);
    if cert == Cert::Expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    if cert == Cert::ExpiringSoon {
        use chrono::Datelike;
        let day = |days: i64| {
            let t = chrono::Utc::now() + chrono::Duration::days(days);
            rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
        };
        params.not_before = day(-80);
        params.not_after = day(5);
    }
    let leaf = params.signed_by(&key, issuer, issuer_key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), issuer.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let leaf_der = leaf.der().to_vec();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), leaf_der)
}

type Log = Arc<Mutex<Vec<(Ipv4Addr, String)>>>;

async fn session(
    stream: tokio::net::TcpStream,
    host: Arc<Host>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    log: Log,
) {
    let name = host.name.clone();
    let mut reader = BufReader::new(stream);
    match host.behaviour {
        Behaviour::Silent => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        Behaviour::EndlessLine => {
            let _ = reader.get_mut().write_all(b"220 ").await;
            let chunk = [b'x'; 1024];
            for _ in 0..100_000 {
                if reader.get_mut().write_all(&chunk).await.is_err() {
                    return;
                }
            }
            return;
        }
        Behaviour::Banner554 => {
            let _ = reply(&mut reader, "554 5.7.1 No SMTP service here\r\n").await;
        }
        _ => {
            let _ = reply(
                &mut reader,
                &format!("220-{name} ESMTP mailshift test server\r\n220 Welcome\r\n"),
            )
            .await;
        }
    }
    loop {
        let Some(line) = read_line(&mut reader).await else {
            return;
        };
        log.lock().unwrap().push((host.ip, line.clone()));
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if verb == "QUIT" {
            let _ = reply(&mut reader, "221 2.0.0 Bye\r\n").await;
            return;
        }
        if host.behaviour == Behaviour::Banner554 {
            let _ = reply(&mut reader, "503 5.5.1 Bad sequence of commands\r\n").await;
            continue;
        }
        match verb.as_str() {
            "EHLO" if host.behaviour == Behaviour::EndlessEhlo => {
                let _ = reply(&mut reader, &format!("250-{name}\r\n")).await;
                for i in 0..100_000 {
                    if reply(&mut reader, &format!("250-X-EXTENSION-{i}\r\n"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                return;
            }
            "EHLO" => {
                let mut lines = vec![
                    format!("{name} Hello {}", line.get(5..).unwrap_or_default()),
                    "SIZE 36700160".into(),
                    "8BITMIME".into(),
                ];
                if host.behaviour != Behaviour::NoStarttls {
                    lines.push("STARTTLS".into());
                }
                lines.push("ENHANCEDSTATUSCODES".into());
                let last = lines.len() - 1;
                let text: String = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                    .collect();
                let _ = reply(&mut reader, &text).await;
            }
            "STARTTLS" => match host.behaviour {
                Behaviour::StarttlsRefused => {
                    let _ = reply(
                        &mut reader,
                        "454 4.7.0 TLS not available due to temporary reason\r\n",
                    )
                    .await;
                }
                Behaviour::BrokenHandshake => {
                    let _ = reply(&mut reader, "220 2.0.0 Ready to start TLS\r\n").await;
                    let mut stream = reader.into_inner();
                    let mut hello = [0u8; 512];
                    let _ = stream.read(&mut hello).await;
                    let _ = stream.write_all(b"500 what is this?\r\n").await;
                    return;
                }
                Behaviour::Tls10Only => {
                    let _ = reply(&mut reader, "220 2.0.0 Ready to start TLS\r\n").await;
                    let mut stream = reader.into_inner();
                    let mut hello = [0u8; 4096];
                    let _ = stream.read(&mut hello).await;
                    let _ = stream.write_all(&tls10_server_hello()).await;
                    let _ = stream.read(&mut hello).await;
                    return;
                }
                Behaviour::Starttls(_) => {
                    let _ = reply(&mut reader, "220 2.0.0 Ready to start TLS\r\n").await;
                    let stream = reader.into_inner();
                    let Some(acceptor) = acceptor else {
                        return;
                    };
                    if let Ok(tls) = acceptor.accept(stream).await {
                        after_tls(tls, &host, &log).await;
                    }
                    return;
                }
                _ => {
                    let _ = reply(&mut reader, "502 5.5.1 Not implemented\r\n").await;
                }
            },
            _ => {
                let _ = reply(&mut reader, "502 5.5.2 Not implemented here\r\n").await;
            }
        }
    }
}

/// The conversation inside TLS: EHLO and QUIT; nothing else is accepted.
async fn after_tls<S: AsyncRead + AsyncWrite + Unpin>(stream: S, host: &Host, log: &Log) {
    let mut reader = BufReader::new(stream);
    while let Some(line) = read_line(&mut reader).await {
        log.lock().unwrap().push((host.ip, format!("(TLS) {line}")));
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "QUIT" => {
                let _ = reply(&mut reader, "221 2.0.0 Bye\r\n").await;
                let _ = reader.get_mut().shutdown().await;
                return;
            }
            "EHLO" => format!("250-{}\r\n250 SIZE 36700160\r\n", host.name),
            _ => "502 5.5.2 Not implemented here\r\n".to_string(),
        };
        let _ = reply(&mut reader, &answer).await;
    }
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut BufReader<S>,
    text: &str,
) -> std::io::Result<()> {
    reader.get_mut().write_all(text.as_bytes()).await?;
    reader.get_mut().flush().await
}

async fn read_line<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> Option<String> {
    let mut line = String::new();
    match tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => Some(line.trim_end().to_string()),
        _ => None,
    }
}

/// A TLS 1.0 ServerHello record (TLS_RSA_WITH_AES_128_CBC_SHA, no extensions): what a server
/// limited to TLS 1.0 answers to a client hello.
fn tls10_server_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x01];
    body.extend([0x5a; 32]);
    body.push(0);
    body.extend([0x00, 0x2f]);
    body.push(0);
    let mut handshake = vec![0x02, 0, 0, body.len() as u8];
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01, 0, handshake.len() as u8];
    record.extend(handshake);
    record
}

pub struct TestSmtpServer {
    port: u16,
    ca_file: PathBuf,
    /// The certificate each STARTTLS host presents (DER), for TLSA records.
    leaves: Vec<(Ipv4Addr, Vec<u8>)>,
    log: Log,
    /// Stops the server when the handle is dropped.
    _thread: super::server_thread::ServerThread,
}

impl TestSmtpServer {
    pub fn builder() -> SmtpServerBuilder {
        SmtpServerBuilder::default()
    }

    /// The one port every host listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that issued the certificates (but the untrusted one).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The certificate the STARTTLS host at `ip` presents (DER).
    pub fn leaf_der(&self, ip: Ipv4Addr) -> Option<&[u8]> {
        self.leaves
            .iter()
            .find(|(at, _)| *at == ip)
            .map(|(_, der)| der.as_slice())
    }

    /// Every command clients sent to `ip`, in order (`(TLS) QUIT` inside TLS).
    pub fn commands(&self, ip: Ipv4Addr) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at == ip)
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// Every command sent to any host.
    pub fn all_commands(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }
}
