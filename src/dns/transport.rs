//! DNS questions over the wire: UDP on a few long-lived sockets, TCP when an answer is truncated.
//!
//! A bulk run asks thousands of questions. Opening a socket per question (as general-purpose
//! resolvers do, for source-port randomisation) costs more than the server takes to answer, so
//! each configured server gets a few long-lived UDP sockets ("lanes"), and answers are matched to
//! questions by random message id and by the question itself. A truncated answer is asked again
//! over TCP. Servers are tried in turn, for as many attempts as configured; SERVFAIL and REFUSED
//! move on to the next server like a timeout does.
//!
//! The trade-off is fewer source ports; with random ids and several sockets per server that is
//! sound for talking to the resolvers or authoritative servers the user configured.

use super::LookupError;
use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::serialize::binary::DecodeError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Sockets per server: spreads load and source ports.
const LANES_PER_SERVER: usize = 4;
/// Receive buffer per socket: hundreds of answers can arrive while the runtime is busy.
const RECV_BUFFER: usize = 4 << 20;
/// EDNS payload size advertised (the DNS Flag Day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

type Reply = Result<Vec<u8>, String>;
type Pending = Arc<Mutex<HashMap<u16, oneshot::Sender<Reply>>>>;

struct Lane {
    socket: Arc<UdpSocket>,
    pending: Pending,
    receiver: JoinHandle<()>,
}

/// Long-lived sockets to the configured servers.
pub struct Transport {
    servers: Vec<SocketAddr>,
    /// `LANES_PER_SERVER` lanes for each server, in server order.
    lanes: Vec<Lane>,
    next_lane: AtomicUsize,
    timeout: Duration,
    attempts: usize,
    /// Set the RD bit: a resolver's question. Clear for questions to an authoritative server,
    /// which answers from its own zones only, as it does for resolvers.
    recursion_desired: bool,
    /// Set EDNS's DO bit and the CD bit: DNSSEC questions ([`Transport::dnssec`]).
    dnssec: bool,
}

impl Drop for Transport {
    fn drop(&mut self) {
        for lane in &self.lanes {
            lane.receiver.abort();
        }
    }
}

