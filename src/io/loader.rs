//! Loads the steering program (bpf/steer.bpf.c) from its generated skeleton, attaches it to one interface by
//! bpf_link, and writes its maps.
//!
//! The attachment is a bpf_link owned by this process: it goes away when [`SteerProgram`] is dropped and, because
//! the kernel closes the link's descriptor, also when the process dies by any signal, `kill -9` included. This
//! module never replaces or detaches an XDP program it did not attach.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, PrintLevel, ProgramInput};
use parking_lot::Mutex;

use super::counters::{SteerCounters, SLOTS};
use super::error::IoError;
use super::netdev;

#[allow(clippy::all, clippy::pedantic, unsafe_op_in_unsafe_fn)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/steer.skel.rs"));
}
use skel::{SteerSkel, SteerSkelBuilder};

/// How the program runs on the interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (XDP_FLAGS_DRV_MODE). AF_XDP sockets may then be zero-copy where the driver supports it.
    #[default]
    Native,
    /// Generic XDP on the skb path (XDP_FLAGS_SKB_MODE): works everywhere, slower, copy mode only.
    Skb,
}

impl AttachMode {
    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => 1 << 2, // XDP_FLAGS_DRV_MODE
            AttachMode::Skb => 1 << 1,    // XDP_FLAGS_SKB_MODE
        }
    }

    fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Skb => "skb",
        }
    }
}

/// What the program does with a segment that is ours when no socket is bound to its queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoXskAction {
    /// Give it to the kernel (which will answer with RST on a port it does not serve).
    #[default]
    Pass,
    /// Drop it silently.
    Drop,
}

/// Load-time settings: fixed for the life of the loaded program.
#[derive(Clone, Copy, Debug, Default)]
pub struct SteerOptions {
    pub no_xsk_action: NoXskAction,
    /// Only segments addressed to an address added with [`SteerProgram::restrict_local_addr`] are ours.
    pub restrict_local: bool,
}

/// XDP verdicts, as returned by [`SteerProgram::test_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAction {
    Aborted,
    Drop,
    Pass,
    Tx,
    Redirect,
    Other(u32),
}

impl From<u32> for XdpAction {
    fn from(v: u32) -> Self {
        match v {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            other => XdpAction::Other(other),
        }
    }
}

struct Attachment {
    // Closing this descriptor detaches the program: that is the whole cleanup story.
    _link: OwnedFd,
    ifindex: u32,
    ifname: String,
    mode: AttachMode,
}

/// The loaded steering program, attached to at most one interface.
pub struct SteerProgram {
    // Borrows `storage` for its whole life: dropped by hand before it (see Drop).
    skel: ManuallyDrop<SteerSkel<'static>>,
    storage: NonNull<MaybeUninit<OpenObject>>,
    options: SteerOptions,
    attachment: Option<Attachment>,
}

// SAFETY: the skeleton is Send (its generated code says so) and `storage` is heap memory owned by this value alone,
// touched only through the skeleton.
unsafe impl Send for SteerProgram {}

/// Serialises loads so that the captured libbpf log belongs to one load and the print callback is restored.
static LOAD_LOCK: Mutex<()> = Mutex::new(());
static LOAD_LOG: Mutex<String> = Mutex::new(String::new());
const LOG_LIMIT: usize = 64 * 1024;

fn capture_print(_level: PrintLevel, msg: String) {
    let mut log = LOAD_LOG.lock();
    log.push_str(&msg);
    // The verifier's verdict is at the end of its log: keep the tail.
    if log.len() > 2 * LOG_LIMIT {
        let mut cut = log.len() - LOG_LIMIT;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log.replace_range(..cut, "[...]\n");
    }
}

