//! `mailshift::verify::verify_message` on the fixture messages (`fixtures/messages/`, DNS from
//! `fixtures/messages/zones/` through the `--zone` overlay), on garbage, and under fuzzing.

use mailshift::dns::{DnsConfig, Resolver};
use mailshift::finding::{Severity, Status};
use mailshift::verify::{
    verify_message, verify_message_with, Envelope, MessageVerdict, VerifyOptions,
};
use proptest::prelude::*;
use std::path::PathBuf;

fn messages() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/messages")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(messages().join(name)).unwrap()
}

fn resolver() -> Resolver {
    Resolver::new(&DnsConfig {
        zones: vec![messages().join("zones")],
        offline: true,
        ..DnsConfig::default()
    })
    .unwrap()
}

async fn verify(raw: &[u8]) -> MessageVerdict {
    verify_message(&resolver(), raw, &Envelope::default()).await
}

fn finding<'a>(v: &'a MessageVerdict, id: &str) -> &'a mailshift::finding::Finding {
    v.findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no {id} in {:#?}", v.findings))
}

#[tokio::test]
async fn a_good_marketing_message_passes_everything() {
    let v = verify(&read("good.eml")).await;
    assert_eq!(v.status, Status::Pass, "{v:#?}");
    assert_eq!(v.spf.result, "pass");
    assert_eq!(v.spf.domain.as_deref(), Some("bounces.shop.test"));
    assert_eq!(v.spf.aligned, Some(true));
    assert!(
        v.spf.detail.contains("Received header #1") && v.spf.detail.contains("Return-Path"),
        "the SPF inputs' sources are named: {}",
        v.spf.detail
    );
    assert_eq!(v.spf_inputs.ip, Some("198.51.100.25".parse().unwrap()));
    assert_eq!(
        v.spf_inputs.ip_source.as_deref(),
        Some("Received header #1")
    );
    assert_eq!(v.dkim.len(), 2);
    assert_eq!(
        v.dkim
            .iter()
            .map(|d| (d.result.as_str(), d.domain.as_deref(), d.aligned))
            .collect::<Vec<_>>(),
        [
            ("pass", Some("shop.test"), Some(true)),
            ("pass", Some("mailer.test"), Some(false))
        ]
    );
    assert!(
        v.dkim[0].detail.contains("2048-bit"),
        "{}",
        v.dkim[0].detail
    );
    assert_eq!(v.dmarc.result, "pass");
    assert_eq!(v.dmarc_policy.as_deref(), Some("reject"));
    assert_eq!(v.arc.result, "none");
    assert!(v.one_click_unsubscribe);
    assert_eq!(v.from.as_deref(), Some("Shop News <news@shop.test>"));
    assert_eq!(v.subject.as_deref(), Some("Spring sale"));
    assert_eq!(
        v.message_id.as_deref(),
        Some("<20250310090000.abc123@mailer.test>")
    );
    assert_eq!(v.receiver_results.len(), 1);
    assert_eq!(v.receivers[0].authserv_id, "mx.example.net");
    for id in [
        "msg.spf",
        "msg.dkim",
        "msg.dmarc",
        "msg.one-click-unsubscribe",
        "msg.message-id",
        "msg.date",
        "msg.from",
    ] {
        assert_eq!(finding(&v, id).severity, Severity::Pass, "{id}");
    }
}

#[tokio::test]
async fn a_body_changed_after_signing_fails_dkim_but_spf_keeps_dmarc() {
    let v = verify(&read("tampered.eml")).await;
    assert_eq!(v.status, Status::Fail);
    assert!(v.dkim.iter().all(|d| d.result == "fail"));
    assert!(
        v.dkim[0].detail.contains("body hash"),
        "{}",
        v.dkim[0].detail
    );
    assert_eq!(v.dmarc.result, "pass", "aligned SPF still passes DMARC");
    assert!(!v.one_click_unsubscribe);
    assert_eq!(
        finding(&v, "msg.one-click-unsubscribe").severity,
        Severity::Fail
    );
    // The receiver said pass; mailshift reports the difference.
    assert_eq!(finding(&v, "msg.receiver-results").severity, Severity::Info);
}

#[tokio::test]
async fn a_spoofed_message_fails_spf_and_dmarc() {
    let v = verify(&read("spoofed.eml")).await;
    assert_eq!(v.status, Status::Fail);
    assert_eq!(v.spf.result, "fail");
    assert_eq!(v.spf_inputs.ip, Some("203.0.113.66".parse().unwrap()));
    assert_eq!(v.dkim[0].result, "pass");
    assert_eq!(v.dkim[0].aligned, Some(false));
    assert_eq!(v.dmarc.result, "fail");
    assert_eq!(v.dmarc_policy.as_deref(), Some("reject"));
    assert_eq!(
        finding(&v, "msg.one-click-unsubscribe").severity,
        Severity::Warn
    );
}

