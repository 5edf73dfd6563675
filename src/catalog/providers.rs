//! Provider profiles (`checks/providers/*.toml`): what each sending platform needs in DNS.
//!
//! A profile says which SPF include the platform uses and where it belongs, which DKIM selectors
//! it asks for and whether they are CNAMEs into the platform (and to what), the return-path
//! (bounce) domain that makes SPF align, tracking CNAMEs, and published sending ranges. Host and
//! target patterns are regular expressions, because platforms put account ids in them
//! (`s1.domainkey.u1234567.wl168.sendgrid.net`).

use regex::Regex;
use serde::Deserialize;

/// Which kind of platform this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// A sending platform (ESP) for marketing or transactional mail.
    Esp,
    /// A mailbox provider that also sends the company's own mail (Google Workspace, Microsoft 365).
    Mailbox,
}

/// Where the platform's SPF include has to be published for SPF to pass (and align).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpfPlacement {
    /// In the SPF record of the From domain itself (the platform uses it as envelope sender).
    FromDomain,
    /// In the SPF record of the return-path (bounce) domain, often published by the platform
    /// behind a CNAME.
    ReturnPath,
    /// The platform's own envelope domain carries SPF; nothing to publish (and SPF cannot align).
    NotNeeded,
}

/// How the platform's DKIM keys are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkimRecordKind {
    /// CNAMEs delegating the selectors to the platform (which rotates the keys).
    Cname,
    /// TXT records holding the key.
    Txt,
    /// Either, depending on the account's setup.
    CnameOrTxt,
}

