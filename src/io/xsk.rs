//! One AF_XDP socket bound to one (interface, queue), with its own UMEM: receive through the RX ring, recycle
//! through the fill ring, send through [`XskSink`].
//!
//! The socket never loads an XDP program (libxdp's is inhibited): [`super::SteerProgram`] steers frames to it
//! once its descriptor is in the XSKMAP. It never makes a system call that a ring did not ask for, except
//! [`PacketIo::wait`].

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use xsk_rs::config::{BindFlags, Interface, LibxdpFlags, QueueSize, SocketConfig};
use xsk_rs::{FillQueue, FrameDesc, RxQueue, Socket, Umem};

use super::error::IoError;
use super::netdev;
use super::tx::{TxStats, XskSink};
use super::umem::{self, BindMode, XskConfig};
use super::PacketIo;

/// Counters of one socket: ours and the kernel's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames taken off the RX ring.
    pub rx_frames: u64,
    /// poll(2) calls made because the fill ring asked for a wakeup.
    pub fill_kicks: u64,
    pub tx: TxStats,
    /// The kernel's view (getsockopt XDP_STATISTICS).
    pub kernel: KernelXskStats,
}

/// `struct xdp_statistics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelXskStats {
    /// Frames dropped for reasons other than an empty fill ring or a full RX ring.
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// An AF_XDP socket with its UMEM, rings and frame pool.
pub struct XskSocket {
    ifname: String,
    queue: u32,
    umem: Umem,
    rx: RxQueue,
    fill: FillQueue,
    rx_descs: Vec<FrameDesc>,
    sink: XskSink,
    /// Frames the fill ring lent to TX (by `reflect`) and is owed back from the free pool.
    fill_owed: usize,
    zero_copy: bool,
    rx_frames: u64,
    fill_kicks: u64,
}

impl XskSocket {
    /// Creates the UMEM, binds a socket to `ifname` queue `queue` (calling thread's namespace) and fills the fill
    /// ring. Insert [`XskSocket::fd`] into the steering program's XSKMAP to receive anything.
    pub fn open(ifname: &str, queue: u32, config: &XskConfig) -> Result<Self, IoError> {
        config.validate()?;
        netdev::ifindex(ifname)?;
        let count = netdev::queue_count(ifname)?;
        if let Some(count) = count {
            if queue >= count {
                return Err(IoError::QueueOutOfRange { ifname: ifname.to_string(), queue, count: Some(count) });
            }
        }
        let (umem, mut frames) = umem::create(config)?;
        let ring = QueueSize::new(config.ring_size).map_err(|e| IoError::Invalid(e.to_string()))?;
        let mut bind = match config.bind {
            BindMode::Auto => BindFlags::empty(),
            BindMode::Copy => BindFlags::XDP_COPY,
            BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
        };
        // Always: the transmit and fill paths kick the kernel only when a ring asks for it (found by an audit:
        // an option to bind without it would have stopped every send, the flag then never being set).
        bind |= BindFlags::XDP_USE_NEED_WAKEUP;
        let socket_config = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let iface: Interface = ifname.parse().map_err(|_| IoError::NoSuchInterface { name: ifname.to_string() })?;
        // SAFETY: the UMEM is this socket's alone (never shared), and libxdp's program loading is inhibited, which
        // is what xsk-rs requires for the teardown to be sound.
        let created = unsafe { Socket::new(socket_config, &umem, &iface, queue) };
        let (tx, rx, rings) = created.map_err(|e| bind_error(ifname, queue, count, config.bind, &e))?;
        let (mut fill, comp) =
            rings.ok_or_else(|| IoError::Invalid("libxdp returned no fill/completion ring for a fresh UMEM".into()))?;

        let rx_count = (config.ring_size as usize).min(frames.len());
        let tx_frames = frames.split_off(rx_count);
        // SAFETY: fresh frames of this UMEM, handed to the kernel until they come back on the RX ring.
        let filled = unsafe { fill.produce(&frames) };
        if filled != frames.len() {
            return Err(IoError::Invalid(format!("fill ring took {filled} of {} frames", frames.len())));
        }
        let zero_copy = is_zero_copy(rx.fd().as_raw_fd())?;
        let sink = XskSink::new(umem.clone(), tx, comp, tx_frames, config.ring_size, config.batch);
        Ok(XskSocket {
            ifname: ifname.to_string(),
            queue,
            umem,
            rx,
            fill,
            rx_descs: vec![FrameDesc::default(); config.batch],
            sink,
            fill_owed: 0,
            zero_copy,
            rx_frames: 0,
            fill_kicks: 0,
        })
    }