#[tokio::test]
async fn the_envelope_overrides_the_trace_fields() {
    // The same message, as the receiver saw it from the ESP's address: SPF passes for the ESP
    // (not aligned), and the detail says the inputs came from the envelope.
    let envelope = Envelope {
        ip: Some("198.51.100.30".parse().unwrap()),
        helo: Some("out-30.mailer.test".into()),
        mail_from: Some("bounce@mailer.test".into()),
        rcpt: vec![],
    };
    let v = verify_message(&resolver(), &read("spoofed.eml"), &envelope).await;
    assert_eq!(v.spf.result, "pass");
    assert_eq!(v.spf.aligned, Some(false));
    assert_eq!(v.spf_inputs.ip_source.as_deref(), Some("envelope"));
    assert!(
        v.spf.detail.contains("IP from envelope"),
        "{}",
        v.spf.detail
    );
    assert_eq!(v.dmarc.result, "fail");
    // The null sender: the HELO identity is checked.
    let bounce = Envelope {
        mail_from: Some(String::new()),
        ..envelope
    };
    let v = verify_message(&resolver(), &read("spoofed.eml"), &bounce).await;
    assert!(
        v.spf
            .detail
            .contains("HELO out-30.mailer.test (null MAIL FROM)"),
        "{}",
        v.spf.detail
    );
}

#[tokio::test]
async fn with_more_signatures_than_verified_nothing_resting_on_dkim_is_failed() {
    // Sixteen signatures whose keys do not exist (permerror), placed above the message's real
    // ones: only the first 16 are verified, and the passing ones are beyond them. SPF passes
    // for the ESP's own envelope domain (not aligned), so DMARC rests on DKIM alone.
    let fake = |i: usize| {
        format!(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=shop.test; s=gone{i}; \
             t=1700000000; h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; \
             b=dGVzdA==\r\n"
        )
    };
    let mut raw = Vec::new();
    for i in 0..16 {
        raw.extend_from_slice(fake(i).as_bytes());
    }
    raw.extend_from_slice(&read("good.eml"));
    let envelope = Envelope {
        ip: Some("198.51.100.30".parse().unwrap()),
        helo: Some("out-30.mailer.test".into()),
        mail_from: Some("bounce@mailer.test".into()),
        rcpt: vec![],
    };
    let v = verify_message(&resolver(), &raw, &envelope).await;
    assert_eq!(v.dkim_not_verified, 2, "{v:#?}");
    assert_eq!(v.dkim.len(), 16);
    assert!(v.dkim.iter().all(|d| d.result != "pass"), "{v:#?}");
    assert_eq!(
        (v.spf.result.as_str(), v.spf.aligned),
        ("pass", Some(false))
    );
    for id in ["msg.dkim", "msg.dmarc", "msg.one-click-unsubscribe"] {
        let f = finding(&v, id);
        assert_eq!(f.severity, Severity::Inconclusive, "{id}: {f:#?}");
        assert!(
            f.message.contains("2 more DKIM signature(s)"),
            "{}",
            f.message
        );
    }
    assert_eq!(v.status, Status::Inconclusive);
    // The same message with its real signatures first passes: the limit is what made it
    // incomplete, not the message.
    let mut first = read("good.eml");
    let at = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    let fakes: String = (0..14).map(fake).collect();
    first.splice(at..at, fakes.bytes());
    let v = verify_message(&resolver(), &first, &envelope).await;
    assert_eq!(v.dkim_not_verified, 0);
    assert_eq!(finding(&v, "msg.dmarc").severity, Severity::Pass, "{v:#?}");
    assert_eq!(
        finding(&v, "msg.one-click-unsubscribe").severity,
        Severity::Pass
    );
}

#[tokio::test]
async fn without_an_ip_spf_is_not_evaluated() {
    let raw = b"From: a@shop.test\r\nTo: b@example.net\r\nSubject: hi\r\nDate: Mon, 10 Mar 2025 09:00:00 +0000\r\nMessage-ID: <x@shop.test>\r\n\r\nhi\r\n";
    let v = verify(raw).await;
    assert_eq!(v.spf.result, "none");
    assert!(v.spf.detail.contains("not evaluated"), "{}", v.spf.detail);
    assert_eq!(finding(&v, "msg.spf").severity, Severity::Info);
    // Unsigned: DKIM fails (bulk-sender rules), DMARC fails (p=reject, nothing aligned).
    assert_eq!(finding(&v, "msg.dkim").severity, Severity::Fail);
    assert_eq!(v.dmarc.result, "fail");
}

