//! Loads the steering program (bpf/steer.bpf.c) from its generated skeleton, attaches it to one interface by
//! bpf_link, and writes its maps: ports, targets, VLANs, sockets, and what SYN answering needs (its per-queue
//! settings, the cookie keys, the presence cells).
//!
//! The attachment is a bpf_link owned by this process: it goes away when [`SteerProgram`] is dropped and, because
//! the kernel closes the link's descriptor, also when the process dies by any signal, `kill -9` included. This
//! module never replaces or detaches an XDP program it did not attach.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, PrintLevel, ProgramInput};
use parking_lot::Mutex;

use super::counters::{SteerCounters, SLOTS};
use super::error::IoError;
use super::netdev;
use super::presence::{Mapping, PresenceLayout, PresenceRegion};
use crate::tcp::cookie::{CookieKey, KeyRing};
use crate::tcp::presence::PresenceCells;

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
    /// Presence cells per queue, log2 (see [`SteerProgram::presence_cells`]); 0 with `presence_queues` 0: none.
    pub presence_log2: u8,
    /// Receive queues `0..presence_queues` get presence cells, and only they can answer SYNs.
    pub presence_queues: u32,
}

impl SteerOptions {
    fn presence(&self) -> PresenceLayout {
        PresenceLayout { log2: self.presence_log2, queues: self.presence_queues }
    }
}

/// How the program answers SYNs on one receive queue (`struct syn_answer` in bpf/steer.bpf.c): the worker's
/// settings that shape its SYN-ACK, so that the program's answer is bit for bit the worker's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynAnswer {
    /// `cfg.local_mac`: SYNs to another MAC are left to the worker.
    pub local_mac: [u8; 6],
    /// `our_mss::<V4Flow>(cfg.mss)`.
    pub mss_v4: u16,
    /// `our_mss::<V6Flow>(cfg.mss)`.
    pub mss_v6: u16,
    /// `cfg.syn_window()`.
    pub syn_window: u16,
    /// `cfg.window_scale`.
    pub window_scale: u8,
    /// `cfg.timestamps`.
    pub timestamps: bool,
    /// `cfg.sack`.
    pub sack: bool,
    /// `cfg.ts_offset`.
    pub ts_offset: u32,
    /// The worker's `Instant` in nanoseconds minus CLOCK_MONOTONIC ([`crate::io::monotonic_ns`]), wrapping.
    pub instant_minus_ktime: u64,
    /// `cfg.wall_clock_offset`.
    pub wall_clock_offset: u64,
    /// The seed of the worker's `Presence`.
    pub presence_seed: u64,
    /// Cells per queue (log2) of the worker's `Presence`: must be the program's [`SteerOptions::presence_log2`].
    pub presence_log2: u8,
}

/// Bytes of `struct syn_answer`.
const SYN_ANSWER_LEN: usize = 48;
/// Bytes of `struct cookie_key`.
const COOKIE_KEY_LEN: usize = 32;
/// Offset of `valid` in `struct cookie_key`.
const COOKIE_KEY_VALID: usize = 24;
/// Entries of `cookie_keys`: a key lives at index `slot % 4`.
const COOKIE_KEY_ENTRIES: u32 = 4;

impl SynAnswer {
    /// The settings of a worker whose endpoint has configuration `cfg`, whose clock's `Instant` is
    /// CLOCK_MONOTONIC plus `instant_minus_ktime`, and whose `Presence` has this seed and size.
    pub fn for_worker(
        cfg: &crate::tcp::Config,
        instant_minus_ktime: u64,
        presence_seed: u64,
        presence_log2: u8,
    ) -> Self {
        SynAnswer {
            local_mac: cfg.local_mac.0,
            mss_v4: cfg.announced_mss(false),
            mss_v6: cfg.announced_mss(true),
            syn_window: cfg.syn_window(),
            window_scale: cfg.window_scale,
            timestamps: cfg.timestamps,
            sack: cfg.sack,
            ts_offset: cfg.ts_offset,
            instant_minus_ktime,
            wall_clock_offset: cfg.wall_clock_offset,
            presence_seed,
            presence_log2,
        }
    }

    /// `struct syn_answer` with `enabled` as given.
    fn to_bytes(self, enabled: bool) -> [u8; SYN_ANSWER_LEN] {
        let mut b = [0u8; SYN_ANSWER_LEN];
        b[0] = u8::from(enabled);
        b[1] = u8::from(self.timestamps);
        b[2] = u8::from(self.sack);
        b[3] = self.window_scale;
        b[4..6].copy_from_slice(&self.mss_v4.to_ne_bytes());
        b[6..8].copy_from_slice(&self.mss_v6.to_ne_bytes());
        b[8..10].copy_from_slice(&self.syn_window.to_ne_bytes());
        b[10..16].copy_from_slice(&self.local_mac);
        b[16..20].copy_from_slice(&self.ts_offset.to_ne_bytes());
        b[20] = self.presence_log2;
        b[24..32].copy_from_slice(&self.instant_minus_ktime.to_ne_bytes());
        b[32..40].copy_from_slice(&self.wall_clock_offset.to_ne_bytes());
        b[40..48].copy_from_slice(&self.presence_seed.to_ne_bytes());
        b
    }
}

