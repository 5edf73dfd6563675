//! The few HTTPS fetches DNS records point at: the MTA-STS policy (RFC 8461 §3.3), and later
//! BIMI logos and their certificates. Each fetch is what a strict receiver would do, and
//! nothing more: the host's addresses come from the run's resolver (so `--zone` and
//! `--nameserver` apply), redirects are not followed, the body is read up to a cap, and the
//! certificate is checked against the system's roots, or only against `--https-ca` when given
//! (a test CA, or a company's own).
//!
//! What comes back is data ([`WebFetch`]) for the analysers, which never touch the network;
//! a failure says whether it is the site's fault (a bad certificate, a 404: a finding about the
//! user's setup) or the network's (a timeout: inconclusive).

use crate::dns::{QueryType, RecordData, Resolver};
use crate::domain::DomainName;
use rustls_pki_types::CertificateDer;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

/// How HTTPS fetches are made.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Trust only these CA certificates instead of the system's roots ([`read_ca_files`]).
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// The port fetched (443; a test server listens elsewhere).
    pub port: u16,
    /// For the whole fetch: connecting, TLS, and reading the body.
    pub timeout: Duration,
    /// No fetches at all (`--offline`).
    pub offline: bool,
    /// Mark certificate roots trusted besides the embedded ones (`--bimi-ca`): BIMI
    /// certificates chain to their own authorities, not to the web's.
    pub mark_roots: Vec<CertificateDer<'static>>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            ca_certs: Vec::new(),
            port: 443,
            timeout: Duration::from_secs(10),
            offline: false,
            mark_roots: Vec::new(),
        }
    }
}

/// The HTTPS side of a run: a TLS configuration built once, on first use.
#[derive(Debug)]
pub struct Web {
    config: WebConfig,
    tls: tokio::sync::OnceCell<Result<Arc<rustls::ClientConfig>, String>>,
    /// The mark certificate roots, read once per run.
    mark_roots: std::sync::OnceLock<Arc<Vec<CertificateDer<'static>>>>,
}

/// What one fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebFetch {
    pub url: String,
    pub result: Result<WebResponse, WebError>,
}

/// A response, its body read up to the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// Where a redirect pointed (not followed).
    pub location: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than the cap; `body` holds the first `cap` bytes.
    pub over_cap: bool,
}

/// Why a fetch did not get a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    /// The host has no address (a finding: nothing can fetch the file).
    #[error("{host} has no A or AAAA record")]
    NoAddress { host: String },
    /// The host's addresses could not be looked up.
    #[error("the addresses of {host} could not be looked up ({reason})")]
    Lookup { host: String, reason: String },
    /// The certificate was refused (a finding).
    #[error("the TLS certificate of {host} is not valid: {reason}")]
    Certificate { host: String, reason: String },
    /// Connecting or reading failed (inconclusive: it may be this network).
    #[error("{host} could not be reached: {reason}")]
    Unreachable { host: String, reason: String },
    /// `--offline`: the run asked for no network.
    #[error("not fetched (--offline)")]
    Offline,
    /// The TLS setup failed.
    #[error("not fetched: {0}")]
    NotFetched(String),
}

impl WebError {
    /// True when the error says nothing about the site, only that it could not be asked.
    pub fn is_inconclusive(&self) -> bool {
        matches!(
            self,
            WebError::Lookup { .. }
                | WebError::Unreachable { .. }
                | WebError::NotFetched(_)
                | WebError::Offline
        )
    }
}

impl Web {
    pub fn new(config: WebConfig) -> Web {
        Web {
            config,
            tls: tokio::sync::OnceCell::new(),
            mark_roots: std::sync::OnceLock::new(),
        }
    }

    async fn tls(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        self.tls
            .get_or_init(|| async { tls_config(&self.config.ca_certs).map(Arc::new) })
            .await
            .clone()
    }

    /// The mark certificate roots a BIMI certificate may chain to: the embedded ones
    /// (`checks/bimi-roots/`) and `--bimi-ca`'s.
    pub fn mark_roots(&self) -> Arc<Vec<CertificateDer<'static>>> {
        self.mark_roots
            .get_or_init(|| {
                let mut roots = crate::catalog::mark_roots::embedded();
                roots.extend(self.config.mark_roots.iter().cloned());
                Arc::new(roots)
            })
            .clone()
    }

    /// GETs an `https:` URL a record names (a BIMI logo or certificate), with its host's
    /// addresses from `resolver`, reading at most `cap` bytes of the body. The URL's own port,
    /// or the configured one.
    pub async fn get_url(&self, resolver: &Resolver, url: &str, cap: usize) -> WebFetch {
        let refused = |why: String| WebFetch {
            url: url.to_string(),
            result: Err(WebError::NotFetched(why)),
        };
        let mut parsed = match reqwest::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => return refused(format!("`{url}` is not a URL ({e})")),
        };
        if parsed.scheme() != "https" {
            return refused(format!("`{url}` is not an https: URL"));
        }
        let Some(host) = parsed.host_str().and_then(|h| DomainName::parse(h).ok()) else {
            return refused(format!("`{url}` names no host that is a domain name"));
        };
        let port = parsed.port().unwrap_or(self.config.port);
        if port != 443 && parsed.set_port(Some(port)).is_err() {
            return refused(format!("`{url}` cannot be given port {port}"));
        }
        let fetched = parsed.to_string();
        let result = self.fetch(resolver, &host, &fetched, port, cap).await;
        WebFetch {
            url: url.to_string(),
            result,
        }
    }

    /// GETs `https://<host>/<path>`, with the host's addresses from `resolver`, reading at most
    /// `cap` bytes of the body.
    pub async fn get(
        &self,
        resolver: &Resolver,
        host: &DomainName,
        path: &str,
        cap: usize,
    ) -> WebFetch {
        let url = if self.config.port == 443 {
            format!("https://{host}{path}")
        } else {
            format!("https://{host}:{}{path}", self.config.port)
        };
        let result = self
            .fetch(resolver, host, &url, self.config.port, cap)
            .await;
        WebFetch { url, result }
    }

    async fn fetch(
        &self,
        resolver: &Resolver,
        host: &DomainName,
        url: &str,
        port: u16,
        cap: usize,
    ) -> Result<WebResponse, WebError> {
        if self.config.offline {
            return Err(WebError::Offline);
        }
        let addrs = addresses(resolver, host, port).await?;
        let tls = self.tls().await.map_err(WebError::NotFetched)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .resolve_to_addrs(host.as_str(), &addrs)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.config.timeout)
            .connect_timeout(self.config.timeout)
            .build()
            .map_err(|e| WebError::NotFetched(format!("the HTTPS client: {e}")))?;
        let name = host.to_string();
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| classify(&name, &e))?;
        let header = |h: reqwest::header::HeaderName| {
            response
                .headers()
                .get(h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let location = header(reqwest::header::LOCATION);
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut over_cap = false;
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&name, &e))? {
            let room = cap.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(chunk.get(..room).unwrap_or_default());
                over_cap = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(WebResponse {
            status,
            content_type,
            location,
            body,
            over_cap,
        })
    }
}