#[tokio::test]
async fn missing_message_id_and_several_from_fail_the_header_rules() {
    let v = verify(&read("receipt.eml")).await;
    assert_eq!(finding(&v, "msg.message-id").severity, Severity::Fail);
    assert_eq!(v.message_id, None);
    let raw =
        b"From: a@shop.test, b@shop.test\r\nDate: soon\r\nMessage-ID: not-an-id\r\n\r\nhi\r\n";
    let v = verify(raw).await;
    assert_eq!(finding(&v, "msg.from").severity, Severity::Fail);
    assert_eq!(finding(&v, "msg.date").severity, Severity::Fail);
    assert_eq!(finding(&v, "msg.message-id").severity, Severity::Fail);
}

#[tokio::test]
async fn lf_line_endings_are_converted() {
    let good = read("good.eml");
    let lf: Vec<u8> = String::from_utf8(good)
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    let v = verify(&lf).await;
    assert_eq!(v.status, Status::Pass, "{:#?}", v.findings);
    assert_eq!(finding(&v, "msg.input").severity, Severity::Info);
}

#[tokio::test]
async fn dns_failures_are_inconclusive_not_failures() {
    // No zones and no network: every lookup fails.
    let offline = Resolver::new(&DnsConfig {
        offline: true,
        ..DnsConfig::default()
    })
    .unwrap();
    let v = verify_message(&offline, &read("good.eml"), &Envelope::default()).await;
    assert_eq!(v.status, Status::Inconclusive, "{:#?}", v.findings);
    assert_eq!(v.spf.result, "temperror");
    assert!(v.dkim.iter().all(|d| d.result == "temperror"));
    assert_eq!(v.dmarc.result, "temperror");
    assert!(
        v.findings.iter().all(|f| f.severity != Severity::Fail),
        "{:#?}",
        v.findings
    );
}

#[tokio::test]
async fn expiry_is_judged_as_of_the_given_time() {
    // mail-auth's vector 005 carries x=1667930064: valid at 1667843664, expired now.
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpora/dkim/mail-auth/005.txt");
    let text = std::fs::read(path).unwrap();
    let split = text.windows(2).position(|w| w == b"\n\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut zone =
        String::from("$ORIGIN com.\n$TTL 300\n@ IN SOA ns.com. h.com. 1 3600 600 86400 300\n");
    for line in String::from_utf8_lossy(&text[..split]).lines() {
        let (name, value) = line.split_once(' ').unwrap();
        let strings: Vec<String> = value
            .as_bytes()
            .chunks(200)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        zone.push_str(&format!("{name}. IN TXT {}\n", strings.join(" ")));
    }
    std::fs::write(dir.path().join("com.zone"), zone).unwrap();
    let resolver = Resolver::new(&DnsConfig {
        zones: vec![dir.path().to_path_buf()],
        offline: true,
        ..DnsConfig::default()
    })
    .unwrap();
    let message = &text[split + 2..];
    let now = verify_message(&resolver, message, &Envelope::default()).await;
    assert!(
        now.dkim.iter().any(|d| d.detail.contains("expired")),
        "{:#?}",
        now.dkim
    );
    let then = verify_message_with(
        &resolver,
        message,
        &Envelope::default(),
        &VerifyOptions {
            as_of: Some(1_667_843_664),
        },
    )
    .await;
    assert!(
        then.dkim.iter().all(|d| d.result == "pass"),
        "{:#?}",
        then.dkim
    );
    // And a time after x= is expired whatever the clock says.
    let later = verify_message_with(
        &resolver,
        message,
        &Envelope::default(),
        &VerifyOptions {
            as_of: Some(1_667_930_065),
        },
    )
    .await;
    assert!(
        later.dkim.iter().any(|d| d.detail.contains("expired")),
        "{:#?}",
        later.dkim
    );
}

#[tokio::test]
async fn garbage_gives_an_error_verdict() {
    let mut huge = b"From: a@example.com\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge.extend_from_slice(b"\r\n\r\nbody\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("binary", read("garbage.eml")),
        (
            "prose",
            b"Dear customer,\nthis is not a message.\n".to_vec(),
        ),
        (
            "body only",
            b"\r\nHey gang,\r\nThis is a test message.\r\n".to_vec(),
        ),
        (
            "NUL in a header",
            b"From: a\0b@example.com\r\n\r\nx".to_vec(),
        ),
        ("huge header section", huge),
    ];
    for (what, raw) in cases {
        let v = verify(&raw).await;
        assert_eq!(v.status, Status::Error, "{what}: {v:#?}");
        assert!(v.error.is_some(), "{what}");
        assert_eq!(v.findings.len(), 1, "{what}");
        assert_eq!(v.findings[0].id, "msg.parse", "{what}");
    }
}

