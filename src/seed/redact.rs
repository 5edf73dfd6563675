//! Keeping secrets out of everything mailshift prints or stores, even when a relay echoes them.
//!
//! A relay may quote what it was sent in its rejection (`535 5.7.8 … <base64 of the AUTH PLAIN
//! exchange>`), and that reply is shown to the user, written to JSON and stored with the seed.
//! Every text that came from a relay goes through a [`Redactor`] built from the credentials in
//! use, which replaces each form a secret can take on the wire: the raw value; the base64 of the
//! AUTH PLAIN message (`\0user\0password`, with or without an authorisation identity) and of the
//! AUTH LOGIN answers; and, because a secret may sit at any offset inside a longer base64 blob,
//! the part of its base64 encoding that does not depend on its neighbours, at each of the three
//! byte alignments. Secrets shorter than four bytes are redacted only in their full encodings
//! (redacting every `ab` in a reply would make it unreadable, and such a secret protects
//! nothing).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use std::borrow::Cow;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// The shortest needle that is replaced wherever it appears.
const MIN_NEEDLE: usize = 4;

/// Replaces every known form of some secrets in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a full encoding is replaced before a fragment of it.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for a relay login: the password always, the username when it is secret too
    /// (it came from the environment), and the AUTH exchanges that carry them.
    pub fn for_login(username: Option<&str>, username_is_secret: bool, password: &str) -> Redactor {
        let mut needles: Vec<String> = Vec::new();
        let mut secrets: Vec<&str> = vec![password];
        if let (Some(user), true) = (username, username_is_secret) {
            secrets.push(user);
        }
        for secret in &secrets {
            needles.extend(forms(secret.as_bytes()));
        }
        if let Some(user) = username {
            // AUTH PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd.
            for message in [
                format!("\0{user}\0{password}"),
                format!("{user}\0{user}\0{password}"),
            ] {
                needles.push(STANDARD.encode(message.as_bytes()));
                needles.push(STANDARD_NO_PAD.encode(message.as_bytes()));
            }
        }
        let mut redactor = Redactor { needles };
        redactor.finish();
        redactor
    }

    fn finish(&mut self) {
        self.needles.retain(|n| !n.is_empty());
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.needles.dedup();
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every secret replaced by [`REDACTED`].
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), REDACTED));
            }
        }
        out
    }
}

/// The forms of one secret: raw, its base64 (padded and not), and the alignment-independent
/// middle of its base64 at byte offsets 0, 1 and 2 (what it looks like inside a longer blob).
fn forms(secret: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if secret.is_empty() {
        return out;
    }
    out.push(STANDARD.encode(secret));
    out.push(STANDARD_NO_PAD.encode(secret));
    if secret.len() >= MIN_NEEDLE {
        out.push(String::from_utf8_lossy(secret).into_owned());
    }
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(secret);
        let encoded = STANDARD_NO_PAD.encode(&padded);
        // Characters of a base64 group depend only on the group's three bytes: keep the groups
        // that lie wholly inside the secret.
        let first_group = offset.div_ceil(3);
        let last_group = padded.len() / 3;
        if last_group > first_group {
            if let Some(middle) = encoded.get(first_group * 4..last_group * 4) {
                if middle.len() >= MIN_NEEDLE {
                    out.push(middle.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "apikey";
    const PASSWORD: &str = "SG.s3cr3t-Api_Key.value";

    #[test]
    fn every_form_a_relay_could_echo_is_redacted() {
        let r = Redactor::for_login(Some(USER), false, PASSWORD);
        let plain = STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
        let login = STANDARD.encode(PASSWORD);
        let echoed = format!(
            "535 5.7.8 Authentication failed: {plain} (LOGIN {login}) raw={PASSWORD} \
             blob={}",
            STANDARD.encode(format!("xx{PASSWORD}yy"))
        );
        let clean = r.redact(&echoed);
        assert!(!clean.contains(PASSWORD), "{clean}");
        assert!(!clean.contains(&plain), "{clean}");
        assert!(!clean.contains(&login), "{clean}");
        // The secret at any offset inside a longer base64 blob: its stable middle is gone.
        for offset in 0..3 {
            let blob = STANDARD.encode(format!("{}{PASSWORD}!", "z".repeat(offset)));
            let clean = r.redact(&blob);
            assert!(clean.contains(REDACTED), "offset {offset}: {clean}");
            assert!(clean.len() < blob.len(), "{clean}");
        }
        // The username is not secret unless it came from the environment.
        assert!(r.redact("user apikey").contains("apikey"));
        let r = Redactor::for_login(Some("ops@example.com"), true, PASSWORD);
        assert_eq!(r.redact("user ops@example.com"), format!("user {REDACTED}"));
    }

    #[test]
    fn text_without_secrets_is_untouched_and_short_secrets_do_not_shred_it() {
        let r = Redactor::for_login(Some(USER), false, PASSWORD);
        assert!(matches!(r.redact("250 2.0.0 OK queued"), Cow::Borrowed(_)));
        let r = Redactor::for_login(Some(USER), false, "ab");
        assert_eq!(r.redact("about a table"), "about a table");
        assert_eq!(
            r.redact(&format!("535 {}", STANDARD.encode("ab"))),
            format!("535 {REDACTED}")
        );
    }
}
