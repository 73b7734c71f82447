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
