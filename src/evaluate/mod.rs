//! Evaluating authentication the way a receiver does, for one message or sending IP.
//!
//! Where `checks/` judges published records, this module answers the receiver's question for a
//! concrete case ("would mail from 198.51.100.7 pass SPF for this domain?"), with every answer
//! from mailshift's own resolver, so `--zone` overlays and the run's cache apply: SPF is
//! evaluated by mailshift itself ([`spf`]), DKIM, ARC and DMARC by mail-auth's evaluators fed
//! from that resolver ([`records`]).

pub mod cache;
pub mod dkim;
pub mod dmarc;
pub mod records;
pub mod spf;
