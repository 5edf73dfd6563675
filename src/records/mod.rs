//! Parsed forms of the mail-authentication records, with the exact position of every problem.
//!
//! mail-auth's parsers give the receiver's verdict (does this record load?), but only as
//! "parse error". A checker has to say *which* term or tag is wrong and why, so each module here
//! tokenises the record itself, keeps the raw text of every part for evidence, and cross-checks
//! its verdict with mail-auth's parser so mailshift never calls a record valid that receivers
//! running mail-auth would reject.

pub mod bimi;
pub mod dkim;
pub mod dmarc;
pub mod mta_sts;
pub mod spf;
pub mod svg_tiny_ps;
pub mod tags;
pub mod tls_rpt;
pub mod tlsa;
pub mod vmc;
