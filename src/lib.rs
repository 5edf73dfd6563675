//! mailshift: makes an email-platform migration safe.
//!
//! The engine another program can embed. Data flows one way:
//!
//! ```text
//! inputs (domains)  → dns     (one cached, counted resolver; --zone overlay)
//!                   → fetch   (every answer a domain's checks need: DomainRecords,
//!                              and the HTTPS files records point at, through `web`)
//!                   → checks  (pure analysers: records → findings)
//!                   → engine  (per-domain status, run summary, bounded concurrency)
//!                   → output  (one formatter per format)
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mailshift::{dns::{DnsConfig, Resolver}, domain::{DomainName, DomainRequest}, engine};
//! let resolver = Resolver::new(&DnsConfig::default())?;
//! let request = DomainRequest { domain: DomainName::parse("example.com")?, selectors: vec![] };
//! let report = engine::check_domain(&resolver, &request, &engine::CheckOptions::default()).await;
//! println!("{}: {}", report.domain, report.status);
//! # Ok(()) }
//! ```

pub mod attribution;
pub mod catalog;
pub mod changes;
pub mod checks;
pub mod cli;
pub mod dns;
pub mod dnssec;
pub mod domain;
pub mod drift;
pub mod engine;
pub mod evaluate;
pub mod exit;
pub mod fetch;
pub mod files;
pub mod finding;
pub mod fixes;
pub mod gate;
pub mod history;
pub mod import;
pub mod merge;
pub mod migration;
pub mod output;
pub mod plan;
pub mod progress;
pub mod records;
pub mod reports;
pub mod seed;
pub mod smtp_probe;
pub mod snapshot;
pub mod verify;
pub mod warmup;
pub mod web;
pub mod words;