fn lock(pending: &Pending) -> std::sync::MutexGuard<'_, HashMap<u16, oneshot::Sender<Reply>>> {
    pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Transport {
    /// Opens the sockets. Must be called inside a Tokio runtime.
    pub fn new(
        servers: Vec<SocketAddr>,
        timeout: Duration,
        attempts: usize,
    ) -> std::io::Result<Transport> {
        let mut lanes = Vec::with_capacity(servers.len() * LANES_PER_SERVER);
        for server in &servers {
            for _ in 0..LANES_PER_SERVER {
                lanes.push(open_lane(*server)?);
            }
        }
        Ok(Transport {
            servers,
            lanes,
            next_lane: AtomicUsize::new(0),
            timeout,
            attempts: attempts.max(1),
            recursion_desired: true,
            dnssec: false,
        })
    }

    /// Sockets to the configured servers for DNSSEC questions: the DO bit asks for the RRSIG,
    /// NSEC and NSEC3 records (RFC 4035 §3.2.1), and the CD bit asks a validating resolver to
    /// hand over bogus data rather than SERVFAIL (§3.2.2), so mailshift can name the failing
    /// link itself.
    pub fn dnssec(
        servers: Vec<SocketAddr>,
        timeout: Duration,
        attempts: usize,
    ) -> std::io::Result<Transport> {
        let mut transport = Transport::new(servers, timeout, attempts)?;
        transport.dnssec = true;
        Ok(transport)
    }

    /// Sockets to one authoritative server: questions go without the RD bit.
    pub fn authoritative(
        server: SocketAddr,
        timeout: Duration,
        attempts: usize,
    ) -> std::io::Result<Transport> {
        let mut transport = Transport::new(vec![server], timeout, attempts)?;
        transport.recursion_desired = false;
        Ok(transport)
    }

    /// The most one question may wait in all, however many servers are configured: the
    /// per-answer timeout times the attempts (3 s × 2 by default), and at least two timeouts
    /// when there are several servers, so a silent first server leaves time for the second.
    pub fn question_budget(&self) -> Duration {
        let tries = self.attempts.max(self.servers.len().min(2));
        self.timeout
            .saturating_mul(u32::try_from(tries).unwrap_or(u32::MAX))
    }

    /// Asks `query`, trying each server in turn for each attempt, within
    /// [`question_budget`](Self::question_budget): each try waits at most the timeout, and no
    /// longer than what is left of the budget. Returns the first answer that is neither
    /// SERVFAIL nor REFUSED, or the last error.
    pub async fn exchange(&self, query: &Query) -> Result<Message, LookupError> {
        let mut last = LookupError::Timeout;
        let n = self.servers.len();
        let deadline = tokio::time::Instant::now() + self.question_budget();
        for attempt in 0..self.attempts {
            for k in 0..n {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(last);
                }
                let wait = self.timeout.min(left);
                let server = (attempt + k) % n;
                let result = match self.udp(server, query, wait).await {
                    Ok(message) if message.metadata.truncation => {
                        let flags = (self.recursion_desired, self.dnssec);
                        tcp_exchange(self.servers[server], query, wait, flags).await
                    }
                    other => other,
                };
                match result {
                    Ok(message) => match message.metadata.response_code {
                        ResponseCode::ServFail => last = LookupError::ServFail,
                        ResponseCode::Refused => last = LookupError::Refused,
                        _ => return Ok(message),
                    },
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }

    async fn udp(
        &self,
        server: usize,
        query: &Query,
        wait: Duration,
    ) -> Result<Message, LookupError> {
        let lane_index = server * LANES_PER_SERVER
            + self.next_lane.fetch_add(1, Ordering::Relaxed) % LANES_PER_SERVER;
        let lane = self
            .lanes
            .get(lane_index)
            .ok_or_else(|| LookupError::Network("no socket for the server".into()))?;
        let (id, mut reply) = register(&lane.pending);
        let bytes = encode(id, query, self.recursion_desired, self.dnssec)?;
        if let Err(e) = lane.socket.send(&bytes).await {
            lock(&lane.pending).remove(&id);
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                // The ICMP "port unreachable" a question before this one earned is reported on
                // whichever call comes next, here the send: the questions waiting on this lane
                // would never hear of it and wait out their timeout, so they are told now, as
                // the receiving task does when the error reaches it.
                let refused = format!("connection refused by {}", self.servers[server]);
                let waiters: Vec<_> = lock(&lane.pending).drain().map(|(_, tx)| tx).collect();
                for tx in waiters {
                    let _ = tx.send(Err(refused.clone()));
                }
                return Err(LookupError::Network(refused));
            }
            return Err(LookupError::Network(format!(
                "cannot send to {}: {e}",
                self.servers[server]
            )));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, reply).await {
                Err(_) => {
                    lock(&lane.pending).remove(&id);
                    return Err(LookupError::Timeout);
                }
                Ok(Err(_)) => {
                    return Err(LookupError::Network("the receiving task stopped".into()))
                }
                Ok(Ok(Err(e))) => return Err(LookupError::Network(e)),
                Ok(Ok(Ok(bytes))) => {
                    // An answer with our id that does not even decode is the server's answer
                    // gone wrong: fail now, not at the timeout.
                    let message = decode(&bytes).map_err(|e| {
                        LookupError::Network(format!(
                            "{} sent an answer that cannot be decoded: {e}",
                            self.servers[server]
                        ))
                    })?;
                    if is_answer_to(&message, id, query) {
                        return Ok(message);
                    }
                    // Same id, different question: not our answer (a late or spoofed reply).
                    // Keep waiting for the real one until the deadline.
                    let (tx, rx) = oneshot::channel();
                    lock(&lane.pending).insert(id, tx);
                    reply = rx;
                }
            }
        }
    }
}

/// Registers a waiter under a random id not already in flight on this lane.
fn register(pending: &Pending) -> (u16, oneshot::Receiver<Reply>) {
    let (tx, rx) = oneshot::channel();
    let mut map = lock(pending);
    let id = loop {
        let id: u16 = rand::random();
        if !map.contains_key(&id) {
            break id;
        }
    };
    map.insert(id, tx);
    (id, rx)
}