impl SteerProgram {
    /// Opens and loads the program. Needs CAP_BPF (root); on a verifier refusal the error carries its log.
    pub fn load(options: SteerOptions) -> Result<Self, IoError> {
        let _serial = LOAD_LOCK.lock();
        LOAD_LOG.lock().clear();
        let previous = libbpf_rs::set_print(Some((PrintLevel::Info, capture_print)));
        let storage = NonNull::from(Box::leak(Box::new(MaybeUninit::<OpenObject>::uninit())));
        let result = Self::open_and_load(storage, options);
        libbpf_rs::set_print(previous);
        match result {
            Ok(skel) => Ok(SteerProgram { skel: ManuallyDrop::new(skel), storage, options, attachment: None }),
            Err(err) => {
                // SAFETY: the failed open/load dropped whatever it had written into `storage`, and nothing
                // borrows it any more; it came from Box::leak above.
                drop(unsafe { Box::from_raw(storage.as_ptr()) });
                let log = std::mem::take(&mut *LOAD_LOG.lock());
                Err(match err {
                    // The verifier also answers EACCES (an unsafe access), so a refusal is only "not permitted"
                    // when libbpf never got as far as printing the verifier's log.
                    LoadError::Libbpf(source)
                        if source.kind() == libbpf_rs::ErrorKind::PermissionDenied
                            && !log.contains("PROG LOAD LOG") =>
                    {
                        IoError::NotPermitted { op: "loading the XDP program" }
                    }
                    LoadError::Libbpf(cause) => IoError::ProgramLoad { cause, log },
                    LoadError::NoRodata => IoError::Invalid("the BPF object has no .rodata section".into()),
                })
            }
        }
    }

