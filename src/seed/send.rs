//! Building and sending seed messages through the new platform's relay.
//!
//! Each message goes to one seed address, From the plan's sending address, and carries a unique
//! token (in `X-Mailshift-Token`, the subject and the Message-ID) so the inbox can match it; the
//! RFC 8058 one-click unsubscribe headers the bulk-sender rules require; and text and HTML parts,
//! like real marketing mail. The relay must offer TLS (STARTTLS or implicit) unless the caller
//! allows plain text. Credentials come from the environment or a file named in the plan and are
//! never printed. Self-hosted senders can sign locally with `--dkim-key`.

use super::redact::Redactor;
use crate::plan::{SecretSource, SeedSetup, SeedTls};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};
use std::time::{Duration, SystemTime};

/// Why seeds could not be built or sent (never containing a secret).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Setup(String),
    #[error("the relay refused the message: {0}")]
    Refused(String),
    #[error("could not reach or talk to the relay: {0}")]
    Transport(String),
}

/// One built seed message.
#[derive(Debug, Clone)]
pub struct SeedMessage {
    pub token: String,
    pub recipient: String,
    pub message_id: String,
    pub bytes: Vec<u8>,
}

/// A fresh random token (16 hex digits).
pub fn new_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Builds the seed message for one recipient.
pub fn build(
    seed: &SeedSetup,
    stage: &str,
    recipient: &str,
    token: &str,
    now: SystemTime,
) -> Result<SeedMessage, SendError> {
    let domain = seed.from_domain.as_str();
    let from: Mailbox = seed.from.parse().map_err(|e| {
        SendError::Setup(format!("the From address {} is not usable: {e}", seed.from))
    })?;
    let to: Mailbox = recipient.parse().map_err(|e| {
        SendError::Setup(format!("the seed address {recipient} is not usable: {e}"))
    })?;
    let message_id = format!("<{token}.seed@{domain}>");
    let unsubscribe = format!(
        "<https://{domain}/unsubscribe?mailshift-seed={token}>, <mailto:unsubscribe@{domain}?subject=unsubscribe-{token}>"
    );
    let text = format!(
        "This is a mailshift seed test for the migration stage \"{stage}\".\r\n\r\nToken: {token}\r\n\r\nIt checks that mail sent through the new platform arrives authenticated (SPF, DKIM, DMARC) with one-click unsubscribe.\r\n"
    );
    let html = format!(
        "<!doctype html><html><body><h1>mailshift seed test</h1><p>Stage <b>{stage}</b>, token <code>{token}</code>.</p><p>This message checks that mail sent through the new platform arrives authenticated.</p><p><a href=\"https://{domain}/unsubscribe?mailshift-seed={token}\">Unsubscribe</a></p></body></html>"
    );
    let header = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };
    let message = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[mailshift seed {token}] {stage}"))
        .date(now)
        .message_id(Some(message_id.clone()))
        .raw_header(header("X-Mailshift-Token", token.to_string()))
        .raw_header(header("X-Mailshift-Stage", stage.to_string()))
        .raw_header(header("List-Unsubscribe", unsubscribe))
        .raw_header(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        ))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| SendError::Setup(format!("cannot build the seed message: {e}")))?;
    Ok(SeedMessage {
        token: token.to_string(),
        recipient: recipient.to_string(),
        message_id,
        bytes: message.formatted(),
    })
}

/// The headers a local signature covers: what receivers and the bulk-sender rules care about,
/// including both unsubscribe headers (RFC 8058 requires them to be signed).
const SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A local DKIM signer (`--dkim-key FILE --selector S`): an RSA or Ed25519 key in PEM (PKCS#8,
/// or PKCS#1 for RSA), signing with `d=` the From domain.
pub enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

impl Signer {
    pub fn load(pem: &str, domain: &str, selector: &str) -> Result<Signer, String> {
        let key = rustls_pemfile::private_key(&mut pem.as_bytes())
            .map_err(|e| format!("not a PEM private key: {e}"))?
            .ok_or("no private key in the file")?;
        if let Ok(rsa) = RsaKey::<Sha256>::from_key_der(key.clone_key()) {
            return Ok(Signer::Rsa(
                DkimSigner::from_key(rsa)
                    .domain(domain)
                    .selector(selector)
                    .headers(SIGNED_HEADERS),
            ));
        }
        let ed25519 = match &key {
            rustls_pki_types::PrivateKeyDer::Pkcs8(der) => {
                Ed25519Key::from_pkcs8_der(der.secret_pkcs8_der()).ok()
            }
            _ => None,
        }
        .ok_or("the key is neither RSA nor Ed25519 (PKCS#8 or PKCS#1 PEM)")?;
        Ok(Signer::Ed25519(
            DkimSigner::from_key(ed25519)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS),
        ))
    }

    /// The message with a DKIM-Signature header prepended.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signature = match self {
            Signer::Rsa(signer) => signer.sign(message),
            Signer::Ed25519(signer) => signer.sign(message),
        }
        .map_err(|e| format!("cannot sign: {e}"))?;
        let mut out = signature.to_header().into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }
}