/// The question in wire form (RFC 1035 §4.1, with an RFC 6891 OPT record advertising
/// [`EDNS_PAYLOAD`]), written directly: building a hickory `Message` for every question cost
/// a twentieth of a bulk run's CPU. With `dnssec`, the CD bit (RFC 4035 §3.2.2) and the OPT
/// record's DO bit (RFC 3225) are set.
fn encode(
    id: u16,
    query: &Query,
    recursion_desired: bool,
    dnssec: bool,
) -> Result<Vec<u8>, LookupError> {
    let name = query.name();
    let mut out = Vec::with_capacity(12 + name.len() + 2 + 4 + 11);
    out.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query, with or without recursion desired (and checking disabled); one
    // question, one additional (OPT).
    let rd = u8::from(recursion_desired);
    let cd = if dnssec { 0x10 } else { 0x00 };
    out.extend_from_slice(&[rd, cd, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.iter() {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| *l <= 63)
            .ok_or_else(|| {
                LookupError::Network("cannot encode the question: a label over 63 bytes".into())
            })?;
        out.push(len);
        out.extend_from_slice(label);
    }
    out.push(0);
    out.extend_from_slice(&u16::from(query.query_type()).to_be_bytes());
    out.extend_from_slice(&u16::from(query.query_class()).to_be_bytes());
    // OPT: root owner, type 41, class = UDP payload size, TTL = extended rcode 0, version 0
    // and the flags (only DO, the top bit, with `dnssec`), no data.
    out.push(0);
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    let do_bit = if dnssec { 0x80 } else { 0x00 };
    out.extend_from_slice(&[0, 0, do_bit, 0, 0, 0]);
    Ok(out)
}

/// Decodes a response.
///
/// hickory-proto refuses a record with empty RDATA in anything but an UPDATE message, and with
/// it the whole response, although servers do publish such records (a TXT record with no
/// strings): one bad record would make every record beside it a timeout. hickory's opcode is
/// the only thing that decides it, so such a response is decoded again as if it were an
/// UPDATE and then given its own opcode back; the empty record arrives as `RData::Update0`.
fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    match Message::from_vec(bytes) {
        Err(DecodeError::InvalidEmptyRecord) => {
            let mut as_update = bytes.to_vec();
            // The opcode is bits 3–6 of the third header byte (RFC 1035 §4.1.1).
            let flags = as_update.get_mut(2).ok_or(DecodeError::InsufficientBytes)?;
            let opcode = (*flags >> 3) & 0x0f;
            *flags = (*flags & !0x78) | (u8::from(OpCode::Update) << 3);
            let mut message = Message::from_vec(&as_update)?;
            message.metadata.op_code = OpCode::from_u8(opcode);
            Ok(message)
        }
        decoded => decoded,
    }
}

/// True when `message` is the answer to `query` with message id `id`.
fn is_answer_to(message: &Message, id: u16, query: &Query) -> bool {
    // Name equality is case-insensitive, as DNS requires.
    let same_question = message.queries.first().is_some_and(|q| {
        q.query_type() == query.query_type()
            && q.query_class() == query.query_class()
            && q.name() == query.name()
    });
    message.metadata.id == id
        && message.metadata.message_type == MessageType::Response
        && same_question
}

fn open_lane(server: SocketAddr) -> std::io::Result<Lane> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if server.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel may cap it, which only makes drops under load more likely.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    let any: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    socket.bind(&any.into())?;
    socket.connect(&server.into())?;
    socket.set_nonblocking(true)?;
    let socket = Arc::new(UdpSocket::from_std(socket.into())?);
    let pending: Pending = Arc::default();
    let receiver = tokio::spawn(receive(socket.clone(), pending.clone()));
    Ok(Lane {
        socket,
        pending,
        receiver,
    })
}

