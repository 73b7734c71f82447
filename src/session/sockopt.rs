//! Socket options BGP needs that std and tokio do not expose: TCP-MD5
//! signatures (RFC 2385) and the minimum accepted TTL for GTSM (RFC 5082).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

use libc::{IPV6_MINHOPCOUNT, IP_MINTTL, TCP_MD5SIG, TCP_MD5SIG_EXT};

use crate::sys::setsockopt_int;

/// `TCP_MD5SIG_FLAG_PREFIX` from linux/tcp.h (libc does not export it).
const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;
/// Longest key the kernel takes (RFC 2385 keys are at most 80 octets).
pub const MD5_MAX_KEY: usize = libc::TCP_MD5SIG_MAXKEYLEN;

/// `struct tcp_md5sig` (linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY],
}

fn storage(addr: IpAddr, v6_socket: bool) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let addr = match addr {
        IpAddr::V4(v4) if v6_socket => IpAddr::V6(v4.to_ipv6_mapped()),
        a => a,
    };
    let sa: SocketAddr = SocketAddr::new(addr, 0);
    let raw = socket2::SockAddr::from(sa);
    let len = (raw.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: copying `len` bytes of a valid sockaddr into a zeroed storage of at least that size.
    unsafe {
        std::ptr::copy_nonoverlapping(raw.as_ptr() as *const u8, &mut ss as *mut _ as *mut u8, len);
    }
    ss
}

/// Sets (or with `key = None`, removes) the TCP-MD5 key for segments from
/// `peer` (a whole `prefix_len` range when given) on socket `fd`.
pub fn set_md5(fd: RawFd, v6_socket: bool, peer: IpAddr, prefix_len: Option<u8>, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or(&[]);
    if key.len() > MD5_MAX_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 key longer than 80 octets",
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: storage(peer, v6_socket),
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY],
    };
    sig.key[..key.len()].copy_from_slice(key);
    let mut opt = TCP_MD5SIG;
    if let Some(len) = prefix_len {
        sig.flags = TCP_MD5SIG_FLAG_PREFIX;
        sig.prefixlen = if v6_socket && peer.is_ipv4() { len + 96 } else { len };
        opt = TCP_MD5SIG_EXT;
    }
    // SAFETY: passes a properly sized, initialised struct to setsockopt.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            opt,
            &sig as *const TcpMd5Sig as *const libc::c_void,
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// GTSM (RFC 5082 §3): drop segments arriving with a TTL below `min_ttl`.
pub fn set_min_ttl(fd: RawFd, v6: bool, min_ttl: u8) -> io::Result<()> {
    let (level, opt) = if v6 {
        (libc::IPPROTO_IPV6, IPV6_MINHOPCOUNT)
    } else {
        (libc::IPPROTO_IP, IP_MINTTL)
    };
    setsockopt_int(fd, level, opt, min_ttl as libc::c_int)
}

/// Sets the unicast TTL / hop limit of outgoing segments.
pub fn set_ttl(fd: RawFd, v6: bool, ttl: u8) -> io::Result<()> {
    let (level, opt) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL)
    };
    setsockopt_int(fd, level, opt, ttl as libc::c_int)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn md5_key_set_and_removed_on_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = l.as_raw_fd();
        set_md5(fd, false, "127.0.0.2".parse().unwrap(), None, Some(b"secret")).unwrap();
        set_md5(fd, false, "127.0.0.0".parse().unwrap(), Some(8), Some(b"range")).unwrap();
        set_md5(fd, false, "127.0.0.2".parse().unwrap(), None, None).unwrap();
        assert!(set_md5(fd, false, "127.0.0.3".parse().unwrap(), None, Some(&[0u8; 81])).is_err());
    }

    #[test]
    fn min_ttl_and_ttl() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_min_ttl(l.as_raw_fd(), false, 254).unwrap();
        set_ttl(l.as_raw_fd(), false, 255).unwrap();
    }
}