/// The addresses of `host` from the run's resolver, with `port`.
async fn addresses(
    resolver: &Resolver,
    host: &DomainName,
    port: u16,
) -> Result<Vec<SocketAddr>, WebError> {
    let (a, aaaa) = futures::join!(
        resolver.lookup(host, QueryType::A),
        resolver.lookup(host, QueryType::Aaaa)
    );
    let addrs: Vec<SocketAddr> = [&a, &aaaa]
        .iter()
        .flat_map(|answer| answer.records().iter())
        .filter_map(|r| match r.data {
            RecordData::A(ip) => Some(IpAddr::V4(ip)),
            RecordData::Aaaa(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    if !addrs.is_empty() {
        return Ok(addrs);
    }
    match [&a, &aaaa].iter().find_map(|x| x.failed()) {
        Some(e) => Err(WebError::Lookup {
            host: host.to_string(),
            reason: e.to_string(),
        }),
        None => Err(WebError::NoAddress {
            host: host.to_string(),
        }),
    }
}

/// The TLS error behind a failed request, if there is one. An `io::Error`'s `source()` skips
/// the error it wraps (and hyper wraps one io::Error in another), so those are opened by hand.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    let mut hops = 0;
    while let Some(err) = next {
        hops += 1;
        if hops > 32 {
            return None;
        }
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// Sorts a reqwest error into the site's fault (certificate) or the network's.
fn classify(host: &str, e: &reqwest::Error) -> WebError {
    if let Some(tls) = find_tls_error(e) {
        let reason = match tls {
            rustls::Error::InvalidCertificate(why) => certificate_reason(why),
            other => other.to_string(),
        };
        return WebError::Certificate {
            host: host.to_string(),
            reason,
        };
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        reason = format!("{reason}: {err}");
        source = err.source();
    }
    WebError::Unreachable {
        host: host.to_string(),
        reason,
    }
}

/// A refused certificate in plain words ("it has expired").
pub fn certificate_reason(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "it is not issued by a trusted certificate authority".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not issued for this host name".into()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
        C::Revoked => "it has been revoked".into(),
        C::BadSignature => "its signature does not verify".into(),
        other => format!("{other:?}"),
    }
}

/// A CA file given to trust (`--https-ca`) that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error("{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
}

/// Reads the certificates of PEM files, each of which must hold at least one.
pub fn read_ca_files(paths: &[PathBuf]) -> Result<Vec<CertificateDer<'static>>, CaFileError> {
    let mut certs = Vec::new();
    for path in paths {
        let pem = crate::files::read(path, crate::files::FileKind::Pem)?;
        let before = certs.len();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            certs.push(cert.map_err(|e| CaFileError::Malformed {
                path: path.clone(),
                message: e.to_string(),
            })?);
        }
        if certs.len() == before {
            return Err(CaFileError::NoCertificate { path: path.clone() });
        }
    }
    Ok(certs)
}

/// The TLS client configuration: aws-lc-rs, and the system's roots or only the given CAs.
fn tls_config(ca_certs: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = certificate_verifier(ca_certs)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// The run's certificate trust: the system's roots through rustls-platform-verifier, or only
/// the `--https-ca` certificates when given. HTTPS fetches and the SMTP probe
/// (`crate::smtp_probe`, which records the verdict instead of aborting on it) share it.
pub fn certificate_verifier(
    ca_certs: &[CertificateDer<'static>],
) -> Result<Arc<dyn rustls::client::danger::ServerCertVerifier>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    if ca_certs.is_empty() {
        let verifier = rustls_platform_verifier::Verifier::new(provider)
            .map_err(|e| format!("the system's certificate roots: {e}"))?;
        return Ok(Arc::new(verifier));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_certs {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a certificate of --https-ca: {e}"))?;
    }
    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map(|v| v as Arc<dyn rustls::client::danger::ServerCertVerifier>)
        .map_err(|e| format!("the --https-ca certificates: {e}"))
}
