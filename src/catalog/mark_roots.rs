//! The mark certificate roots BIMI certificates chain to (`checks/bimi-roots/`): the
//! authorities that issue Verified and Common Mark Certificates are not among the web's roots,
//! so mailshift carries the ones whose copies were checked against the published fingerprints
//! (see `checks/bimi-roots/README.md`). `--bimi-ca` adds others.

use rustls_pki_types::CertificateDer;

const EMBEDDED: &[(&str, &[u8])] = &[
    (
        "digicert-verified-mark-root-ca.pem",
        include_bytes!("../../checks/bimi-roots/digicert-verified-mark-root-ca.pem"),
    ),
    (
        "entrust-verified-mark-root-vmcr1.pem",
        include_bytes!("../../checks/bimi-roots/entrust-verified-mark-root-vmcr1.pem"),
    ),
];

/// The embedded roots, DER. The files are part of the build and covered by a test, so one that
/// does not parse cannot ship; it would be skipped rather than stop a run.
pub fn embedded() -> Vec<CertificateDer<'static>> {
    let mut roots = Vec::new();
    for (_, pem) in EMBEDDED {
        let mut text: &[u8] = pem;
        roots.extend(rustls_pemfile::certs(&mut text).filter_map(Result::ok));
    }
    roots
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    #[test]
    fn embedded_roots_are_the_published_ones() {
        let fingerprints: Vec<String> = super::embedded()
            .iter()
            .map(|der| {
                sha2::Sha256::digest(der.as_ref())
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .collect();
        assert_eq!(
            fingerprints,
            [
                "50:43:86:C9:EE:89:32:FE:CC:95:FA:DE:42:7F:69:C3:E2:53:4B:73:10:48:9E:30:0F:EE:44:8E:33:C4:6B:42",
                "78:31:D9:5A:47:D4:25:08:CD:5C:9E:62:64:F9:09:6B:AC:19:F0:4E:B9:B7:C8:BD:D3:5F:FF:C7:1C:18:96:17",
            ]
        );
        // A test that every file in checks/bimi-roots is embedded.
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/checks/bimi-roots"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".pem"))
                .collect();
        files.sort();
        let embedded: Vec<&str> = super::EMBEDDED.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, embedded);
    }
}
