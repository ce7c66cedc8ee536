//! The steering program's `presence` map, mapped into this process: the byte cells through which a worker tells
//! the program which tuples it holds (see `crate::tcp::presence` for what the cells mean).
//!
//! This module owns the mapping and nothing else: it never reads or writes a cell itself, and it hands out each
//! queue's region as a [`PresenceCells`] that keeps the mapping alive. The mapping is unmapped when the last
//! region (and the [`SteerProgram`](super::SteerProgram) that made it) is gone; it also keeps the map itself
//! alive, so a region stays valid memory even after the program is unloaded.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use super::error::IoError;
use crate::tcp::presence::PresenceCells;

/// How the `presence` map is laid out: `queues` regions of `1 << log2` one-byte cells each (the
/// `presence_log2` and `presence_queues` of [`SteerOptions`](super::SteerOptions)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PresenceLayout {
    pub log2: u8,
    pub queues: u32,
}

impl PresenceLayout {
    /// The most cells per queue (log2) the program accepts.
    pub const MAX_LOG2: u8 = 24;

    /// Entries of the `presence` array (u64 each): room for every region, at least one.
    pub fn entries(&self) -> Result<u32, IoError> {
        if self.queues > 0 && self.log2 > Self::MAX_LOG2 {
            return Err(IoError::Invalid(format!("presence_log2 {} is above {}", self.log2, Self::MAX_LOG2)));
        }
        let bytes = u64::from(self.queues) << self.log2.min(Self::MAX_LOG2);
        u32::try_from(bytes.div_ceil(8).max(1))
            .map_err(|_| IoError::Invalid(format!("a presence map of {bytes} bytes is too large")))
    }

    /// Byte range of `queue`'s cells in the map.
    pub fn region(&self, queue: u32) -> Result<core::ops::Range<usize>, IoError> {
        if self.log2 == 0 || self.log2 > Self::MAX_LOG2 {
            return Err(IoError::Invalid(format!(
                "no presence cells: the program was loaded with presence_log2 {} (1..={} needed)",
                self.log2,
                Self::MAX_LOG2
            )));
        }
        if queue >= self.queues {
            return Err(IoError::Invalid(format!(
                "queue {queue} has no presence cells (the program was loaded with presence_queues {})",
                self.queues
            )));
        }
        let len = 1usize << self.log2;
        let start = (queue as usize) << self.log2;
        Ok(start..start + len)
    }
}

/// A shared, read-write mapping of an mmapable BPF array.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory that nothing in this process frees before `Drop`; every access goes
// through `AtomicU8`, which may be shared between threads.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared access is only ever through atomics.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `bytes` bytes (rounded up to whole pages) of the BPF map behind `fd`, shared and writable.
    pub(crate) fn new(fd: BorrowedFd<'_>, bytes: usize) -> Result<Arc<Self>, IoError> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let len = bytes.max(1).div_ceil(page) * page;
        // SAFETY: a fresh mapping chosen by the kernel (no address hint), of a descriptor that stays open for the
        // call; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(IoError::os("mapping the presence map (mmap)", std::io::Error::last_os_error()));
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| IoError::Invalid("mmap of the presence map returned a null address".into()))?;
        Ok(Arc::new(Mapping { ptr, len }))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the region mmap returned; no region borrows it any more (they hold this Arc).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One queue's cells inside a [`Mapping`].
pub struct PresenceRegion {
    map: Arc<Mapping>,
    offset: usize,
    len: usize,
}

impl PresenceRegion {
    /// `range` must lie inside the mapping.
    pub(crate) fn new(map: Arc<Mapping>, range: core::ops::Range<usize>) -> Result<Self, IoError> {
        if range.start > range.end || range.end > map.len {
            return Err(IoError::Invalid(format!("presence cells {range:?} lie outside the {}-byte mapping", map.len)));
        }
        Ok(PresenceRegion { offset: range.start, len: range.end - range.start, map })
    }
}

impl core::fmt::Debug for PresenceRegion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PresenceRegion").field("offset", &self.offset).field("cells", &self.len).finish()
    }
}

impl PresenceCells for PresenceRegion {
    fn cells(&self) -> &[AtomicU8] {
        // SAFETY: `offset..offset + len` lies inside the mapping (checked in `new`), which lives as long as
        // `self` through the Arc. AtomicU8 has the size and alignment of u8, and this process only ever makes
        // single-byte accesses through it; the program's loads are outside Rust's memory model (it reads whole
        // words and looks at one byte, so a word caught between two byte stores still shows each byte whole).
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr().add(self.offset).cast::<AtomicU8>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_cover_every_region() {
        let l = PresenceLayout { log2: 3, queues: 3 };
        assert_eq!(l.entries().unwrap(), 3);
        assert_eq!(l.region(2).unwrap(), 16..24);
        let l = PresenceLayout { log2: 16, queues: 2 };
        assert_eq!(l.entries().unwrap(), 2 * 65536 / 8);
        assert_eq!(l.region(1).unwrap(), 65536..131072);
        // Regions smaller than an entry still each get their own bytes.
        let l = PresenceLayout { log2: 2, queues: 3 };
        assert_eq!(l.entries().unwrap(), 2);
        assert_eq!(l.region(2).unwrap(), 8..12);
        assert_eq!(PresenceLayout::default().entries().unwrap(), 1);
    }

    #[test]
    fn bad_layouts_and_queues_are_refused() {
        assert!(matches!(PresenceLayout { log2: 25, queues: 1 }.entries(), Err(IoError::Invalid(_))));
        for log2 in [0, 25] {
            let l = PresenceLayout { log2, queues: 1 };
            assert!(matches!(l.region(0), Err(IoError::Invalid(_))), "{log2}");
        }
        let l = PresenceLayout { log2: 8, queues: 2 };
        assert!(matches!(l.region(2), Err(IoError::Invalid(_))));
        assert!(matches!(PresenceLayout::default().region(0), Err(IoError::Invalid(_))));
    }
}
