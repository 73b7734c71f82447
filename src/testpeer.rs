//! A minimal scripted BGP speaker on bgp-proto, for integration tests and
//! benchmarks: it opens a session, sends whatever bytes a test wants
//! (malformed ones included) and reports what comes back. Blocking std I/O.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bgp_proto::attributes::{AsPath, AttrValue, MpNextHop, Origin, PathAttribute};
use bgp_proto::capability::Capability;
use bgp_proto::framing::{next_message_len, MAX_EXTENDED_MESSAGE_LEN};
use bgp_proto::open::{receive_context, Open};
use bgp_proto::update::pack_announcements;
use bgp_proto::{decode, Context, Decoded, Family, Message, Nlri};
use ipnetwork::{IpNetwork, Ipv4Network};

/// An established session with the daemon under test.
pub struct TestPeer {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Context for what we send.
    pub tx: Context,
    /// Context for what we receive.
    pub rx: Context,
    /// The daemon's OPEN.
    pub peer_open: Open,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl TestPeer {
    /// Connects (optionally from `local`), exchanges OPEN and KEEPALIVE.
    pub fn connect(to: SocketAddr, asn: u32, router_id: Ipv4Addr, timeout: Duration) -> io::Result<TestPeer> {
        let stream = TcpStream::connect_timeout(&to, timeout)?;
        stream.set_nodelay(true)?;
        let caps = vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ];
        let open = Open::new(asn, 90, router_id, caps);
        let mut peer = TestPeer {
            stream,
            buf: Vec::new(),
            tx: Context::default(),
            rx: Context::default(),
            peer_open: open.clone(),
        };
        peer.send_message(&Message::Open(open.clone()))?;
        let deadline = Instant::now() + timeout;
        let theirs = loop {
            match peer.recv(deadline)?.map(|d| d.message) {
                Some(Message::Open(o)) => break o,
                Some(Message::Notification(n)) => return Err(invalid(format!("NOTIFICATION {}", n.describe()))),
                Some(_) => {}
                None => return Err(io::Error::new(io::ErrorKind::TimedOut, "no OPEN")),
            }
        };
        peer.tx = receive_context(&open, &theirs);
        peer.rx = receive_context(&theirs, &open);
        peer.peer_open = theirs;
        peer.send_message(&Message::Keepalive)?;
        loop {
            match peer.recv(deadline)?.map(|d| d.message) {
                Some(Message::Keepalive) => return Ok(peer),
                Some(Message::Notification(n)) => return Err(invalid(format!("NOTIFICATION {}", n.describe()))),
                Some(_) => {}
                None => return Err(io::Error::new(io::ErrorKind::TimedOut, "no KEEPALIVE")),
            }
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send_message(&mut self, msg: &Message) -> io::Result<()> {
        let bytes = msg.to_bytes(&self.tx).map_err(|e| invalid(e.to_string()))?;
        self.send_raw(&bytes)
    }

    /// The next message, or `None` at the deadline. A closed connection is an error.
    pub fn recv(&mut self, deadline: Instant) -> io::Result<Option<Decoded>> {
        loop {
            if let Some(n) =
                next_message_len(&self.buf, MAX_EXTENDED_MESSAGE_LEN).map_err(|e| invalid(e.to_string()))?
            {
                let msg: Vec<u8> = self.buf.drain(..n).collect();
                return decode(&msg, &self.rx).map(Some).map_err(|e| invalid(e.to_string()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the daemon")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Announces `prefixes` via `next_hop` with a plain attribute set, packed.
    pub fn announce(&mut self, prefixes: &[IpNetwork], next_hop: Ipv4Addr, as_path: Vec<u32>) -> io::Result<usize> {
        let attrs = [
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(as_path))),
            PathAttribute::new(AttrValue::LocalPref(100)),
        ];
        let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
        let mut out = Vec::new();
        let n = pack_announcements(
            &self.tx,
            Family::IPV4_UNICAST,
            MpNextHop::V4(next_hop),
            &attrs,
            &nlri,
            &mut out,
        )
        .map_err(|e| invalid(e.to_string()))?;
        self.send_raw(&out)?;
        Ok(n)
    }
}

/// `count` consecutive /26 blocks starting at `base`.
pub fn blocks(base: Ipv4Addr, count: u32) -> Vec<IpNetwork> {
    (0..count)
        .filter_map(|i| {
            let addr = Ipv4Addr::from(u32::from(base).wrapping_add(i << 6));
            Ipv4Network::new(addr, 26).ok().map(IpNetwork::V4)
        })
        .collect()
}
