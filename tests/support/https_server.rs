//! In-process HTTPS server with its own test CA, for MTA-STS policies (and later BIMI files).
//!
//! Each host gets a certificate chosen by SNI: issued by the test CA for that name (the normal
//! case), by another CA (untrusted), or for a different name (mismatch). Each route answers
//! with a fixed status, content type, optional `Location`, and body, sent with a
//! `Content-Length` or chunked. The CA's PEM file is what the client is told to trust
//! (`--https-ca`). Runs on its own thread and runtime; dropping it stops the server.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// Which certificate a host presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cert {
    /// From the test CA, for the host's name.
    Good,
    /// From a CA the client does not trust.
    Untrusted,
    /// From the test CA, but for another name (the parent domain).
    WrongName,
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Route {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub chunked: bool,
}

impl Route {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Route {
        Route {
            status: 200,
            content_type: Some(content_type.to_string()),
            location: None,
            body: body.into(),
            chunked: false,
        }
    }
}

#[derive(Default)]
pub struct HttpsServerBuilder {
    hosts: Vec<(String, Cert)>,
    routes: HashMap<(String, String), Route>,
}

impl HttpsServerBuilder {
    /// Serves `route` at `https://host/path`, with `cert`.
    pub fn route(mut self, host: &str, path: &str, cert: Cert, route: Route) -> Self {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !self.hosts.iter().any(|(h, _)| *h == host) {
            self.hosts.push((host.clone(), cert));
        }
        self.routes.insert((host, path.to_string()), route);
        self
    }

    /// Starts the server on 127.0.0.1, writing the CA's PEM under `dir`.
    pub fn start(self, dir: &Path) -> TestHttpsServer {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (ca, ca_key) = make_ca("mailshift test CA");
        let (other_ca, other_key) = make_ca("an untrusted CA");
        let ca_file = dir.join("test-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let mut resolver = BySni::default();
        for (host, cert) in &self.hosts {
            let (issuer, issuer_key, name) = match cert {
                Cert::Good => (&ca, &ca_key, host.clone()),
                Cert::Untrusted => (&other_ca, &other_key, host.clone()),
                Cert::WrongName => (
                    &ca,
                    &ca_key,
                    host.split_once('.')
                        .map(|(_, rest)| rest.to_string())
                        .unwrap(),
                ),
            };
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec![name]).unwrap();
            let leaf = params.signed_by(&key, issuer, issuer_key).unwrap();
            let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
            let signing = provider.key_provider.load_private_key(der).unwrap();
            let certified = rustls::sign::CertifiedKey::new(
                vec![leaf.der().clone(), issuer.der().clone()],
                signing,
            );
            resolver.0.insert(host.clone(), Arc::new(certified));
        }
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let routes = Arc::new(self.routes);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        let routes = routes.clone();
                        tokio::spawn(async move {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = serve_one(tls, &routes).await;
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        TestHttpsServer {
            addr,
            ca_file,
            _thread: super::server_thread::ServerThread::new(stop, thread),
        }
    }
}

/// Answers one request on a connection, then closes it.
async fn serve_one(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    routes: &HashMap<(String, String), Route>,
) -> std::io::Result<()> {
    let sni = tls
        .get_ref()
        .1
        .server_name()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let route = routes.get(&(sni, path)).cloned().unwrap_or(Route {
        status: 404,
        content_type: Some("text/plain".into()),
        location: None,
        body: b"not found".to_vec(),
        chunked: false,
    });
    let mut response = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", route.status);
    if let Some(ct) = &route.content_type {
        response.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(location) = &route.location {
        response.push_str(&format!("Location: {location}\r\n"));
    }
    if route.chunked {
        response.push_str("Transfer-Encoding: chunked\r\n\r\n");
        tls.write_all(response.as_bytes()).await?;
        for chunk in route.body.chunks(4096) {
            tls.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            tls.write_all(chunk).await?;
            tls.write_all(b"\r\n").await?;
        }
        tls.write_all(b"0\r\n\r\n").await?;
    } else {
        response.push_str(&format!("Content-Length: {}\r\n\r\n", route.body.len()));
        tls.write_all(response.as_bytes()).await?;
        tls.write_all(&route.body).await?;
    }
    tls.shutdown().await
}

/// Certificates by SNI name, whatever names they are for (rustls's own resolver refuses a
/// certificate that does not match, and a mismatch is one of the cases to serve).
#[derive(Debug, Default)]
struct BySni(HashMap<String, Arc<rustls::sign::CertifiedKey>>);

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0
            .get(&hello.server_name()?.to_ascii_lowercase())
            .cloned()
    }
}

/// A test certificate authority named `name`: its self-signed certificate and key.
pub fn make_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

pub struct TestHttpsServer {
    addr: SocketAddr,
    ca_file: PathBuf,
    /// Stops the server when the handle is dropped.
    _thread: super::server_thread::ServerThread,
}

impl TestHttpsServer {
    pub fn builder() -> HttpsServerBuilder {
        HttpsServerBuilder::default()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The PEM file of the CA that issued the good certificates.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}
