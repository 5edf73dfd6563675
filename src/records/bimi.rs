//! BIMI assertion records (draft-brand-indicators-for-message-identification-10 §4.3): the TXT
//! record at `<selector>._bimi.<domain>` that says where a domain's logo (`l=`) and the
//! certificate vouching for it (`a=`) are, and whether the domain prefers its logo or a
//! sender's personal avatar (`avp=`). Tags follow DKIM's tag-list syntax (RFC 6376 §3.2).
//!
//! The draft tells receivers not to repair anything ("MUST NOT attempt to fix syntactical or
//! capitalization errors"), so a tag written `L=` or `I=` is an unknown tag, and the record then
//! has no logo. The parser keeps going after the first problem so a checker can name every one,
//! and separates problems (no logo will be shown) from notes (shown, but worth fixing).

use crate::domain::DomainName;

/// The selector receivers use when a message names none (§4.4).
pub const DEFAULT_SELECTOR: &str = "default";

/// The domain owner's preference between its logo and a sender's personal avatar (`avp=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarPreference {
    /// Show the BIMI logo (the default when `avp=` is absent).
    Brand,
    /// Show the sender's personal avatar when there is one.
    Personal,
}

impl AvatarPreference {
    pub fn as_str(self) -> &'static str {
        match self {
            AvatarPreference::Brand => "brand",
            AvatarPreference::Personal => "personal",
        }
    }
}

/// A parsed BIMI assertion record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BimiRecord {
    /// The logo's HTTPS URL (`l=`), when present and well formed.
    pub logo: Option<String>,
    /// The HTTPS URL of the mark certificate (`a=`), when present and well formed.
    pub authority: Option<String>,
    /// `avp=`, when it holds a known value; absent means `brand`.
    pub avp: Option<AvatarPreference>,
    /// `lps=true`: receivers also look for a selector made from the sender's local part.
    pub local_part_selectors: bool,
    /// `l=` and `a=` both empty: an explicit refusal to take part in BIMI (§4.3.1).
    pub declined: bool,
    /// Everything that stops receivers from showing a logo, in order.
    pub problems: Vec<String>,
    /// Things receivers accept but that are worth fixing.
    pub notes: Vec<String>,
}

impl BimiRecord {
    /// Would a receiver find a logo to show from this record?
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty() && !self.declined && self.logo.is_some()
    }

    /// The preference receivers apply: `avp=` when valid, `brand` otherwise.
    pub fn avatar_preference(&self) -> AvatarPreference {
        self.avp.unwrap_or(AvatarPreference::Brand)
    }
}

/// True when a TXT string is an attempt at a BIMI record: receivers discard every record at the
/// name that does not begin with `v=BIMI1` (§7.2 step 4).
pub fn is_bimi_record(txt: &str) -> bool {
    super::tags::begins_with_version(txt, "BIMI1")
}

/// The name the assertion record is published at: `<selector>._bimi.<domain>`.
pub fn assertion_name(selector: &str, domain: &DomainName) -> DomainName {
    domain.child(&format!("{}._bimi", selector.trim().to_ascii_lowercase()))
}

/// What discovery finds among the TXT strings at one name (§7.2 steps 4 and 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery<'a> {
    /// No string begins with `v=BIMI1`: no BIMI record here.
    None,
    /// Exactly one BIMI record, the one receivers use.
    One(&'a str),
    /// More than one: receivers stop and show no logo.
    Several(usize),
}

/// Picks the BIMI record among the TXT strings at a name, as receivers do: strings that do not
/// begin with `v=BIMI1` are discarded, and more than one record means none is used. Each item
/// must already be one TXT record's strings joined (SPF's rule, RFC 7208 §3.3, which §4 applies).
pub fn discover<S: AsRef<str>>(txts: &[S]) -> Discovery<'_> {
    let mut found = txts.iter().map(AsRef::as_ref).filter(|t| is_bimi_record(t));
    match (found.next(), found.count()) {
        (None, _) => Discovery::None,
        (Some(one), 0) => Discovery::One(one),
        (Some(_), more) => Discovery::Several(more + 1),
    }
}