/// Reads a secret named in the plan. The value never reaches output.
fn secret(source: &SecretSource) -> Result<String, SendError> {
    match source {
        SecretSource::Env(name) => std::env::var(name).map_err(|_| {
            SendError::Setup(format!(
                "the environment variable {name} (the relay password) is not set"
            ))
        }),
        SecretSource::File(path) => {
            crate::files::read_text(path, crate::files::FileKind::Secret)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                // The error names the file and never holds its content.
                .map_err(|e| SendError::Setup(e.to_string()))
        }
    }
}

/// How to reach the relay.
pub struct RelayOptions {
    /// Send without TLS (only when the plan says `tls = "none"`).
    pub allow_plaintext: bool,
    /// Extra CA certificates (PEM) to trust for the relay, instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// The plan's relay: the SMTP transport, and the redactor for everything it says back.
pub struct Relay {
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Built from the credentials in use: relay replies pass through it before they are shown
    /// or stored.
    pub redactor: Redactor,
}

/// The username of the plan's relay login (from the plan or the environment), and whether it
/// is a secret itself (it came from the environment).
fn username(seed: &SeedSetup) -> Result<Option<(String, bool)>, SendError> {
    Ok(match (&seed.username, &seed.username_env) {
        (_, Some(name)) => Some((secret(&SecretSource::Env(name.clone()))?, true)),
        (Some(u), None) => Some((u.clone(), false)),
        (None, None) => None,
    })
}

/// A redactor for the plan's credentials, as far as they can be read here (for output written
/// from stored replies, such as `seed results`); empty when the plan has no password.
pub fn redactor(seed: &SeedSetup) -> Redactor {
    let Some(source) = &seed.password else {
        return Redactor::default();
    };
    let Ok(password) = secret(source) else {
        return Redactor::default();
    };
    let user = username(seed).ok().flatten();
    Redactor::for_login(
        user.as_ref().map(|(u, _)| u.as_str()),
        user.as_ref().is_some_and(|(_, secret)| *secret),
        &password,
    )
}

/// The SMTP transport for the plan's relay.
pub fn transport(seed: &SeedSetup, options: &RelayOptions) -> Result<Relay, SendError> {
    let host = seed.relay_host.clone();
    let tls_params = || -> Result<TlsParameters, SendError> {
        let mut builder = TlsParameters::builder(host.clone());
        if let Some(pem) = &options.ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| {
                SendError::Setup(format!("the CA file is not a PEM certificate: {e}"))
            })?;
            builder = builder
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| SendError::Setup(format!("cannot set up TLS for {host}: {e}")))
    };
    let tls = match seed.tls {
        SeedTls::Starttls => Tls::Required(tls_params()?),
        SeedTls::Implicit => Tls::Wrapper(tls_params()?),
        SeedTls::None if options.allow_plaintext => Tls::None,
        SeedTls::None => {
            return Err(SendError::Setup(
                "the plan's relay has tls = \"none\": seeds would cross the network unencrypted. Pass --allow-plaintext to send anyway".into(),
            ))
        }
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(seed.relay_host.clone())
            .port(seed.relay_port)
            .tls(tls)
            .timeout(Some(options.timeout));
    let mut redactor = Redactor::default();
    if let Some(source) = &seed.password {
        let password = secret(source)?;
        let (user, user_is_secret) = username(seed)?.ok_or_else(|| {
            SendError::Setup(
                "the plan gives a password but no username (username or username_env)".into(),
            )
        })?;
        redactor = Redactor::for_login(Some(&user), user_is_secret, &password);
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(Relay {
        transport: builder.build(),
        redactor,
    })
}

/// Sends one built message; returns the relay's answer, redacted (a relay may echo the
/// credentials, and the answer is shown and stored).
pub async fn send(
    relay: &Relay,
    seed: &SeedSetup,
    message: &SeedMessage,
    bytes: &[u8],
) -> Result<String, SendError> {
    let from = seed.from.parse().map_err(|e| {
        SendError::Setup(format!("the From address {} is not usable: {e}", seed.from))
    })?;
    let to = message.recipient.parse().map_err(|e| {
        SendError::Setup(format!(
            "the seed address {} is not usable: {e}",
            message.recipient
        ))
    })?;
    let envelope = lettre::address::Envelope::new(Some(from), vec![to])
        .map_err(|e| SendError::Setup(e.to_string()))?;
    let redact = |text: String| relay.redactor.redact(&text).into_owned();
    match relay.transport.send_raw(&envelope, bytes).await {
        Ok(response) => Ok(redact(format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        ))),
        Err(e) if e.is_permanent() || e.is_transient() => {
            Err(SendError::Refused(redact(e.to_string())))
        }
        Err(e) => Err(SendError::Transport(redact(e.to_string()))),
    }
}
