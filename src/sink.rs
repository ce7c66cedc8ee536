//! Where emitted frames go.
//!
//! The core writes every outgoing frame (Ethernet header included, checksums filled in) straight into a buffer
//! that the sink lends it: a UMEM frame on AF_XDP, a `Vec` in tests. Nothing is copied after emission.

/// Lends buffers for outgoing frames.
pub trait FrameSink {
    /// A buffer for the next frame, or `None` when none is free (the caller counts a drop). Its length bounds the
    /// frame; the core never emits more than [`MAX_FRAME`] bytes.
    fn buffer(&mut self) -> Option<&mut [u8]>;
    /// Sends the first `len` bytes of the buffer most recently returned by [`FrameSink::buffer`].
    fn commit(&mut self, len: usize);
}

/// The largest frame the core emits: a 1500-byte IP packet plus an Ethernet header and one 802.1Q tag.
pub const MAX_FRAME: usize = 1518;

/// A sink that collects frames in memory, for tests, benches and the in-memory ring pair.
#[derive(Default, Debug)]
pub struct VecSink {
    pub frames: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    /// When `Some(n)`, at most `n` more frames are accepted, then `buffer` returns `None`.
    pub budget: Option<usize>,
}

impl VecSink {
    pub fn new() -> Self {
        Self::default()
    }
    /// Takes the frames collected so far.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.frames)
    }
}

impl FrameSink for VecSink {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        if let Some(0) = self.budget {
            return None;
        }
        self.scratch.clear();
        self.scratch.resize(MAX_FRAME, 0);
        Some(&mut self.scratch)
    }

    fn commit(&mut self, len: usize) {
        let len = len.min(self.scratch.len());
        self.frames.push(self.scratch[..len].to_vec());
        if let Some(b) = self.budget.as_mut() {
            *b = b.saturating_sub(1);
        }
    }
}

/// A sink over preallocated buffers that never allocates after construction: for benches and batch loops.
/// When all buffers are used, `buffer` returns `None` (the core counts a drop).
#[derive(Debug)]
pub struct BatchSink {
    bufs: Vec<[u8; MAX_FRAME]>,
    lens: Vec<usize>,
}

impl BatchSink {
    pub fn with_capacity(frames: usize) -> Self {
        BatchSink { bufs: vec![[0u8; MAX_FRAME]; frames], lens: Vec::with_capacity(frames) }
    }
    /// Frames committed so far.
    pub fn len(&self) -> usize {
        self.lens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }
    /// The committed frames, in order.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> {
        self.lens.iter().zip(self.bufs.iter()).map(|(&n, b)| &b[..n])
    }
    /// Forgets the committed frames (keeps the buffers).
    pub fn clear(&mut self) {
        self.lens.clear();
    }
}

impl FrameSink for BatchSink {
    #[inline]
    fn buffer(&mut self) -> Option<&mut [u8]> {
        let i = self.lens.len();
        self.bufs.get_mut(i).map(|b| &mut b[..])
    }
    #[inline]
    fn commit(&mut self, len: usize) {
        if self.lens.len() < self.bufs.len() {
            self.lens.push(len.min(MAX_FRAME));
        }
    }
}