    fn open_and_load(
        storage: NonNull<MaybeUninit<OpenObject>>,
        options: SteerOptions,
    ) -> Result<SteerSkel<'static>, LoadError> {
        // SAFETY: `storage` is a unique heap allocation that stays alive, and is not otherwise accessed, until the
        // skeleton borrowing it is dropped (SteerProgram::drop, or the error path of `load`).
        let slot: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage.as_ptr() };
        let mut open = SteerSkelBuilder::default().open(slot).map_err(LoadError::Libbpf)?;
        let rodata = open.maps.rodata_data.as_deref_mut().ok_or(LoadError::NoRodata)?;
        rodata.no_xsk_action = match options.no_xsk_action {
            NoXskAction::Pass => 2, // XDP_PASS
            NoXskAction::Drop => 1, // XDP_DROP
        };
        rodata.restrict_local = u8::from(options.restrict_local);
        open.load().map_err(LoadError::Libbpf)
    }

    /// The load-time settings.
    pub fn options(&self) -> SteerOptions {
        self.options
    }

    /// Attaches the program to `ifname` (in the calling thread's network namespace) by bpf_link. Refuses if the
    /// interface already runs any XDP program, or if this program is attached already.
    pub fn attach(&mut self, ifname: &str, mode: AttachMode) -> Result<(), IoError> {
        if let Some(a) = &self.attachment {
            return Err(IoError::Invalid(format!("the program is already attached to {}", a.ifname)));
        }
        let ifindex = netdev::ifindex(ifname)?;
        if let Some(existing) = netdev::xdp_attachment_by_index(ifindex)? {
            return Err(IoError::AlreadyAttached {
                ifname: ifname.to_string(),
                prog_id: existing.prog_id,
                mode: existing.mode,
            });
        }
        let prog_fd = self.skel.progs.steer.as_fd().as_raw_fd();
        // SAFETY: zeroed options struct, sized as libbpf's OPTS_INIT requires.
        let mut opts: libbpf_rs::libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of_val(&opts) as _;
        opts.flags = mode.flags();
        let target = i32::try_from(ifindex).map_err(|_| IoError::Invalid(format!("ifindex {ifindex} too large")))?;
        // SAFETY: valid program fd, options struct alive across the call; the result is checked below.
        let rc =
            unsafe { libbpf_rs::libbpf_sys::bpf_link_create(prog_fd, target, libbpf_rs::libbpf_sys::BPF_XDP, &opts) };
        if rc < 0 {
            let errno = -rc;
            let source = std::io::Error::from_raw_os_error(errno);
            return Err(match errno {
                libc::EBUSY | libc::EEXIST => match netdev::xdp_attachment_by_index(ifindex)? {
                    Some(existing) => IoError::AlreadyAttached {
                        ifname: ifname.to_string(),
                        prog_id: existing.prog_id,
                        mode: existing.mode,
                    },
                    None => IoError::os("attaching the XDP program (bpf_link_create)", source),
                },
                libc::EOPNOTSUPP | libc::EINVAL if mode == AttachMode::Native => {
                    IoError::ModeUnsupported { ifname: ifname.to_string(), mode: mode.name(), cause: source }
                }
                _ => IoError::os("attaching the XDP program (bpf_link_create)", source),
            });
        }
        // SAFETY: bpf_link_create returned a fresh descriptor that nothing else owns.
        let link = unsafe { OwnedFd::from_raw_fd(rc) };
        self.attachment = Some(Attachment { _link: link, ifindex, ifname: ifname.to_string(), mode });
        Ok(())
    }

    /// Detaches the program (no-op when not attached).
    pub fn detach(&mut self) {
        self.attachment = None;
    }

    /// The interface name, index and mode the program is attached to.
    pub fn attached_to(&self) -> Option<(&str, u32, AttachMode)> {
        self.attachment.as_ref().map(|a| (a.ifname.as_str(), a.ifindex, a.mode))
    }

    /// Segments to local TCP port `port` become ours (server role).
    pub fn add_listen_port(&self, port: u16) -> Result<(), IoError> {
        self.set_listen_port(port, 1)
    }

    /// Undoes [`SteerProgram::add_listen_port`].
    pub fn remove_listen_port(&self, port: u16) -> Result<(), IoError> {
        self.set_listen_port(port, 0)
    }

    /// `ports` is an array with a byte per port (an entry cannot be deleted, only zeroed), indexed by the port's
    /// two wire bytes read as a native u16, as the program reads them.
    fn set_listen_port(&self, port: u16, on: u8) -> Result<(), IoError> {
        self.skel
            .maps
            .ports
            .update(&port_index(port).to_ne_bytes(), &[on], MapFlags::ANY)
            .map_err(|e| IoError::bpf("ports map", e))
    }

    /// Segments coming from `remote` become ours (client role: replies to the connections we open).
    pub fn add_target(&self, remote: SocketAddr) -> Result<(), IoError> {
        self.skel
            .maps
            .targets
            .update(&target_key(remote), &[1], MapFlags::ANY)
            .map_err(|e| IoError::bpf("targets map", e))
    }

    /// Undoes [`SteerProgram::add_target`].
    pub fn remove_target(&self, remote: SocketAddr) -> Result<(), IoError> {
        self.skel.maps.targets.delete(&target_key(remote)).map_err(|e| IoError::bpf("targets map", e))
    }

    /// Allows `addr` as a destination of our segments. Only valid when loaded with `restrict_local`.
    pub fn restrict_local_addr(&self, addr: IpAddr) -> Result<(), IoError> {
        if !self.options.restrict_local {
            return Err(IoError::Invalid(
                "local addresses can only be restricted when the program is loaded with restrict_local".into(),
            ));
        }
        self.skel
            .maps
            .local_addrs
            .update(&addr_key(addr), &[1], MapFlags::ANY)
            .map_err(|e| IoError::bpf("local_addrs map", e))
    }

    /// Frames carrying one 802.1Q tag with VLAN ID `vid` (1..=4094) may become ours (802.1ad tags never). Without any,
    /// tagged frames go to the kernel, which drops them unless it has that VLAN; VID 0 (a priority tag) is read as
    /// untagged and needs no entry.
    pub fn allow_vlan(&self, vid: u16) -> Result<(), IoError> {
        self.skel.maps.vlans.update(&vlan_key(vid)?, &[1], MapFlags::ANY).map_err(|e| IoError::bpf("vlans map", e))
    }

    /// Undoes [`SteerProgram::allow_vlan`].
    pub fn disallow_vlan(&self, vid: u16) -> Result<(), IoError> {
        self.skel.maps.vlans.delete(&vlan_key(vid)?).map_err(|e| IoError::bpf("vlans map", e))
    }

    /// Puts an AF_XDP socket in the slot of receive queue `queue`.
    pub fn insert_xsk(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<(), IoError> {
        let fd = u32::try_from(xsk.as_raw_fd()).map_err(|_| IoError::Invalid("negative socket fd".into()))?;
        // Array-map keys and values are host-order u32: that is what the kernel reads for XSKMAP.
        self.skel.maps.xsks.update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY).map_err(|e| match e.kind() {
            libbpf_rs::ErrorKind::InvalidInput => IoError::Invalid(format!(
                "queue {queue} does not fit the xsks map (64 slots) or the fd is no AF_XDP socket"
            )),
            _ => IoError::bpf("xsks map", e),
        })
    }

    /// Empties the slot of queue `queue`.
    pub fn remove_xsk(&self, queue: u32) -> Result<(), IoError> {
        self.skel.maps.xsks.delete(&queue.to_ne_bytes()).map_err(|e| IoError::bpf("xsks map", e))
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, IoError> {
        let mut slots = [0u64; SLOTS];
        for (i, slot) in slots.iter_mut().enumerate() {
            let key = (i as u32).to_ne_bytes();
            let per_cpu = self
                .skel
                .maps
                .counters
                .lookup_percpu(&key, MapFlags::ANY)
                .map_err(|e| IoError::bpf("counters map", e))?
                .unwrap_or_default();
            *slot = per_cpu
                .iter()
                .map(|v| v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes).unwrap_or(0))
                .sum();
        }
        Ok(SteerCounters::from_slots(slots))
    }

    /// Runs the program once on `frame` with BPF_PROG_TEST_RUN (no interface needed; queue 0) and returns its
    /// verdict. The kernel refuses frames shorter than an Ethernet header with EINVAL.
    pub fn test_run(&self, frame: &[u8]) -> Result<XdpAction, IoError> {
        let input = ProgramInput { data_in: Some(frame), ..Default::default() };
        let out = self.skel.progs.steer.test_run(input).map_err(|e| IoError::bpf("BPF_PROG_TEST_RUN", e))?;
        Ok(XdpAction::from(out.return_value))
    }
}

