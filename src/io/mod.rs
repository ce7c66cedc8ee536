//! AF_XDP and the BPF steering program: the only `unsafe` of the project.
//!
//! - [`loader`]: loads bpf/steer.bpf.c, attaches it by bpf_link, writes its maps ([`SteerProgram`]), including
//!   what lets it answer SYNs itself ([`SynAnswer`]); [`presence`] maps the cells it reads.
//! - [`xsk`], [`tx`], [`umem`]: one AF_XDP socket per queue with its own UMEM ([`XskSocket`], [`XskSink`]).
//! - [`testing`]: an in-memory pair implementing the same [`PacketIo`] trait, for tests without a kernel.
//! - [`netdev`], [`topology`], [`signal`]: interface facts, veth test topologies, clean stops.
//!
//! Every `unsafe` block here carries a `// SAFETY:` comment. Nothing in this module parses TCP or knows about
//! connections; the layers above never see a descriptor, a ring or a file descriptor.

pub mod clock;
pub mod counters;
pub mod error;
pub mod loader;
pub mod netdev;
pub mod presence;
pub mod signal;
pub mod testing;
pub mod topology;
pub mod tx;
pub mod umem;
pub mod xsk;

use std::time::Duration;

pub use clock::monotonic_ns;
pub use counters::SteerCounters;
pub use error::IoError;
pub use loader::{AttachMode, NoXskAction, SteerOptions, SteerProgram, SynAnswer, XdpAction};
pub use tx::XskSink;
pub use umem::{BindMode, XskConfig};
pub use xsk::{XskSocket, XskStats};

/// Packet I/O as the runtime sees it, implemented by [`XskSocket`] (kernel) and [`testing::MemIo`] (memory).
///
/// Zero-allocation by contract: received frames are lent to the callback, replies are written straight into
/// buffers the sink lends.
pub trait PacketIo {
    type Sink: crate::sink::FrameSink;

    /// Receives up to `max` frames and calls `f(frame, sink)` for each; the frame's buffer is recycled after `f`
    /// returns. Returns the number of frames received.
    fn recv<F: FnMut(&[u8], &mut Self::Sink)>(&mut self, max: usize, f: F) -> usize;

    /// The sink for frames not caused by a received one (timers, new connections).
    fn sink(&mut self) -> &mut Self::Sink;

    /// Sends what was committed, kicks the kernel only when a ring asks for it, takes back completed frames and
    /// refills the receive side.
    fn flush(&mut self) -> Result<(), IoError>;

    /// Sleeps until a frame may be ready or `timeout` passes (`None`: no limit). May return early.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<(), IoError>;
}
