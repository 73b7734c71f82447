//! The UDP sockets of BFD and the C calls std does not have: the received
//! TTL / hop limit and destination address as ancillary data (RFC 5881 §5
//! needs the TTL), and a source port from 49152–65535 (RFC 5881 §4).

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::sys::setsockopt_int;

/// Receive buffer of each listening socket, in bytes.
const RECV_BUFFER: i32 = 4 << 20;

/// A socket that receives Control packets on `addr:port`, with the TTL /
/// hop limit and the destination address of each packet reported.
pub(super) fn open_rx(addr: IpAddr, port: u16) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::for_address(SocketAddr::new(addr, port)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    let fd = sock.as_raw_fd();
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    // Every session's packets queue here between the task's wakeups (up to
    // two coalescing windows): 1,000 sessions at 100 ms, ~230 packets, are
    // more than the default buffer holds. FORCE passes net.core.rmem_max
    // with CAP_NET_ADMIN; without it the kernel caps the plain request.
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RECV_BUFFER).is_err() {
        let _ = sock.set_recv_buffer_size(RECV_BUFFER as usize);
    }
    sock.bind(&SockAddr::from(SocketAddr::new(addr, port)))?;
    Ok(sock)
}

/// One received datagram: its length in the buffer and where it came from
/// and went to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Received {
    pub len: usize,
    pub src: SocketAddr,
    pub dst: Option<IpAddr>,
    /// The IP TTL / IPv6 hop limit it arrived with, if the kernel said.
    pub ttl: Option<u8>,
    /// The interface it arrived on (0: unknown).
    pub ifindex: u32,
}

/// Aligns a control-message length as the kernel's `CMSG_ALIGN` does.
fn cmsg_align(n: usize) -> usize {
    let a = size_of::<usize>();
    (n + a - 1) & !(a - 1)
}

fn read_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Walks the control messages of one `recvmsg` (the `struct cmsghdr`
/// layout: length as `size_t`, level and type as `int`, data aligned).
fn parse_cmsgs(control: &[u8], out: &mut Received) {
    let header = cmsg_align(size_of::<usize>() + 8);
    let mut at = 0;
    while at + header <= control.len() {
        let Some(len) = control
            .get(at..at + size_of::<usize>())
            .and_then(|b| b.try_into().ok())
            .map(usize::from_ne_bytes)
        else {
            return;
        };
        let (Some(level), Some(kind)) = (
            read_i32(control, at + size_of::<usize>()),
            read_i32(control, at + size_of::<usize>() + 4),
        ) else {
            return;
        };
        if len < header || at + len > control.len() {
            return;
        }
        let data = &control[at + header..at + len];
        match (level, kind) {
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                out.ttl = read_i32(data, 0).and_then(|t| u8::try_from(t).ok());
            }
            // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                if let Some(a) = data.get(8..12) {
                    out.dst = Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])));
                }
                out.ifindex = read_i32(data, 0).and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
            }
            // struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                if let Some(a) = data.get(0..16).and_then(|a| <[u8; 16]>::try_from(a).ok()) {
                    out.dst = Some(IpAddr::V6(Ipv6Addr::from(a)));
                }
                out.ifindex = read_i32(data, 16).and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
            }
            _ => {}
        }
        at += cmsg_align(len);
    }
}

/// Receives one datagram into `buf` without blocking (`WouldBlock` when none is queued).
pub(super) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = [0u8; 128];
    let mut from = [0u8; size_of::<libc::sockaddr_in6>()];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is valid, the pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = from.as_mut_ptr() as *mut libc::c_void;
    msg.msg_namelen = from.len() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = control.len() as _;
    // SAFETY: every pointer in msg refers to a live local buffer of the stated size.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let src = sockaddr(&from[..(msg.msg_namelen as usize).min(from.len())])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
    let mut out = Received {
        len: (n as usize).min(buf.len()),
        src,
        dst: None,
        ttl: None,
        ifindex: 0,
    };
    parse_cmsgs(&control[..(msg.msg_controllen as usize).min(control.len())], &mut out);
    Ok(out)
}

/// The name of interface `ifindex` (`if_indextoname`), if it exists.
pub(super) fn interface_name(ifindex: u32) -> Option<String> {
    if ifindex == 0 {
        return None;
    }
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes, NUL included, into buf.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr() as *mut libc::c_char) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// A `sockaddr_in` / `sockaddr_in6` from its bytes (family, port, address).
fn sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let a = b.get(4..8)?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])), port))
        }
        libc::AF_INET6 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let v6 = Ipv6Addr::from(a);
            // A v4-mapped source (never on a v6-only socket) is the v4 address.
            Some(SocketAddr::new(
                v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                port,
            ))
        }
        _ => None,
    }
}

/// A socket that sends one session's packets to `remote`: from `local` (or
/// the kernel's choice), from a source port in 49152–65535 (RFC 5881 §4:
/// the same port for the whole session), with TTL / hop limit 255 (RFC 5881
/// §5; RFC 5883 §5 allows it for multihop too).
pub(super) fn open_tx(local: Option<IpAddr>, remote: SocketAddr, seed: u32) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(remote), Type::DGRAM, Some(Protocol::UDP))?;
    if remote.is_ipv6() {
        sock.set_unicast_hops_v6(u32::from(bfd::udp::SINGLE_HOP_TTL))?;
    } else {
        sock.set_ttl_v4(u32::from(bfd::udp::SINGLE_HOP_TTL))?;
    }
    sock.set_nonblocking(true)?;
    let ip = local.unwrap_or(match remote {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let ports = bfd::udp::SOURCE_PORTS;
    let span = u32::from(ports.end() - ports.start()) + 1;
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free source port");
    for i in 0..64u32 {
        let offset = seed.wrapping_mul(2_654_435_761).wrapping_add(i.wrapping_mul(7919)) % span;
        let port = ports.start() + offset as u16;
        match sock.bind(&SockAddr::from(SocketAddr::new(ip, port))) {
            Ok(()) => {
                sock.connect(&SockAddr::from(remote))?;
                return Ok(sock);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_parse_and_garbage_is_ignored() {
        let mut control = Vec::new();
        let header = cmsg_align(size_of::<usize>() + 8);
        let mut push = |level: i32, kind: i32, data: &[u8]| {
            let len = header + data.len();
            control.extend_from_slice(&len.to_ne_bytes());
            control.extend_from_slice(&level.to_ne_bytes());
            control.extend_from_slice(&kind.to_ne_bytes());
            control.extend_from_slice(data);
            control.resize(cmsg_align(control.len()), 0);
        };
        push(libc::IPPROTO_IP, libc::IP_TTL, &255i32.to_ne_bytes());
        push(
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            &[2, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1],
        );
        let mut r = Received {
            len: 0,
            src: "1.1.1.1:1".parse().unwrap(),
            dst: None,
            ttl: None,
            ifindex: 0,
        };
        parse_cmsgs(&control, &mut r);
        assert_eq!((r.ttl, r.dst), (Some(255), Some("10.0.0.1".parse().unwrap())));
        assert_eq!(r.ifindex, 2);
        for cut in 0..control.len() {
            parse_cmsgs(&control[..cut], &mut r);
        }
        let mut bad = control.clone();
        bad[0] = 0xff;
        parse_cmsgs(&bad, &mut r);
    }
}
