//! The transmit side of one AF_XDP socket: a pool of free UMEM frames lent out through [`FrameSink`], the TX
//! ring, and the completion ring that gives frames back.
//!
//! A frame is in exactly one place at a time: the free pool, lent out (`current`), queued (`pending`), or owned
//! by the kernel (TX ring until it shows up on the completion ring). It is never written while the kernel owns it.

use xsk_rs::{CompQueue, FrameDesc, TxQueue, Umem};

use super::error::IoError;
use crate::sink::FrameSink;

/// Counters of the transmit side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Frames committed by the user.
    pub committed: u64,
    /// Frames placed on the TX ring.
    pub submitted: u64,
    /// Frames the kernel gave back on the completion ring.
    pub completed: u64,
    /// sendto(2) calls made because the TX ring asked for a wakeup.
    pub kicks: u64,
    /// `buffer()` calls that found no free frame.
    pub no_frame: u64,
}

/// Lends free UMEM frames for outgoing frames; see [`FrameSink`].
pub struct XskSink {
    umem: Umem,
    tx: TxQueue,
    comp: CompQueue,
    pub(crate) free: Vec<FrameDesc>,
    current: Option<FrameDesc>,
    pub(crate) pending: Vec<FrameDesc>,
    completions: Vec<FrameDesc>,
    ring_size: u32,
    batch: usize,
    /// Frames of the TX pool in all (free, lent, queued or with the kernel).
    pool: usize,
    stats: TxStats,
}

impl XskSink {
    pub(crate) fn new(
        umem: Umem,
        tx: TxQueue,
        comp: CompQueue,
        free: Vec<FrameDesc>,
        ring_size: u32,
        batch: usize,
    ) -> Self {
        let capacity = free.len() + ring_size as usize;
        let pool = free.len();
        XskSink {
            umem,
            tx,
            comp,
            free,
            current: None,
            pending: Vec::with_capacity(capacity),
            completions: vec![FrameDesc::default(); ring_size as usize],
            ring_size,
            batch,
            pool,
            stats: TxStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TxStats {
        self.stats
    }

    /// Frames of the TX pool in all, whether free right now or not.
    pub fn pool_frames(&self) -> usize {
        self.pool
    }

    /// Free frames left for [`FrameSink::buffer`].
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Queues a frame whose contents and length are already set (used when a received frame is sent back).
    #[inline]
    pub(crate) fn queue_ready(&mut self, desc: FrameDesc) {
        self.pending.push(desc);
        self.stats.committed += 1;
    }

    /// Moves queued frames onto the TX ring, as many as fit.
    #[inline]
    pub(crate) fn submit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // xsk_ring_prod__reserve is all-or-nothing: ask only for what fits.
        let room = self.tx.nb_free(self.pending.len() as u32) as usize;
        let n = room.min(self.pending.len());
        if n == 0 {
            return;
        }
        // SAFETY: every pending descriptor is a frame of this socket's UMEM that user space no longer touches;
        // it comes back through the completion ring before it is lent again.
        let done = unsafe { self.tx.produce(&self.pending[..n]) };
        self.pending.drain(..done);
        self.stats.submitted += done as u64;
    }

    /// Kicks the kernel while the TX ring holds frames it has not taken and it asks to be woken. In copy mode one
    /// sendto(2) moves at most 32 frames, so a full batch may take a few; the loop stops as soon as a kick makes
    /// no progress (the device is busy), leaving the rest for the next flush.
    #[inline]
    pub(crate) fn kick(&mut self) -> Result<(), IoError> {
        let mut outstanding = self.ring_size - self.tx.nb_free_exact();
        while outstanding > 0 && self.tx.needs_wakeup() {
            self.stats.kicks += 1;
            self.tx.wakeup().map_err(|e| IoError::os("sendto (AF_XDP TX wakeup)", e))?;
            let left = self.ring_size - self.tx.nb_free_exact();
            if left >= outstanding {
                break;
            }
            outstanding = left;
        }
        Ok(())
    }

    /// Takes finished frames off the completion ring into the free pool.
    #[inline]
    pub(crate) fn reclaim(&mut self) -> usize {
        // SAFETY: the completion ring only returns frames of this UMEM that the kernel has finished sending.
        let n = unsafe { self.comp.consume(&mut self.completions) };
        self.free.extend_from_slice(&self.completions[..n]);
        self.stats.completed += n as u64;
        n
    }

    /// Frames handed to the kernel and not yet completed.
    pub fn in_flight(&self) -> u64 {
        self.stats.submitted - self.stats.completed
    }
}

impl FrameSink for XskSink {
    #[inline]
    fn buffer(&mut self) -> Option<&mut [u8]> {
        if self.current.is_none() {
            if self.free.is_empty() {
                self.reclaim();
            }
            if self.free.is_empty() {
                // A burst larger than the pool within one turn (every connection's RST when a drain times out,
                // a wave of retransmissions): in copy mode the kernel sends nothing until it is kicked, and the
                // turn only flushes at its end, so without this the burst stopped at the pool's size and the
                // rest were dropped. A kick's error shows again at the turn's flush.
                self.submit();
                let _ = self.kick();
                self.reclaim();
            }
            match self.free.pop() {
                Some(desc) => self.current = Some(desc),
                None => {
                    self.stats.no_frame += 1;
                    return None;
                }
            }
        }
        let desc = self.current.as_mut()?;
        // SAFETY: `desc` is a frame of this UMEM held by this sink alone (not on any ring), so nothing else reads
        // or writes it.
        let mut data = unsafe { self.umem.data_mut(desc) };
        data.cursor().set_pos(usize::MAX); // clamps to the frame's capacity
        let whole = data.contents_mut();
        let (ptr, len) = (whole.as_mut_ptr(), whole.len());
        // SAFETY: the bytes are the lent frame's, which stays lent (and unaliased) at least as long as `self` is
        // mutably borrowed; the view only outlives `data`, a wrapper with no ownership of its own.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }

    #[inline]
    fn commit(&mut self, len: usize) {
        let Some(mut desc) = self.current.take() else {
            return;
        };
        if len == 0 {
            // The kernel rejects empty descriptors: an empty commit hands the frame back instead.
            self.free.push(desc);
            return;
        }
        {
            // SAFETY: as in `buffer`: the frame is still lent to this sink.
            let mut data = unsafe { self.umem.data_mut(&mut desc) };
            data.cursor().set_pos(len);
        }
        self.queue_ready(desc);
        if self.pending.len() >= self.batch {
            self.submit();
        }
    }
}