    /// The socket's descriptor, for [`super::SteerProgram::insert_xsk`].
    /// Like [`XskSocket::open`], but waits up to `patience` while the queue is busy: the kernel frees the socket
    /// of a process that just exited (a previous run, a restart) a moment after the process is gone.
    pub fn open_waiting(ifname: &str, queue: u32, config: &XskConfig, patience: Duration) -> Result<Self, IoError> {
        let until = std::time::Instant::now() + patience;
        loop {
            match Self::open(ifname, queue, config) {
                Err(IoError::QueueBusy { .. }) if std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor stays open as long as `self` (the socket owns it), which bounds the borrow.
        unsafe { BorrowedFd::borrow_raw(self.rx.fd().as_raw_fd()) }
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// True when the kernel bound the socket in zero-copy mode (never on veth).
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Our counters and the kernel's.
    pub fn stats(&self) -> Result<XskStats, IoError> {
        let k = self.rx.fd().xdp_statistics().map_err(|e| IoError::os("getsockopt(XDP_STATISTICS)", e))?;
        Ok(XskStats {
            rx_frames: self.rx_frames,
            fill_kicks: self.fill_kicks,
            tx: self.sink.stats(),
            kernel: KernelXskStats {
                rx_dropped: k.rx_dropped(),
                rx_invalid_descs: k.rx_invalid_descs(),
                tx_invalid_descs: k.tx_invalid_descs(),
                rx_ring_full: k.rx_ring_full(),
                rx_fill_ring_empty_descs: k.rx_fill_ring_empty_descs(),
                tx_ring_empty_descs: k.tx_ring_empty_descs(),
            },
        })
    }

    /// Receives up to `max` frames and lets `f` rewrite each in place: `Some(len)` sends the first `len` bytes
    /// (at most the received length) of the same frame back out without a copy, `None` recycles it. Returns how
    /// many frames were received. Queued frames go out at the next [`PacketIo::flush`].
    pub fn reflect<F: FnMut(&mut [u8]) -> Option<usize>>(&mut self, max: usize, mut f: F) -> usize {
        let n = self.take_rx(max);
        let mut keep = 0;
        for i in 0..n {
            let mut desc = self.rx_descs[i];
            let verdict = {
                // SAFETY: the frame came off this socket's RX ring: it is ours until we put it on a ring again. Its
                // address and length are the kernel's (it checks fill addresses against the UMEM and caps a length
                // at the frame less its headroom), so the slice lies within one frame of this UMEM.
                let mut data = unsafe { self.umem.data_mut(&mut desc) };
                let received = data.contents().len();
                // Never send past what was received: those bytes are stale data of an earlier frame.
                let verdict = f(data.contents_mut()).map(|len| len.min(received));
                if let Some(len) = verdict {
                    data.cursor().set_pos(len);
                }
                verdict
            };
            match verdict {
                Some(len) if len > 0 => {
                    self.sink.queue_ready(desc);
                    self.fill_owed += 1;
                }
                _ => {
                    self.rx_descs[keep] = desc;
                    keep += 1;
                }
            }
        }
        self.recycle_rx(keep);
        if self.sink.pending.len() >= self.rx_descs.len() {
            self.sink.submit();
        }
        n
    }

    /// Takes up to `max` (at most one batch) descriptors off the RX ring into `rx_descs`.
    #[inline]
    fn take_rx(&mut self, max: usize) -> usize {
        let want = max.min(self.rx_descs.len());
        if want == 0 {
            return 0;
        }
        // SAFETY: the RX ring only carries frames of this socket's UMEM.
        let n = unsafe { self.rx.consume(&mut self.rx_descs[..want]) };
        self.rx_frames += n as u64;
        n
    }

    /// Gives the first `n` received descriptors back to the fill ring (or to the free pool if it is full).
    #[inline]
    fn recycle_rx(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let room = (self.fill.nb_free(n as u32) as usize).min(n);
        // SAFETY: these frames were received and are no longer read; the kernel owns them again from here.
        let done = if room > 0 { unsafe { self.fill.produce(&self.rx_descs[..room]) } } else { 0 };
        if done < n {
            self.sink.free.extend_from_slice(&self.rx_descs[done..n]);
            self.fill_owed += n - done;
        }
    }

    /// Returns frames owed to the fill ring from the free pool.
    #[inline]
    fn refill(&mut self) {
        let want = self.fill_owed.min(self.sink.free.len());
        if want == 0 {
            return;
        }
        let room = (self.fill.nb_free(want as u32) as usize).min(want);
        if room == 0 {
            return;
        }
        let start = self.sink.free.len() - room;
        // SAFETY: free frames of this UMEM, not lent or queued anywhere; the kernel owns them from here.
        let done = unsafe { self.fill.produce(&self.sink.free[start..]) };
        self.sink.free.truncate(self.sink.free.len() - done);
        self.fill_owed -= done;
    }
}

impl PacketIo for XskSocket {
    type Sink = XskSink;

    #[inline]
    fn recv<F: FnMut(&[u8], &mut Self::Sink)>(&mut self, max: usize, mut f: F) -> usize {
        let n = self.take_rx(max);
        for desc in &self.rx_descs[..n] {
            // SAFETY: received frame of this UMEM, ours until recycled below; nothing writes it meanwhile (the
            // sink only lends frames from its own pool). Address and length come from the kernel, which keeps
            // them within one frame of the UMEM (see `reflect`).
            let data = unsafe { self.umem.data(desc) };
            f(data.contents(), &mut self.sink);
        }
        self.recycle_rx(n);
        n
    }

    #[inline]
    fn sink(&mut self) -> &mut Self::Sink {
        &mut self.sink
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.sink.submit();
        self.sink.kick()?;
        // With a ring smaller than the send pool (`--ring` under 2048), frames the ring had no room for stay
        // queued; once completions make room they go too, rather than wait for the next turn, which may come
        // only after a sleep. Each round must take completions back, so this ends when the kernel stops.
        while self.sink.reclaim() > 0 && !self.sink.pending.is_empty() {
            self.sink.submit();
            self.sink.kick()?;
        }
        self.refill();
        if self.fill.needs_wakeup() {
            self.fill_kicks += 1;
            self.rx.poll(0).map_err(|e| IoError::os("poll (AF_XDP fill wakeup)", e))?;
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<(), IoError> {
        let ms = match timeout {
            None => -1,
            Some(t) => i32::try_from(t.as_millis().max(u128::from(!t.is_zero()))).unwrap_or(i32::MAX),
        };
        self.rx.poll(ms).map(|_| ()).map_err(|e| IoError::os("poll (AF_XDP RX)", e))
    }
}

fn bind_error(
    ifname: &str,
    queue: u32,
    count: Option<u32>,
    mode: BindMode,
    err: &(dyn std::error::Error + 'static),
) -> IoError {
    let e = IoError::xsk("binding the AF_XDP socket", err);
    let IoError::Os { cause, .. } = &e else {
        return e;
    };
    match cause.raw_os_error() {
        Some(libc::EINVAL) => IoError::QueueOutOfRange { ifname: ifname.to_string(), queue, count },
        Some(libc::EBUSY) => IoError::QueueBusy { ifname: ifname.to_string(), queue },
        Some(libc::EOPNOTSUPP) if mode == BindMode::ZeroCopy => {
            IoError::Invalid(format!("{ifname} has no zero-copy AF_XDP support (veth has none): use copy mode"))
        }
        _ => e,
    }
}

/// Asks the kernel whether the socket was bound zero-copy (getsockopt XDP_OPTIONS).
fn is_zero_copy(fd: i32) -> Result<bool, IoError> {
    let mut flags: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `flags` and `len` are valid for writes of the sizes given, for the duration of the call.
    let rc =
        unsafe { libc::getsockopt(fd, libc::SOL_XDP, libc::XDP_OPTIONS, (&mut flags as *mut u32).cast(), &mut len) };
    if rc < 0 {
        return Err(IoError::last_os("getsockopt(XDP_OPTIONS)"));
    }
    Ok(flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
}
