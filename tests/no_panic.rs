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
