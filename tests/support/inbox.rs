//! The seed inbox in tests: one running in-process on its own runtime, and a minimal SMTP
//! client for hand-made and hostile sessions.

use mailshift::dns::{DnsConfig, Resolver};
use mailshift::seed::inbox::{Inbox, InboxConfig};
use mailshift::seed::store::{Store, StoreLimits};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const RECIPIENTS: [&str; 2] = ["inbox1@seeds.test", "inbox2@seeds.test"];

/// A seed inbox running in-process on its own runtime thread.
pub struct TestInbox {
    pub addr: SocketAddr,
    /// The inbox's resolver (a handle on the same cache).
    pub resolver: Resolver,
    /// Stops the server when the handle is dropped.
    _thread: super::server_thread::ServerThread,
}

pub fn start_inbox(
    dns: SocketAddr,
    store: &Path,
    configure: impl FnOnce(&mut InboxConfig) + Send + 'static,
) -> TestInbox {
    start_inbox_with(dns, store, StoreLimits::default(), configure)
}

/// An inbox whose store has these quota limits.
pub fn start_inbox_with(
    dns: SocketAddr,
    store: &Path,
    limits: StoreLimits,
    configure: impl FnOnce(&mut InboxConfig) + Send + 'static,
) -> TestInbox {
    start_inbox_full(
        dns,
        store,
        limits,
        mailshift::dns::DEFAULT_CACHE_BYTES,
        configure,
    )
}

/// An inbox with these store limits and this DNS cache size.
pub fn start_inbox_full(
    dns: SocketAddr,
    store: &Path,
    limits: StoreLimits,
    cache_bytes: usize,
    configure: impl FnOnce(&mut InboxConfig) + Send + 'static,
) -> TestInbox {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let store_path = store.to_path_buf();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let resolver = Resolver::new(&DnsConfig {
                nameservers: vec![dns],
                timeout: Duration::from_secs(2),
                cache_bytes,
                ..DnsConfig::default()
            })
            .unwrap();
            let handle = resolver.clone();
            let mut config = InboxConfig::new(RECIPIENTS.iter().map(|s| s.to_string()));
            configure(&mut config);
            let store = Arc::new(Store::open_with(&store_path, limits).unwrap());
            let inbox = Inbox::bind("127.0.0.1:0".parse().unwrap(), config, store, resolver)
                .await
                .unwrap();
            addr_tx.send((inbox.local_addr().unwrap(), handle)).unwrap();
            inbox
                .serve(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let (addr, resolver) = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    TestInbox {
        addr,
        resolver,
        _thread: super::server_thread::ServerThread::new(stop_tx, thread),
    }
}

/// A minimal SMTP client for hostile and hand-made sessions.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> (Client, String) {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let greeting = client.read_reply();
        (client, greeting)
    }

    /// One reply (all lines of a multi-line reply).
    pub fn read_reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return out;
            }
            out.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return out;
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> String {
        self.writer.write_all(bytes).unwrap();
        self.read_reply()
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes())
    }

    /// A whole transaction; returns the reply to the end of DATA.
    pub fn deliver(&mut self, helo: &str, from: &str, to: &str, message: &[u8]) -> String {
        assert!(self.cmd(&format!("EHLO {helo}")).starts_with("250"));
        assert!(self.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
        let rcpt = self.cmd(&format!("RCPT TO:<{to}>"));
        assert!(rcpt.starts_with("250"), "{rcpt}");
        assert!(self.cmd("DATA").starts_with("354"));
        let mut data = message.to_vec();
        data.extend_from_slice(b"\r\n.\r\n");
        self.send(&data)
    }
}
