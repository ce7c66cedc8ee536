//! Facts about network interfaces, asked of the kernel in the calling thread's network namespace: index, MAC,
//! number of queues, which XDP program is attached. Also moves a thread into a named network namespace.
//!
//! Read-only apart from [`enter_netns`]; never changes an interface.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::error::IoError;

/// The index of interface `name`, or [`IoError::NoSuchInterface`].
pub fn ifindex(name: &str) -> Result<u32, IoError> {
    let cname = interface_cstring(name)?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(IoError::NoSuchInterface { name: name.to_string() });
    }
    Ok(index)
}

fn interface_cstring(name: &str) -> Result<CString, IoError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(IoError::NoSuchInterface { name: name.to_string() });
    }
    CString::new(name).map_err(|_| IoError::NoSuchInterface { name: name.to_string() })
}

/// A datagram socket for interface ioctls, in the calling thread's namespace.
fn ioctl_socket() -> Result<OwnedFd, IoError> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(IoError::last_os("socket(AF_INET) for an interface ioctl"));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq_for(name: &str) -> Result<libc::ifreq, IoError> {
    let cname = interface_cstring(name)?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(cname.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

/// Every IP address configured on any interface of the calling thread's network namespace (Linux's weak host
/// model: a segment to any of them is the host's).
pub fn host_addresses() -> Result<Vec<std::net::IpAddr>, IoError> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`; the result is checked before the list is read.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(IoError::last_os("getifaddrs"));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: a non-null ifa_addr points to a sockaddr whose family says which sockaddr_* it is.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: family AF_INET: the address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into());
            } else if family == libc::AF_INET6 {
                // SAFETY: family AF_INET6: the address is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into());
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once, after the last read.
    unsafe { libc::freeifaddrs(head) };
    out.sort();
    out.dedup();
    Ok(out)
}

/// The MAC address of interface `name`.
pub fn mac_address(name: &str) -> Result<[u8; 6], IoError> {
    ifindex(name)?;
    let sock = ioctl_socket()?;
    let mut req = ifreq_for(name)?;
    // SAFETY: SIOCGIFHWADDR reads the name and writes a sockaddr into `req`, which lives across the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if rc < 0 {
        return Err(IoError::last_os("ioctl(SIOCGIFHWADDR)"));
    }
    // SAFETY: the kernel filled the hwaddr member of the union.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Ok(mac)
}

/// ETHTOOL_GCHANNELS request and answer (struct ethtool_channels).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// How many queues an AF_XDP socket may bind to on `name`, or `None` when the driver does not say (the kernel's
/// bind then decides). A socket needs both an RX and a TX queue with its id.
pub fn queue_count(name: &str) -> Result<Option<u32>, IoError> {
    ifindex(name)?;
    let sock = ioctl_socket()?;
    let mut req = ifreq_for(name)?;
    let mut channels = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    req.ifr_ifru.ifru_data = (&mut channels as *mut EthtoolChannels).cast();
    // SAFETY: SIOCETHTOOL reads `req` and writes the channels struct it points to; both outlive the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => Ok(None),
            _ => Err(IoError::os("ioctl(ETHTOOL_GCHANNELS)", err)),
        };
    }
    let count = channels.combined_count + channels.rx_count.min(channels.tx_count);
    Ok(if count == 0 { None } else { Some(count) })
}

/// Which XDP program an interface runs, as reported by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpAttachment {
    pub prog_id: u32,
    pub mode: &'static str,
}

/// The XDP program attached to interface `name`, if any.
pub fn xdp_attachment(name: &str) -> Result<Option<XdpAttachment>, IoError> {
    let index = ifindex(name)?;
    xdp_attachment_by_index(index)
}

pub(crate) fn xdp_attachment_by_index(index: u32) -> Result<Option<XdpAttachment>, IoError> {
    let ifindex = i32::try_from(index).map_err(|_| IoError::Invalid(format!("ifindex {index} out of range")))?;
    // SAFETY: bpf_xdp_query_opts is plain old data; zeroed then sized as libbpf's OPTS_INIT requires.
    let mut opts: libbpf_rs::libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of_val(&opts) as _;
    // SAFETY: `opts` is a valid, sized options struct that outlives the call.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_xdp_query(ifindex, 0, &mut opts) };
    if rc < 0 {
        return Err(IoError::os("bpf_xdp_query", io::Error::from_raw_os_error(-rc)));
    }
    let (prog_id, mode) = match u32::from(opts.attach_mode) {
        0 => return Ok(None),
        1 => (opts.drv_prog_id, "native"),
        2 => (opts.skb_prog_id, "skb"),
        3 => (opts.hw_prog_id, "offload"),
        _ => (if opts.drv_prog_id != 0 { opts.drv_prog_id } else { opts.skb_prog_id }, "multi"),
    };
    Ok(Some(XdpAttachment { prog_id, mode }))
}

/// Moves the calling thread (only it) into the network namespace `name` made by `ip netns add`. Threads it spawns
/// afterwards start in that namespace too.
pub fn enter_netns(name: &str) -> Result<(), IoError> {
    if name.is_empty() || name.contains('/') {
        return Err(IoError::Invalid(format!("bad network namespace name {name:?}")));
    }
    let file = File::open(format!("/run/netns/{name}"))
        .map_err(|e| IoError::Invalid(format!("network namespace {name:?} not found under /run/netns: {e}")))?;
    // SAFETY: setns(2) on a namespace descriptor we own; it changes only this thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        return Err(IoError::last_os("setns(CLONE_NEWNET)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interface_is_a_named_error() {
        match ifindex("xt-no-such-if") {
            Err(IoError::NoSuchInterface { name }) => assert_eq!(name, "xt-no-such-if"),
            other => panic!("expected NoSuchInterface, got {other:?}"),
        }
        assert!(matches!(ifindex(""), Err(IoError::NoSuchInterface { .. })));
        assert!(matches!(ifindex("a-name-longer-than-ifnamsiz"), Err(IoError::NoSuchInterface { .. })));
        assert!(matches!(ifindex("nul\0inside"), Err(IoError::NoSuchInterface { .. })));
    }

    #[test]
    fn loopback_exists_everywhere() {
        assert!(ifindex("lo").is_ok());
        assert_eq!(mac_address("lo").ok(), Some([0; 6]));
    }

    #[test]
    fn netns_names_with_slashes_are_refused() {
        assert!(matches!(enter_netns("../etc"), Err(IoError::Invalid(_))));
        assert!(matches!(enter_netns(""), Err(IoError::Invalid(_))));
    }
}
