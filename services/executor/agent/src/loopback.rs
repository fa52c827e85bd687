//! The loopback interface of an inner sandbox's new network namespace: up, as it is in a
//! container with network none, so programs can talk to themselves over 127.0.0.1 and nothing
//! else.

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Brings `lo` up in the calling process's network namespace.
pub fn bring_up() -> Result<(), String> {
    // SAFETY: socket takes integers; the fd is closed below.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if socket < 0 {
        return Err(os_error("failed to open a socket to configure lo"));
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: the request names lo and lives for both calls; the flags field of the union is
    // the one these requests read and write.
    let result = unsafe {
        if libc::ioctl(socket, libc::SIOCGIFFLAGS, &mut request) != 0 {
            Err(os_error("failed to read lo's flags"))
        } else {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(socket, libc::SIOCSIFFLAGS, &request) != 0 {
                Err(os_error("failed to bring lo up"))
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: the fd is ours and closed once.
    unsafe { libc::close(socket) };
    result
}
