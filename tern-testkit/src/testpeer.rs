//! A minimal scripted BGP speaker on bgp-proto, for integration tests and
//! benchmarks: it opens a session, sends whatever bytes a test wants
//! (malformed ones included) and reports what comes back. Blocking std I/O.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bgp_proto::attributes::{AsPath, AttrValue, MpNextHop, Origin, PathAttribute};
use bgp_proto::capability::Capability;
use bgp_proto::framing::{next_message_len, MAX_EXTENDED_MESSAGE_LEN};
use bgp_proto::notification::Notification;
use bgp_proto::open::{receive_context, Open};
use bgp_proto::update::{pack_announcements, Update};
use bgp_proto::{decode, Context, Decoded, Family, Message, Nlri};
use ipnetwork::{IpNetwork, Ipv4Network};

/// Socket options for [`TestPeer::connect_with`]; the default is a plain connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Source address (kernel-chosen when `None`).
    pub local: Option<IpAddr>,
    /// IP TTL / hop limit of our segments (system default when `None`).
    pub ttl: Option<u8>,
    /// TCP-MD5 key for the connection.
    pub md5_key: Option<Vec<u8>>,
    /// Capabilities offered besides IPv4 unicast, route refresh and 4-octet AS
    /// (e.g. graceful restart, RFC 4724).
    pub extra_capabilities: Vec<Capability>,
    /// Leave route refresh (RFC 2918) out of the OPEN.
    pub without_route_refresh: bool,
}

impl ConnectOptions {
    /// Offering graceful restart for IPv4 unicast (restart time 120 s,
    /// forwarding kept), with the N bit of RFC 8538 as given.
    pub fn graceful_restart(notification: bool) -> ConnectOptions {
        use bgp_proto::capability::{GracefulRestart, GracefulRestartFamily};
        ConnectOptions {
            extra_capabilities: vec![Capability::GracefulRestart(GracefulRestart {
                restarting: false,
                notification,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    forwarding_preserved: true,
                }],
            })],
            ..ConnectOptions::default()
        }
    }
}

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
    /// Bytes of the whole messages [`TestPeer::recv`] has returned (headers included).
    pub rx_bytes: u64,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl TestPeer {
    /// Connects, exchanges OPEN and KEEPALIVE (IPv4 unicast, hold time 90 s).
    pub fn connect(to: SocketAddr, asn: u32, router_id: Ipv4Addr, timeout: Duration) -> io::Result<TestPeer> {
        TestPeer::connect_from(None, to, asn, router_id, timeout)
    }

    /// [`TestPeer::connect`] from the local address `local` (kernel-chosen port),
    /// so one process can stand in for many peers with distinct addresses.
    pub fn connect_from(
        local: Option<IpAddr>,
        to: SocketAddr,
        asn: u32,
        router_id: Ipv4Addr,
        timeout: Duration,
    ) -> io::Result<TestPeer> {
        let opts = ConnectOptions {
            local,
            ..ConnectOptions::default()
        };
        TestPeer::connect_with(to, asn, router_id, timeout, &opts)
    }

    /// [`TestPeer::connect`] with socket options: source address, TTL of our
    /// segments (GTSM tests), TCP-MD5 key (RFC 2385).
    pub fn connect_with(
        to: SocketAddr,
        asn: u32,
        router_id: Ipv4Addr,
        timeout: Duration,
        opts: &ConnectOptions,
    ) -> io::Result<TestPeer> {
        use std::os::fd::AsRawFd;
        let domain = if to.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        if let Some(ip) = opts.local {
            sock.bind(&SocketAddr::new(ip, 0).into())?;
        }
        if let Some(key) = &opts.md5_key {
            tern::session::sockopt::set_md5(sock.as_raw_fd(), to.is_ipv6(), to.ip(), None, Some(key))?;
        }
        if let Some(ttl) = opts.ttl {
            tern::session::sockopt::set_ttl(sock.as_raw_fd(), to.is_ipv6(), ttl)?;
        }
        sock.connect_timeout(&to.into(), timeout)?;
        let stream = TcpStream::from(sock);
        let mut caps = vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ];
        if opts.without_route_refresh {
            caps.retain(|c| *c != Capability::RouteRefresh);
        }
        caps.extend(opts.extra_capabilities.iter().cloned());
        let open = Open::new(asn, 90, router_id, caps);
        let mut peer = TestPeer {
            stream,
            buf: Vec::new(),
            tx: Context::default(),
            rx: Context::default(),
            peer_open: open.clone(),
            rx_bytes: 0,
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

    /// A second handle on the connection, for a thread that only drains what
    /// the daemon sends while this one writes (a bulk sender must keep reading).
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
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
                self.rx_bytes += n as u64;
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

    /// Sends a KEEPALIVE (tests that run longer than a third of the hold time call this).
    pub fn keepalive(&mut self) -> io::Result<()> {
        self.send_message(&Message::Keepalive)
    }

    /// Sends End-of-RIB for IPv4 unicast (RFC 4724 §2).
    pub fn end_of_rib(&mut self) -> io::Result<()> {
        self.send_message(&Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)))
    }

    /// Reads until a NOTIFICATION arrives or the daemon closes the connection
    /// (`Ok(None)` then), skipping other messages; `TimedOut` at the deadline.
    pub fn expect_notification(&mut self, deadline: Instant) -> io::Result<Option<Notification>> {
        loop {
            match self.recv(deadline) {
                Ok(Some(Decoded {
                    message: Message::Notification(n),
                    ..
                })) => return Ok(Some(n)),
                Ok(Some(_)) => {}
                Ok(None) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no NOTIFICATION")),
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// True once the daemon has closed the connection (reads and discards
    /// anything still in flight); false when it is still open at the deadline.
    pub fn wait_closed(&mut self, deadline: Instant) -> bool {
        loop {
            match self.recv(deadline) {
                Ok(Some(_)) => {}
                Ok(None) => return false,
                Err(_) => return true,
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
        self.announce_with(prefixes, next_hop, &attrs)
    }

    /// Announces IPv4 `prefixes` via `next_hop` with the attribute set `attrs`
    /// (without NEXT_HOP/MP_*, sorted by type code); returns the UPDATE count.
    pub fn announce_with(
        &mut self,
        prefixes: &[IpNetwork],
        next_hop: Ipv4Addr,
        attrs: &[PathAttribute],
    ) -> io::Result<usize> {
        let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
        let mut out = Vec::new();
        let n = pack_announcements(
            &self.tx,
            Family::IPV4_UNICAST,
            MpNextHop::V4(next_hop),
            attrs,
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

/// Runs `f` on a new thread that joined the network namespace `name` (the
/// `/run/netns/NAME` that `ip netns add` makes), so sockets `f` opens live
/// there; they stay there when handed back to another thread. Needs root.
///
/// The kit's one `unsafe` block: `setns(2)` has no safe wrapper in std.
#[allow(unsafe_code)]
pub fn in_netns<T, F>(name: &str, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = std::fs::File::open(format!("/run/netns/{name}"))?;
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("thread in the namespace panicked"))?
}