/// Image formats a logo URL must not name: §4.3.2 makes any suffix other than SVG's a
/// permanent error.
const OTHER_IMAGE_SUFFIXES: &[&str] = &[
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico", ".tif", ".tiff", ".avif", ".heic",
];

/// Parses a BIMI assertion record.
pub fn parse_record(txt: &str) -> BimiRecord {
    let mut record = BimiRecord::default();
    let (tags, errors) = super::tags::split_tags(txt);
    let first_error = errors.iter().map(|e| e.position).min();
    for error in &errors {
        record.problems.push(format!(
            "{} (receivers must not repair a malformed record)",
            error.reason
        ));
    }
    let starts_with_version = tags
        .first()
        .is_some_and(|t| t.name == "v" && first_error.is_none_or(|e| e > t.position));
    if !starts_with_version {
        let first = tags
            .first()
            .map(|t| format!("`{}={}`", t.name, clip(&t.value)))
            .unwrap_or_else(|| "nothing".into());
        record.problems.push(format!(
            "the record must begin with `v=BIMI1`, not {first} (receivers discard it)"
        ));
    }

    let mut seen: Vec<&str> = Vec::new();
    let mut l_tag: Option<&str> = None;
    let mut a_tag: Option<&str> = None;
    for (i, tag) in tags.iter().enumerate() {
        let name = tag.name.as_str();
        let value = tag.value.as_str();
        if seen.contains(&name) {
            record.problems.push(format!(
                "`{name}=` appears more than once (a tag list may name each tag once)"
            ));
            continue;
        }
        seen.push(name);
        match name {
            "v" if i == 0 => {
                if value != "BIMI1" {
                    record.problems.push(format!(
                        "the version is `{}`; it must be exactly `BIMI1`",
                        clip(value)
                    ));
                }
            }
            "v" => {}
            "l" => l_tag = Some(value),
            "a" => a_tag = Some(value),
            "avp" => match value {
                "brand" => record.avp = Some(AvatarPreference::Brand),
                "personal" => record.avp = Some(AvatarPreference::Personal),
                other => record.notes.push(format!(
                    "`avp={}` is neither `brand` nor `personal`: receivers ignore it, and may \
                     treat the whole record as failing",
                    clip(other)
                )),
            },
            "lps" => match value {
                "true" => record.local_part_selectors = true,
                "false" => {}
                other => record.notes.push(format!(
                    "`lps={}` is neither `true` nor `false`: receivers ignore it",
                    clip(other)
                )),
            },
            other => {
                let hint = match other.to_ascii_lowercase().as_str() {
                    "l" | "i" => " (did you mean `l=`? tag names are case-sensitive)",
                    "a" => " (did you mean `a=`? tag names are case-sensitive)",
                    "v" => " (did you mean `v=`? tag names are case-sensitive)",
                    _ => "",
                };
                record.notes.push(format!(
                    "`{other}=` is not a BIMI tag; receivers ignore it{hint}"
                ));
            }
        }
    }

    let logo = l_tag.map(|v| parse_location(v, Location::Logo));
    let authority = a_tag.map(|v| parse_location(v, Location::Authority));
    let logo_empty = l_tag.is_some_and(str::is_empty);
    let authority_empty = a_tag.is_none_or(str::is_empty);
    for parsed in [&logo, &authority].into_iter().flatten() {
        if let Err(why) = parsed {
            record.problems.push(why.clone());
        }
    }
    for note in [&logo, &authority]
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(|(_, note)| note.clone())
    {
        record.notes.push(note);
    }
    record.logo = logo.and_then(Result::ok).and_then(|(url, _)| url);
    record.authority = authority.and_then(Result::ok).and_then(|(url, _)| url);

    if l_tag.is_none() {
        record
            .problems
            .push("the record has no `l=` tag (it is required, even if empty)".into());
    } else if logo_empty && authority_empty {
        record.declined = true;
    } else if logo_empty {
        record.problems.push(
            "`l=` is empty but `a=` names a certificate: without a logo URL receivers show no \
             logo (only an empty `l=` with an empty `a=` declines BIMI)"
                .into(),
        );
    }
    record
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Location {
    Logo,
    Authority,
}

impl Location {
    fn tag(self) -> &'static str {
        match self {
            Location::Logo => "l=",
            Location::Authority => "a=",
        }
    }
}

