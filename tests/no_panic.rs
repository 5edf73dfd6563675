//! Bad input never crashes: the parsers and the zone loader take arbitrary text and return
//! errors, never panics. (Property tests over random and record-shaped input.)

use mailshift::dns::ZoneOverlay;
use mailshift::domain::{parse_domains_text, DomainName};
use mailshift::records::dkim::DkimKeyRecord;
use mailshift::records::dmarc::DmarcRecord;
use mailshift::records::spf::SpfRecord;
use proptest::prelude::*;

/// Strings built from the pieces records are made of, so the parsers' deeper paths are reached.
fn record_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("v=spf1".to_string()),
        Just("v=DMARC1".to_string()),
        Just("v=DKIM1".to_string()),
        Just("include:".to_string()),
        Just("ip4:".to_string()),
        Just("ip6:".to_string()),
        Just("%{".to_string()),
        Just("}".to_string()),
        Just("/".to_string()),
        Just("//".to_string()),
        Just("=".to_string()),
        Just(";".to_string()),
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("p=".to_string()),
        Just("rua=mailto:".to_string()),
        Just("@".to_string()),
        Just("%".to_string()),
        Just("k=rsa".to_string()),
        "[a-z0-9.\\-_]{0,12}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn spf_parser_never_panics(text in record_like()) {
        let _ = SpfRecord::parse(&text);
        let _ = SpfRecord::parse(&format!("v=spf1 {text}"));
    }

    #[test]
    fn dmarc_parser_never_panics(text in record_like()) {
        let _ = DmarcRecord::parse(&text);
        let _ = DmarcRecord::parse(&format!("v=DMARC1; {text}"));
    }

    #[test]
    fn dkim_parser_never_panics(text in record_like()) {
        let _ = DkimKeyRecord::parse(&text);
    }

    #[test]
    fn domain_parsing_never_panics(text in "\\PC{0,80}") {
        let _ = DomainName::parse(&text);
        let _ = parse_domains_text(&text, "input");
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = SpfRecord::parse(&text);
        let _ = DmarcRecord::parse(&text);
        let _ = DkimKeyRecord::parse(&text);
        let _ = DomainName::parse(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn zone_loader_returns_errors_not_panics(lines in proptest::collection::vec(
        prop_oneof![
            Just("$TTL 300".to_string()),
            Just("$ORIGIN fuzz.test.".to_string()),
            Just("@ IN SOA ns1 hostmaster ( 1 3600".to_string()),
            Just("600 86400 300 )".to_string()),
            Just("@ IN TXT \"v=spf1 -all\"".to_string()),
            Just("a IN CNAME b".to_string()),
            Just("b IN CNAME a".to_string()),
            Just("x IN MX 10 mx".to_string()),
            Just("x IN A 999.1.1.1".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("\"".to_string()),
            "\\PC{0,30}",
        ],
        0..12,
    )) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.test.zone");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let _ = ZoneOverlay::load(&[path]);
    }
}

/// Pieces of the records issue 11 added (MTA-STS, TLS-RPT, BIMI, the MTA-STS policy).
fn transport_record_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("v=STSv1".to_string()),
        Just("v=TLSRPTv1".to_string()),
        Just("v=BIMI1".to_string()),
        Just("id=".to_string()),
        Just("rua=".to_string()),
        Just("mailto:".to_string()),
        Just("https://".to_string()),
        Just("l=".to_string()),
        Just("a=".to_string()),
        Just("avp=".to_string()),
        Just("version: STSv1\n".to_string()),
        Just("mode: enforce\n".to_string()),
        Just("mx: *.".to_string()),
        Just("max_age: ".to_string()),
        Just("\r\n".to_string()),
        Just(";".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        "[a-z0-9.\\-_]{0,12}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn transport_record_parsers_never_panic(text in transport_record_like()) {
        let _ = mailshift::records::mta_sts::parse_record(&text);
        let _ = mailshift::records::mta_sts::parse_policy(&text);
        let _ = mailshift::records::tls_rpt::parse_record(&text);
        let bimi = mailshift::records::bimi::parse_record(&text);
        // A record that claims to be usable names its logo.
        prop_assert!(!bimi.is_valid() || bimi.logo.is_some());
    }

    #[test]
    fn tlsa_and_certificate_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(record) = mailshift::records::tlsa::Tlsa::parse(&bytes) {
            let _ = record.smtp_usable();
            let _ = mailshift::records::tlsa::tlsa_matches(&record, std::slice::from_ref(&bytes));
        }
        let _ = mailshift::records::tlsa::dane_ee_record(&bytes);
        let _ = mailshift::records::tlsa::presentation(&bytes);
    }

    #[test]
    fn trust_anchor_files_return_errors_not_panics(text in "(\\PC|\\n){0,300}") {
        let _ = mailshift::dnssec::anchor::Anchors::parse(&text);
    }
}