#[tokio::test]
async fn truncated_and_odd_messages_are_verified_not_rejected() {
    let good = read("good.eml");
    // Cut in the middle of the header section: a message without a body.
    let cut = &good[..good.len() / 8];
    let v = verify(cut).await;
    assert_ne!(v.status, Status::Error, "{v:#?}");
    // Cut in the body: DKIM fails (body hash), nothing panics.
    let v = verify(&good[..good.len() - 100]).await;
    assert!(v.dkim.iter().all(|d| d.result != "pass"));
    // Many signatures: only the first 16 are verified, and a note says so.
    let mut many = Vec::new();
    let sig_end = good.windows(2).position(|w| w == b"\r\n").unwrap();
    let _ = sig_end;
    for i in 0..40 {
        many.extend_from_slice(
            format!("DKIM-Signature: v=1; a=rsa-sha256; d=shop.test; s=s{i}; h=from; bh=AAAA; b=AAAA\r\n").as_bytes(),
        );
    }
    many.extend_from_slice(&good);
    let v = verify(&many).await;
    assert!(
        v.dkim.len() <= 2 * mailshift::verify::MAX_DKIM_SIGNATURES,
        "{}",
        v.dkim.len()
    );
    assert!(v
        .findings
        .iter()
        .any(|f| f.id == "msg.input" && f.severity == Severity::Warn));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    // 300 cases each; PROPTEST_CASES=N for a longer run.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    ))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let rt = runtime();
        let v = rt.block_on(verify(&bytes));
        prop_assert!(v.status == Status::Error || !v.findings.is_empty());
    }

    #[test]
    fn damaged_messages_never_panic(
        cut in 0usize..4000,
        flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..12),
    ) {
        let mut raw = read("good.eml");
        for (at, byte) in flips {
            if let Some(b) = raw.get_mut(at) {
                *b = byte;
            }
        }
        raw.truncate(cut.min(raw.len()));
        let rt = runtime();
        let v = rt.block_on(verify(&raw));
        prop_assert!(v.status == Status::Error || !v.findings.is_empty());
    }
}

#[tokio::test]
async fn names_mail_auth_computes_itself_are_fetched_on_a_second_run() {
    // An RFC 6541 third-party signature: mail-auth asks for `<d>._atps.<From domain>`, a name
    // only it computes. The cache records the miss by name, fetches it and runs again.
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::DkimSigner;
    let pem = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pem"),
    )
    .unwrap();
    let der = rustls_pemfile::private_key(&mut pem.as_bytes())
        .unwrap()
        .unwrap();
    let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_der()).unwrap();
    let unsigned = "From: news@shop.test\r\nTo: a@example.net\r\nSubject: hi\r\nDate: Mon, 10 Mar 2025 09:00:00 +0000\r\nMessage-ID: <atps@mailer.test>\r\n\r\nhi\r\n";
    let sig = DkimSigner::from_key(key)
        .domain("mailer.test")
        .selector("esp")
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .atps("shop.test")
        .sign(unsigned.as_bytes())
        .unwrap();
    let raw = format!("{}{unsigned}", sig.to_header());
    let dir = tempfile::tempdir().unwrap();
    for zone in ["shop.test.zone", "mailer.test.zone"] {
        let mut text = std::fs::read_to_string(messages().join("zones").join(zone)).unwrap();
        if zone == "shop.test.zone" {
            text.push_str("mailer.test._atps IN TXT \"v=ATPS1;\"\n");
        }
        std::fs::write(dir.path().join(zone), text).unwrap();
    }
    let resolver = Resolver::new(&DnsConfig {
        zones: vec![dir.path().to_path_buf()],
        offline: true,
        ..DnsConfig::default()
    })
    .unwrap();
    let v = verify_message(&resolver, raw.as_bytes(), &Envelope::default()).await;
    assert_eq!(v.dkim.len(), 1);
    assert_eq!(v.dkim[0].result, "pass", "{:#?}", v.dkim);
    assert!(
        resolver.stats().zone_answers >= 1,
        "the ATPS record was asked through mailshift's resolver"
    );
}