/// Hands each datagram to the waiter registered under its message id.
async fn receive(socket: Arc<UdpSocket>, pending: Pending) {
    let mut buf = vec![0u8; 65_535];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                let Some(id) = buf.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                let waiter = lock(&pending).remove(&id);
                if let Some(tx) = waiter {
                    let _ = tx.send(Ok(buf[..n].to_vec()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                // ICMP port unreachable: nothing listens there. Fail every question in flight on
                // this socket now rather than letting each one time out.
                let waiters: Vec<_> = lock(&pending).drain().map(|(_, tx)| tx).collect();
                for tx in waiters {
                    let _ = tx.send(Err(format!(
                        "connection refused by {}",
                        socket
                            .peer_addr()
                            .map_or_else(|_| "the server".to_string(), |a| a.to_string())
                    )));
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// One question over TCP (RFC 7766 framing: a two-byte length before each message).
async fn tcp_exchange(
    server: SocketAddr,
    query: &Query,
    timeout: Duration,
    (recursion_desired, dnssec): (bool, bool),
) -> Result<Message, LookupError> {
    let id: u16 = rand::random();
    let bytes = encode(id, query, recursion_desired, dnssec)?;
    let io = async {
        let mut stream = TcpStream::connect(server).await?;
        let len =
            u16::try_from(bytes.len()).map_err(|_| std::io::Error::other("question too long"))?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut answer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut answer).await?;
        std::io::Result::Ok(answer)
    };
    match tokio::time::timeout(timeout, io).await {
        Err(_) => Err(LookupError::Timeout),
        Ok(Err(e)) => Err(LookupError::Network(format!("TCP to {server}: {e}"))),
        Ok(Ok(answer)) => {
            let message = decode(&answer).map_err(|e| {
                LookupError::Network(format!(
                    "TCP to {server}: the answer cannot be decoded: {e}"
                ))
            })?;
            if is_answer_to(&message, id, query) {
                Ok(message)
            } else {
                Err(LookupError::Network(format!(
                    "TCP to {server}: the answer does not match the question"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::Edns;
    use hickory_resolver::proto::rr::{Name, RecordType};

    /// Former failure: one TXT record with no strings sank the whole response (a timeout for
    /// the SPF record beside it).
    #[test]
    fn a_record_with_empty_rdata_does_not_sink_the_response() {
        use hickory_resolver::proto::rr::rdata::TXT;
        use hickory_resolver::proto::rr::{RData, Record};
        let owner = Name::from_ascii("null.example.com.").unwrap();
        let mut response = Message::response(7, OpCode::Query);
        response.add_query(Query::query(owner.clone(), RecordType::TXT));
        for strings in [vec![&b"v=spf1 ip4:"[..], b"192.0.2.5 -all"], vec![]] {
            response.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::TXT(TXT::from_bytes(strings)),
            ));
        }
        let bytes = response.to_vec().unwrap();
        assert!(matches!(
            Message::from_vec(&bytes),
            Err(DecodeError::InvalidEmptyRecord)
        ));
        let message = decode(&bytes).unwrap();
        assert_eq!(message.metadata.op_code, OpCode::Query);
        assert_eq!(message.metadata.id, 7);
        assert_eq!(message.answers.len(), 2);
        assert!(matches!(
            message.answers[1].data,
            RData::Update0(RecordType::TXT)
        ));
        // What is broken otherwise still fails.
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        assert!(decode(&[0, 7]).is_err());
    }

    /// The hand-written question is byte for byte what hickory-proto would send.
    #[test]
    fn questions_are_encoded_as_hickory_encodes_them() {
        for (name, qtype) in [
            ("example.com.", RecordType::TXT),
            ("s1._domainkey.shop.example.co.uk.", RecordType::TXT),
            ("_dmarc.xn--bcher-kva.example.", RecordType::TXT),
            ("mx1.example.net.", RecordType::AAAA),
            ("25.100.51.198.in-addr.arpa.", RecordType::PTR),
        ] {
            for (recursion_desired, dnssec) in [(true, false), (false, false), (true, true)] {
                let query = Query::query(Name::from_ascii(name).unwrap(), qtype);
                let mut message = Message::new(4242, MessageType::Query, OpCode::Query);
                message.metadata.recursion_desired = recursion_desired;
                message.metadata.checking_disabled = dnssec;
                message.add_query(query.clone());
                let mut edns = Edns::new();
                edns.set_max_payload(EDNS_PAYLOAD);
                edns.set_dnssec_ok(dnssec);
                message.set_edns(edns);
                assert_eq!(
                    encode(4242, &query, recursion_desired, dnssec).unwrap(),
                    message.to_vec().unwrap(),
                    "{name}"
                );
            }
        }
    }
}