/// How the return-path (bounce) domain is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReturnPathKind {
    /// A customer subdomain CNAMEd to the platform.
    Cname,
    /// A customer subdomain with the platform's MX (and SPF TXT) records.
    Mx,
    /// The platform's own domain: SPF passes but cannot align with the customer's From.
    PlatformOwned,
    /// The customer's own From domain is the envelope sender (mailbox providers): SPF is
    /// evaluated at the From domain and aligns.
    FromDomain,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpfProfile {
    /// Include targets (`sendgrid.net`). The first is the one to publish; others are older or
    /// regional names that also count as the platform being authorised.
    pub includes: Vec<String>,
    pub placement: SpfPlacement,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimProfile {
    /// Default selector names; empty when the platform generates them per account.
    #[serde(default)]
    pub selectors: Vec<String>,
    /// Selectors are generated per account or per rotation: the plan must name them.
    #[serde(default)]
    pub per_account_selectors: bool,
    pub record: DkimRecordKind,
    /// Regular expression the CNAME target of a selector must match (whole name, lower case).
    #[serde(default)]
    pub cname_target: Option<String>,
    /// The target prescribed for each selector, where the platform gives each its own (`s1` →
    /// the s1 key): a selector pointing at a sibling's target is cross-wired.
    #[serde(default)]
    pub cname_targets: std::collections::BTreeMap<String, String>,
    /// Key size the platform uses, when documented.
    #[serde(default)]
    pub key_bits: Option<u32>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnPathProfile {
    pub kind: ReturnPathKind,
    /// The host the customer publishes, as the platform names it (`em<NNNN>`, `pm-bounces`).
    #[serde(default)]
    pub host_hint: Option<String>,
    /// Regular expression for the CNAME target or MX host.
    #[serde(default)]
    pub target: Option<String>,
    /// The platform's own envelope domain when the return-path is not customised.
    #[serde(default)]
    pub default_domain: Option<String>,
    /// SPF can align with the customer's From domain (relaxed) once the return-path is set up.
    pub aligns: bool,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnameProfile {
    /// What the CNAME is for (`link tracking`).
    pub purpose: String,
    /// The host the customer publishes, as the platform names it (`url<NNNN>`).
    pub host_hint: String,
    /// Regular expression the target must match.
    pub target: String,
}

/// One platform's profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderProfile {
    /// Short name used in plans and on the command line (`sendgrid`).
    pub id: String,
    pub name: String,
    pub kind: ProviderKind,
    /// The platform's documentation for its DNS setup (first is the main page).
    pub docs: Vec<String>,
    #[serde(default)]
    pub spf: Option<SpfProfile>,
    #[serde(default)]
    pub dkim: Option<DkimProfile>,
    #[serde(default)]
    pub return_path: Option<ReturnPathProfile>,
    #[serde(default)]
    pub tracking: Vec<CnameProfile>,
    /// Published sending ranges (CIDR), when the platform publishes them.
    #[serde(default)]
    pub sending_ranges: Vec<String>,
    /// Where the ranges come from.
    #[serde(default)]
    pub ranges_source: Option<String>,
    /// Regular expressions (whole name, case-insensitive) for the reverse DNS names of the
    /// platform's sending IPs: how a DMARC report's source is recognised when neither the
    /// plan's pools nor the SPF networks place it.
    #[serde(default)]
    pub ptr: Vec<String>,
    /// A mailbox provider's MX hosts: the first is what new customers publish, the others what
    /// older setups still use, or patterns its hosts match (`*.` for one label, as in MTA-STS);
    /// `{domain-dashes}` stands for the domain with its dots as dashes
    /// (`example-com.mail.protection.outlook.com`). An MTA-STS policy must cover the first
    /// before MX moves there.
    #[serde(default)]
    pub mx: Vec<String>,
    /// Anything a migrating user should know (regional variants, rotation, fallbacks).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl ProviderProfile {
    /// Checks what serde cannot: patterns compile, ranges parse, names are sane.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "id `{}` must be lower-case letters, digits and `-`",
                self.id
            ));
        }
        if self.docs.is_empty() {
            return Err("docs must name at least one page".into());
        }
        // Parsed as the regex crate parses them, not compiled: compiling every embedded
        // profile's patterns was most of loading the catalog, which every command does.
        for pattern in self.patterns() {
            regex_syntax::Parser::new()
                .parse(pattern)
                .map_err(|e| format!("pattern `{pattern}`: {e}"))?;
        }
        for host in &self.mx {
            let example = mx_host(
                host,
                &crate::domain::DomainName::from_ascii_unchecked("example.com"),
            );
            crate::domain::DomainName::parse(example.strip_prefix("*.").unwrap_or(&example))
                .map_err(|e| format!("mx host `{host}`: {}", e.reason))?;
        }
        for range in &self.sending_ranges {
            parse_cidr(range).map_err(|e| format!("sending range `{range}`: {e}"))?;
        }
        if let Some(spf) = &self.spf {
            for include in &spf.includes {
                crate::domain::DomainName::parse(include)
                    .map_err(|e| format!("spf include `{include}`: {}", e.reason))?;
            }
        }
        if let Some(dkim) = &self.dkim {
            for s in dkim.selectors.iter().chain(dkim.cname_targets.keys()) {
                crate::domain::parse_selector(s)?;
            }
        }
        Ok(())
    }

    /// Every pattern of the profile (DKIM CNAME targets, return-path and tracking targets,
    /// reverse-DNS names): matched whole and ignoring case by [`full_match`].
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.dkim
            .iter()
            .flat_map(|d| {
                d.cname_target
                    .as_deref()
                    .into_iter()
                    .chain(d.cname_targets.values().map(String::as_str))
            })
            .chain(self.return_path.iter().filter_map(|r| r.target.as_deref()))
            .chain(self.tracking.iter().map(|t| t.target.as_str()))
            .chain(self.ptr.iter().map(String::as_str))
    }

    /// The MX hosts `domain` publishes on this provider ([`ProviderProfile::mx`], expanded).
    pub fn mx_hosts_for(&self, domain: &crate::domain::DomainName) -> Vec<String> {
        self.mx.iter().map(|h| mx_host(h, domain)).collect()
    }

    /// True when `target` matches the profile's DKIM CNAME pattern (anchored, case-insensitive).
    /// The selector whose prescribed target `target` is, when it is another selector's than
    /// `selector` and not `selector`'s own: the delegation is cross-wired.
    pub fn dkim_cross_wired(&self, selector: &str, target: &str) -> Option<&str> {
        let targets = &self.dkim.as_ref()?.cname_targets;
        let own = targets
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(selector))?;
        if full_match(own.1, target) {
            return None;
        }
        targets
            .iter()
            .find(|(s, pattern)| !s.eq_ignore_ascii_case(selector) && full_match(pattern, target))
            .map(|(s, _)| s.as_str())
    }

    pub fn dkim_target_matches(&self, target: &str) -> Option<bool> {
        let pattern = self.dkim.as_ref()?.cname_target.as_deref()?;
        Some(full_match(pattern, target))
    }
}

/// Matches `text` against `pattern` as a whole, ignoring case.
pub fn full_match(pattern: &str, text: &str) -> bool {
    full_match_regex(pattern).is_ok_and(|re| re.is_match(text))
}

/// A profile pattern compiled as every check uses it: the whole name, ignoring case.
pub fn full_match_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("(?i)^(?:{pattern})$"))
}

/// Parses `192.0.2.0/24` or `2001:db8::/32` (a bare address is a /32 or /128).
pub fn parse_cidr(text: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: std::net::IpAddr = addr.parse().map_err(|_| "not an IP address".to_string())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("prefix must be 0-{max}"))?,
    };
    Ok((addr, prefix))
}

/// One `mx` entry of a profile for `domain`.
fn mx_host(pattern: &str, domain: &crate::domain::DomainName) -> String {
    pattern
        .replace("{domain-dashes}", &domain.as_str().replace('.', "-"))
        .to_ascii_lowercase()
}
