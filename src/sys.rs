//! The daemon's few calls into the C library and the process environment:
//! resource limits, giving freed heap back, the host name, systemd's notify
//! socket. The only module of the daemon proper allowed `unsafe`.

/// Raises the open-file limit to its hard maximum: a reflector holds one
/// socket per client (5,000 clients need more than the usual soft 1,024).
pub fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let old = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                tracing::debug!("open-file limit raised from {old} to {}", lim.rlim_max);
            }
        }
    }
}

/// Returns freed heap pages to the system after a burst (glibc keeps them otherwise).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This host's name (sent as the RFC 8516-style FQDN capability, shown by `show status`).
pub fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// Whether `addr` is on a subnet of one of this host's interfaces (so a
/// neighbour there is one hop away): from `getifaddrs`, addresses with their
/// netmasks. False when the list cannot be read.
pub fn on_connected_subnet(addr: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
        if sa.is_null() {
            return None;
        }
        // SAFETY: getifaddrs hands out valid sockaddrs; the family says which struct it is.
        unsafe {
            match i32::from((*sa).sa_family) {
                libc::AF_INET => {
                    let sin = &*(sa as *const libc::sockaddr_in);
                    Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(sa as *const libc::sockaddr_in6);
                    Some(IpAddr::from(sin6.sin6_addr.s6_addr))
                }
                _ => None,
            }
        }
    }
    fn same_subnet(a: IpAddr, b: IpAddr, mask: IpAddr) -> bool {
        match (a, b, mask) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(m)) => {
                let m = u32::from(m);
                u32::from(a) & m == u32::from(b) & m
            }
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(m)) => {
                let m = u128::from(m);
                u128::from(a) & m == u128::from(b) & m
            }
            _ => false,
        }
    }
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, released with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return false;
    }
    let mut found = false;
    let mut cur = list;
    while !cur.is_null() && !found {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if let (Some(ip), Some(mask)) = (ip_of(ifa.ifa_addr), ip_of(ifa.ifa_netmask)) {
            found = same_subnet(ip, addr, mask);
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// `setsockopt` with an `int` value (the socket options std and socket2 lack).
pub fn setsockopt_int(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: an int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