/// Checks an `l=` or `a=` value: empty, or exactly one HTTPS URI naming a host. Returns the URL
/// (none when empty) and a note, or the problem.
fn parse_location(
    value: &str,
    which: Location,
) -> Result<(Option<String>, Option<String>), String> {
    let tag = which.tag();
    if value.is_empty() {
        return Ok((None, None));
    }
    if value.contains(',') {
        return Err(format!(
            "`{tag}{}` holds more than one URI (or an unencoded comma); the draft allows a \
             single HTTPS URI",
            clip(value)
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{tag}{}` contains spaces; a URI cannot",
            clip(value)
        ));
    }
    let url = match reqwest::Url::parse(value) {
        Ok(url) => url,
        Err(e) => return Err(format!("`{tag}{}` is not a URI ({e})", clip(value))),
    };
    if url.scheme() != "https" {
        return Err(format!(
            "`{tag}{}` uses {}:, but BIMI allows only https:",
            clip(value),
            url.scheme()
        ));
    }
    let host = match url.host_str() {
        Some(host) if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() => {
            return Err(format!(
                "`{tag}{}` names an IP address; it must name a fully qualified domain name",
                clip(value)
            ))
        }
        Some(host) if !host.is_empty() => host.to_string(),
        _ => return Err(format!("`{tag}{}` has no host name", clip(value))),
    };
    if DomainName::parse(&host).is_err() {
        return Err(format!(
            "`{tag}{}`: `{}` is not a fully qualified domain name",
            clip(value),
            clip(&host)
        ));
    }
    let path = url.path().to_ascii_lowercase();
    let note = match which {
        Location::Logo => {
            if let Some(suffix) = OTHER_IMAGE_SUFFIXES.iter().find(|s| path.ends_with(*s)) {
                return Err(format!(
                    "`l={}` names a `{suffix}` file; BIMI logos must be SVG (an l= URL ending in \
                     another image format is a permanent error)",
                    clip(value)
                ));
            }
            (!(path.ends_with(".svg") || path.ends_with(".svgz"))).then(|| {
                format!(
                    "`l={}` does not end in `.svg`; receivers judge the file by its content, but \
                     some validators expect the suffix",
                    clip(value)
                )
            })
        }
        Location::Authority => (!path.ends_with(".pem")).then(|| {
            format!(
                "`a={}` does not end in `.pem`, which the certificate's file should (the VMC \
                 fetch draft's Fetch Format)",
                clip(value)
            )
        }),
    };
    Ok((Some(value.to_string()), note))
}

/// A value cut for quoting in a message.
fn clip(text: &str) -> String {
    crate::words::clip(text, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_record_is_read() {
        let r = parse_record(
            "v=BIMI1; l=https://brand.example.com/logo.svg; a=https://brand.example.com/vmc.pem",
        );
        assert!(r.is_valid(), "{r:?}");
        assert_eq!(
            r.logo.as_deref(),
            Some("https://brand.example.com/logo.svg")
        );
        assert_eq!(
            r.authority.as_deref(),
            Some("https://brand.example.com/vmc.pem")
        );
        assert!(!r.declined);
        assert!(r.notes.is_empty(), "{r:?}");
        assert_eq!(r.avatar_preference(), AvatarPreference::Brand);
    }

    #[test]
    fn whitespace_trailing_separator_and_empty_authority() {
        let r = parse_record(" v = BIMI1 ;l= https://example.com/b.svg ; a=;");
        assert!(r.is_valid(), "{r:?}");
        assert_eq!(r.authority, None);
        let r = parse_record("v=BIMI1; l=https://example.com/b.svgz");
        assert!(r.is_valid(), "{r:?}");
    }

    #[test]
    fn declination_to_publish() {
        for txt in [
            "v=BIMI1; l=; a=;",
            "v=BIMI1; l=;",
            "v=BIMI1;l=",
            "v=BIMI1; l=; a=; lps=true;",
        ] {
            let r = parse_record(txt);
            assert!(r.declined, "{txt}: {r:?}");
            assert!(r.problems.is_empty(), "{txt}: {r:?}");
            assert!(!r.is_valid());
        }
        assert!(parse_record("v=BIMI1; l=; a=; lps=true;").local_part_selectors);
        let half = parse_record("v=BIMI1; l=; a=https://example.com/vmc.pem");
        assert!(!half.declined);
        assert!(
            half.problems.iter().any(|p| p.contains("`l=` is empty")),
            "{half:?}"
        );
    }

    #[test]
    fn version_must_come_first_and_match_exactly() {
        let swapped = parse_record("l=https://example.com/b.svg; v=BIMI1");
        assert!(
            swapped.problems[0].contains("must begin with `v=BIMI1`"),
            "{swapped:?}"
        );
        assert!(!is_bimi_record("l=https://example.com/b.svg; v=BIMI1"));
        let lower = parse_record("v=bimi1; l=https://example.com/b.svg");
        assert!(lower.problems.iter().any(|p| p.contains("exactly `BIMI1`")));
        assert!(is_bimi_record("v=BIMI1; l=https://example.com/b.svg"));
        assert!(is_bimi_record("v = BIMI1;l="));
        assert!(!is_bimi_record("v=BIMI10; l="));
        assert!(!is_bimi_record("v=spf1 -all"));
    }

    #[test]
    fn logo_urls_must_be_https_single_and_svg() {
        let http = parse_record("v=BIMI1; l=http://example.com/b.svg");
        assert!(
            http.problems.iter().any(|p| p.contains("only https:")),
            "{http:?}"
        );
        assert_eq!(http.logo, None);
        let two = parse_record("v=BIMI1; l=https://a.example/1.svg,https://b.example/2.svg");
        assert!(
            two.problems.iter().any(|p| p.contains("more than one URI")),
            "{two:?}"
        );
        let png = parse_record("v=BIMI1; l=https://example.com/logo.PNG");
        assert!(
            png.problems.iter().any(|p| p.contains("`.png` file")),
            "{png:?}"
        );
        let bare = parse_record("v=BIMI1; l=https://example.com/logo");
        assert!(bare.is_valid(), "{bare:?}");
        assert!(bare
            .notes
            .iter()
            .any(|n| n.contains("does not end in `.svg`")));
        let ip = parse_record("v=BIMI1; l=https://192.0.2.1/logo.svg");
        assert!(
            ip.problems.iter().any(|p| p.contains("IP address")),
            "{ip:?}"
        );
        let garbage = parse_record("v=BIMI1; l=not a url");
        assert!(!garbage.problems.is_empty());
        let single_label = parse_record("v=BIMI1; l=https://localhost/logo.svg");
        assert!(
            single_label
                .problems
                .iter()
                .any(|p| p.contains("fully qualified")),
            "{single_label:?}"
        );
    }

    #[test]
    fn authority_urls() {
        let r = parse_record("v=BIMI1; l=https://example.com/l.svg; a=https://example.com/cert");
        assert!(r.is_valid());
        assert!(r.notes.iter().any(|n| n.contains("`.pem`")), "{r:?}");
        let http = parse_record("v=BIMI1; l=https://example.com/l.svg; a=http://example.com/c.pem");
        assert!(!http.is_valid());
        assert_eq!(http.authority, None);
        assert!(
            http.problems.iter().any(|p| p.starts_with("`a=http://")),
            "{http:?}"
        );
    }

    #[test]
    fn missing_logo_tag_and_case_sensitive_names() {
        // A vendor's published example writes a capital I for the l.
        let r = parse_record(
            "v=BIMI1; I=https://www.example.com/logo.svg; a=https://www.example.com/vmc.pem",
        );
        assert!(!r.is_valid());
        assert!(
            r.problems.iter().any(|p| p.contains("no `l=` tag")),
            "{r:?}"
        );
        assert!(
            r.notes.iter().any(|n| n.contains("did you mean `l=`")),
            "{r:?}"
        );
        let upper = parse_record("v=BIMI1; L=https://example.com/logo.svg");
        assert!(upper.problems.iter().any(|p| p.contains("no `l=` tag")));
    }

    #[test]
    fn repeated_and_unknown_tags() {
        let twice = parse_record("v=BIMI1; l=https://a.example/1.svg; l=https://b.example/2.svg");
        assert!(twice
            .problems
            .iter()
            .any(|p| p.contains("`l=` appears more than once")));
        assert_eq!(twice.logo.as_deref(), Some("https://a.example/1.svg"));
        let v_again = parse_record("v=BIMI1; l=https://a.example/1.svg; v=BIMI1");
        assert!(v_again
            .problems
            .iter()
            .any(|p| p.contains("`v=` appears more than once")));
        let unknown = parse_record("v=BIMI1; l=https://a.example/1.svg; x=1; s=brand");
        assert!(unknown.is_valid(), "{unknown:?}");
        assert_eq!(unknown.notes.len(), 2, "{unknown:?}");
        let malformed = parse_record("v=BIMI1; l=https://a.example/1.svg; junk");
        assert!(
            malformed.problems.iter().any(|p| p.contains("`junk`")),
            "{malformed:?}"
        );
    }

    #[test]
    fn avatar_preference_and_local_part_selectors() {
        let personal = parse_record("v=BIMI1; l=https://a.example/1.svg; avp=personal");
        assert_eq!(personal.avatar_preference(), AvatarPreference::Personal);
        assert!(personal.notes.is_empty());
        let odd = parse_record("v=BIMI1; l=https://a.example/1.svg; avp=Brand; lps=yes");
        assert_eq!(odd.avp, None);
        assert_eq!(odd.notes.len(), 2, "{odd:?}");
        assert!(odd.is_valid());
        assert!(!odd.local_part_selectors);
    }

    #[test]
    fn empty_and_hostile_input() {
        assert!(!parse_record("").is_valid());
        assert!(!parse_record(";;;").is_valid());
        let long = format!("v=BIMI1; l=https://example.com/{}.svg", "a".repeat(5000));
        assert!(parse_record(&long).is_valid());
        let weird = format!("v=BIMI1; l={}", "\u{feff}é".repeat(300));
        let r = parse_record(&weird);
        assert!(r.problems.iter().all(|p| p.chars().count() < 400), "{r:?}");
    }

    #[test]
    fn discovery_and_names() {
        let txts = ["v=spf1 -all", "v=BIMI1; l=https://a.example/1.svg"];
        assert_eq!(
            discover(&txts),
            Discovery::One("v=BIMI1; l=https://a.example/1.svg")
        );
        assert_eq!(discover(&["v=spf1 -all"]), Discovery::None);
        assert_eq!(
            discover(&["v=BIMI1; l=", "v=BIMI1; l="]),
            Discovery::Several(2)
        );
        let empty: [&str; 0] = [];
        assert_eq!(discover(&empty), Discovery::None);
        let domain = DomainName::parse("Example.COM").unwrap();
        assert_eq!(
            assertion_name(DEFAULT_SELECTOR, &domain).as_str(),
            "default._bimi.example.com"
        );
        assert_eq!(
            assertion_name("Brand2", &domain).as_str(),
            "brand2._bimi.example.com"
        );
    }
}
