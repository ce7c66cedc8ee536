//! Sizes of one socket's UMEM and rings, and the creation of the UMEM with its frame descriptors.
//!
//! Every socket gets its own UMEM (sharing one across queues failed with ENOMEM on multi-queue veth). The frames
//! are split once: `ring_size` of them belong to the fill ring (receive side), `tx_frames` to the transmit pool.
//! Descriptors never cross UMEMs.

use std::num::NonZeroU32;

use xsk_rs::config::{FrameSize, QueueSize, UmemConfig};
use xsk_rs::{FrameDesc, Umem};

use super::error::IoError;

/// How an AF_XDP socket binds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// Let the kernel choose: zero-copy if the driver offers it, copy mode otherwise.
    #[default]
    Auto,
    /// Force copy mode (XDP_COPY).
    Copy,
    /// Force zero-copy (XDP_ZEROCOPY); fails where the driver has no support (veth).
    ZeroCopy,
}

/// Sizes and flags of one AF_XDP socket.
#[derive(Clone, Copy, Debug)]
pub struct XskConfig {
    /// Entries of each of the four rings (RX, TX, fill, completion); a power of two. The fill ring is kept full
    /// with this many frames.
    pub ring_size: u32,
    /// Frames for transmission, on top of the `ring_size` receive frames.
    pub tx_frames: u32,
    /// Bytes per UMEM frame; a power of two, at least 2048.
    pub frame_size: u32,
    /// Descriptors moved per ring operation, and the TX queue length that triggers a submit.
    pub batch: usize,
    pub bind: BindMode,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig { ring_size: 2048, tx_frames: 2048, frame_size: 2048, batch: 64, bind: BindMode::Auto }
    }
}

impl XskConfig {
    /// Checks the sizes the kernel and libxdp insist on.
    pub fn validate(&self) -> Result<(), IoError> {
        if !self.ring_size.is_power_of_two() || self.ring_size < 64 {
            return Err(IoError::Invalid(format!("ring size {} must be a power of two >= 64", self.ring_size)));
        }
        if !self.frame_size.is_power_of_two() || self.frame_size < 2048 {
            return Err(IoError::Invalid(format!("frame size {} must be a power of two >= 2048", self.frame_size)));
        }
        if self.batch == 0 || self.batch > self.ring_size as usize {
            return Err(IoError::Invalid(format!("batch {} must be in 1..={}", self.batch, self.ring_size)));
        }
        if self.tx_frames == 0 {
            return Err(IoError::Invalid("tx_frames must be at least 1".into()));
        }
        Ok(())
    }

    /// Total frames of the UMEM.
    pub fn frame_count(&self) -> u32 {
        self.ring_size.saturating_add(self.tx_frames)
    }
}

/// Creates the UMEM and returns it with every frame's descriptor.
pub(crate) fn create(config: &XskConfig) -> Result<(Umem, Vec<FrameDesc>), IoError> {
    config.validate()?;
    let frame_size = FrameSize::new(config.frame_size).map_err(|e| IoError::Invalid(e.to_string()))?;
    let ring = QueueSize::new(config.ring_size).map_err(|e| IoError::Invalid(e.to_string()))?;
    let umem_config = UmemConfig::builder()
        .frame_size(frame_size)
        .fill_queue_size(ring)
        .comp_queue_size(ring)
        .frame_headroom(0)
        .build()
        .map_err(|e| IoError::Invalid(e.to_string()))?;
    let count = NonZeroU32::new(config.frame_count()).ok_or_else(|| IoError::Invalid("no frames".into()))?;
    Umem::new(umem_config, count, false).map_err(|e| IoError::xsk("creating the UMEM", &e))
}