/// `struct cookie_key`: the key, or an entry with `valid == 0`.
fn cookie_key_bytes(key: Option<&CookieKey>) -> [u8; COOKIE_KEY_LEN] {
    let mut b = [0u8; COOKIE_KEY_LEN];
    if let Some(k) = key {
        b[..8].copy_from_slice(&k.slot.to_ne_bytes());
        b[8..COOKIE_KEY_VALID].copy_from_slice(&k.secret);
        b[COOKIE_KEY_VALID] = 1;
    }
    b
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
    presence: PresenceLayout,
    // The mmap of the `presence` map, made on first use and shared by every region handed out.
    presence_map: Mutex<Option<Arc<Mapping>>>,
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
    /// The `presence` map gets `max(1, ceil((presence_queues << presence_log2) / 8))` 8-byte entries.
    pub fn load(options: SteerOptions) -> Result<Self, IoError> {
        let presence = options.presence();
        let entries = presence.entries()?;
        let _serial = LOAD_LOCK.lock();
        LOAD_LOG.lock().clear();
        let previous = libbpf_rs::set_print(Some((PrintLevel::Info, capture_print)));
        let storage = NonNull::from(Box::leak(Box::new(MaybeUninit::<OpenObject>::uninit())));
        let result = Self::open_and_load(storage, options, entries);
        libbpf_rs::set_print(previous);
        match result {
            Ok(skel) => Ok(SteerProgram {
                skel: ManuallyDrop::new(skel),
                storage,
                options,
                presence,
                presence_map: Mutex::new(None),
                attachment: None,
            }),
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
        presence_entries: u32,
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
        open.maps.presence.set_max_entries(presence_entries).map_err(LoadError::Libbpf)?;
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

    /// Receive queues the program can steer: the slots of its `xsks` and `syn_answers` maps.
    pub const MAX_QUEUES: u32 = 64;

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
        self.test_run_frame(frame).map(|(action, _)| action)
    }

    /// [`SteerProgram::test_run`], also returning the frame as the program left it (a SYN-ACK after `Tx`).
    pub fn test_run_frame(&self, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), IoError> {
        // Room for the frame to grow: the program's answer to a short SYN is longer than the SYN.
        let mut out = vec![0u8; frame.len() + 256];
        let input = ProgramInput { data_in: Some(frame), data_out: Some(&mut out), ..Default::default() };
        let run = self.skel.progs.steer.test_run(input).map_err(|e| IoError::bpf("BPF_PROG_TEST_RUN", e))?;
        let action = XdpAction::from(run.return_value);
        let len = run.data.map_or(0, |d| d.len());
        out.truncate(len);
        Ok((action, out))
    }

    /// Lets the program answer SYNs arriving on receive queue `queue` with the worker's cookie SYN-ACK.
    ///
    /// The queue must have presence cells ([`SteerOptions::presence_queues`]) and `a.presence_log2` must be the
    /// program's, or the program could answer a SYN for a tuple the worker holds. Changing the settings of an
    /// enabled queue disables it first, so the program never reads a half-written entry.
    pub fn set_syn_answer(&self, queue: u32, a: &SynAnswer) -> Result<(), IoError> {
        self.presence.region(queue)?;
        if a.presence_log2 != self.presence.log2 {
            return Err(IoError::Invalid(format!(
                "SYN answering with {} presence cells per queue, but the map holds {}",
                1u64 << a.presence_log2.min(63),
                1u64 << self.presence.log2
            )));
        }
        self.disable_syn_answer(queue)?;
        // Written disabled, then enabled: only the flag changes in the second write.
        self.write_syn_answer(queue, &a.to_bytes(false))?;
        self.write_syn_answer(queue, &a.to_bytes(true))
    }

    /// Stops answering SYNs on `queue`: they all go to its socket again.
    pub fn disable_syn_answer(&self, queue: u32) -> Result<(), IoError> {
        let key = queue.to_ne_bytes();
        let current = self
            .skel
            .maps
            .syn_answers
            .lookup(&key, MapFlags::ANY)
            .map_err(|e| IoError::bpf("syn_answers map", e))?
            .ok_or_else(|| IoError::Invalid(format!("queue {queue} does not fit the syn_answers map (64 slots)")))?;
        let Some((&enabled, rest)) = current.split_first() else {
            return Err(IoError::Invalid("the syn_answers map has empty values".into()));
        };
        if enabled == 0 {
            return Ok(());
        }
        // The same entry with only the flag cleared: a reader sees it set with the old settings, or cleared.
        let mut off = Vec::with_capacity(current.len());
        off.push(0);
        off.extend_from_slice(rest);
        self.write_syn_answer(queue, &off)
    }

    fn write_syn_answer(&self, queue: u32, value: &[u8]) -> Result<(), IoError> {
        self.skel.maps.syn_answers.update(&queue.to_ne_bytes(), value, MapFlags::ANY).map_err(|e| match e.kind() {
            libbpf_rs::ErrorKind::InvalidInput => {
                IoError::Invalid(format!("queue {queue} does not fit the syn_answers map (64 slots)"))
            }
            _ => IoError::bpf("syn_answers map", e),
        })
    }

    /// Publishes the cookie keys the program mints with: the key of slot `s` goes to entry `s % 4`, so an entry
    /// in use is not rewritten while its slot lasts (when two keys share an entry, the newer wins; SYNs of the
    /// other's slot then go to the worker). Entries that change are cleared first, written, then marked valid.
    pub fn set_cookie_keys(&self, ring: &KeyRing) -> Result<(), IoError> {
        for index in 0..COOKIE_KEY_ENTRIES {
            let wanted = ring.iter().filter(|k| k.slot % u64::from(COOKIE_KEY_ENTRIES) == u64::from(index)).last();
            let new = cookie_key_bytes(wanted);
            let key = index.to_ne_bytes();
            let map = &self.skel.maps.cookie_keys;
            let current =
                map.lookup(&key, MapFlags::ANY).map_err(|e| IoError::bpf("cookie_keys map", e))?.unwrap_or_default();
            if current == new {
                continue;
            }
            let write =
                |value: &[u8]| map.update(&key, value, MapFlags::ANY).map_err(|e| IoError::bpf("cookie_keys map", e));
            if current.get(COOKIE_KEY_VALID).is_some_and(|&v| v != 0) {
                let mut off = current.clone();
                off[COOKIE_KEY_VALID] = 0;
                write(&off)?;
            }
            if new[COOKIE_KEY_VALID] != 0 {
                let mut off = new;
                off[COOKIE_KEY_VALID] = 0;
                write(&off)?;
            }
            write(&new)?;
        }
        Ok(())
    }

    /// Queue `queue`'s presence cells, shared with the program (an mmap of its `presence` map). The mapping
    /// lasts as long as any region of it does.
    pub fn presence_cells(&self, queue: u32) -> Result<Arc<dyn PresenceCells>, IoError> {
        let range = self.presence.region(queue)?;
        let map = {
            let mut cached = self.presence_map.lock();
            match &*cached {
                Some(m) => Arc::clone(m),
                None => {
                    let bytes = self.presence.entries()? as usize * 8;
                    let m = Mapping::new(self.skel.maps.presence.as_fd(), bytes)?;
                    *cached = Some(Arc::clone(&m));
                    m
                }
            }
        };
        Ok(Arc::new(PresenceRegion::new(map, range)?))
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

    #[test]
    fn syn_answer_bytes_match_the_c_layout() {
        assert_eq!(std::mem::size_of::<skel::types::syn_answer>(), SYN_ANSWER_LEN);
        assert_eq!(std::mem::size_of::<skel::types::cookie_key>(), COOKIE_KEY_LEN);
        let a = SynAnswer {
            local_mac: [1, 2, 3, 4, 5, 6],
            mss_v4: 0x0102,
            mss_v6: 0x0304,
            syn_window: 0x0506,
            window_scale: 7,
            timestamps: true,
            sack: false,
            ts_offset: 0x0a0b_0c0d,
            instant_minus_ktime: 0x1111_2222_3333_4444,
            wall_clock_offset: 0x5555_6666_7777_8888,
            presence_seed: 0x9999_aaaa_bbbb_cccc,
            presence_log2: 12,
        };
        let b = a.to_bytes(true);
        // Read back through the generated type: every field at the offset the C compiler gave it.
        // SAFETY: the generated type is plain old data of exactly SYN_ANSWER_LEN bytes (checked above), for which
        // any bit pattern is valid; read_unaligned needs no alignment.
        let g: skel::types::syn_answer = unsafe { std::ptr::read_unaligned(b.as_ptr().cast()) };
        assert_eq!((g.enabled, g.timestamps, g.sack, g.window_scale), (1, 1, 0, 7));
        assert_eq!((g.mss_v4, g.mss_v6, g.syn_window), (0x0102, 0x0304, 0x0506));
        assert_eq!(g.local_mac, [1, 2, 3, 4, 5, 6]);
        assert_eq!((g.ts_offset, g.presence_log2), (0x0a0b_0c0d, 12));
        assert_eq!(g.instant_minus_ktime, 0x1111_2222_3333_4444);
        assert_eq!(g.wall_clock_offset, 0x5555_6666_7777_8888);
        assert_eq!(g.presence_seed, 0x9999_aaaa_bbbb_cccc);
        assert_eq!(a.to_bytes(false)[0], 0);

        let k = CookieKey::new(0x0102_0304_0506_0708, core::array::from_fn(|i| i as u8 + 1));
        let kb = cookie_key_bytes(Some(&k));
        // SAFETY: as above, for the COOKIE_KEY_LEN-byte generated cookie_key.
        let g: skel::types::cookie_key = unsafe { std::ptr::read_unaligned(kb.as_ptr().cast()) };
        assert_eq!((g.slot, g.secret, g.valid), (k.slot, k.secret, 1));
        assert_eq!(cookie_key_bytes(None), [0u8; COOKIE_KEY_LEN]);
    }
}