impl Drop for SteerProgram {
    fn drop(&mut self) {
        self.attachment = None;
        // SAFETY: dropped exactly once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
        // SAFETY: the skeleton that borrowed `storage` is gone; the allocation came from Box::leak in `load`.
        drop(unsafe { Box::from_raw(self.storage.as_ptr()) });
    }
}

enum LoadError {
    Libbpf(libbpf_rs::Error),
    NoRodata,
}

/// 16-byte address key: IPv4 as IPv4-mapped IPv6, both in network byte order.
fn addr_key(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The VLAN IDs `allow_vlan` takes: 0 is the priority tag (always allowed), 4095 is reserved.
pub const VLAN_IDS: core::ops::RangeInclusive<u16> = 1..=4094;

/// `vlans` key: the VID in network order, as the tag control information carries it with PCP and DEI cleared.
fn vlan_key(vid: u16) -> Result<[u8; 2], IoError> {
    if !VLAN_IDS.contains(&vid) {
        return Err(IoError::Invalid(format!("VLAN ID {vid} is not in 1..=4094")));
    }
    Ok(vid.to_be_bytes())
}

/// `struct target_key`: address, port (network order), two zero bytes.
fn target_key(remote: SocketAddr) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..16].copy_from_slice(&addr_key(remote.ip()));
    key[16..18].copy_from_slice(&remote.port().to_be_bytes());
    key
}

/// The index of `port` in the program's `ports` array: its two wire bytes read as a native u16.
fn port_index(port: u16) -> u32 {
    u32::from(u16::from_ne_bytes(port.to_be_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_index_is_the_wire_bytes_read_natively() {
        assert_eq!((port_index(8080) as u16).to_ne_bytes(), [0x1f, 0x90]);
        // Every port has its own slot inside the 65 536-entry array.
        let mut seen = vec![false; 1 << 16];
        for port in 0..=u16::MAX {
            let i = port_index(port) as usize;
            assert!(!std::mem::replace(&mut seen[i], true), "port {port} shares slot {i}");
        }
    }

    #[test]
    fn ipv4_keys_are_ipv4_mapped_in_network_order() {
        let key = addr_key("10.77.0.1".parse().unwrap());
        assert_eq!(key, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 0, 1]);
        let t = target_key("10.77.0.2:8080".parse().unwrap());
        assert_eq!(&t[12..], &[10, 77, 0, 2, 0x1f, 0x90, 0, 0]);
        let t6 = target_key("[fd77::2]:80".parse().unwrap());
        assert_eq!(t6[0], 0xfd);
        assert_eq!(t6[15], 2);
        assert_eq!(&t6[16..], &[0, 80, 0, 0]);
    }

    #[test]
    fn vlan_keys_are_the_vid_bits_of_the_tci_in_network_order() {
        assert_eq!(vlan_key(10).unwrap(), [0x00, 0x0a]);
        assert_eq!(vlan_key(4094).unwrap(), [0x0f, 0xfe]);
        for vid in [0, 4095, 0xffff] {
            assert!(matches!(vlan_key(vid), Err(IoError::Invalid(_))), "{vid}");
        }
    }

    #[test]
    fn generated_target_key_matches_the_c_layout() {
        assert_eq!(std::mem::size_of::<skel::types::target_key>(), 20);
        assert_eq!(std::mem::size_of::<skel::types::addr_key>(), 16);
    }
}
