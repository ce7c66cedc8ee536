//! Send queues: the bytes each connection has queued and not yet had acknowledged.
//!
//! Most connections never queue anything, or queue one static response, so a TCB holds only a `u32` handle
//! into this pool. A static response (`&'static [u8]`) is never copied; owned queues reuse spare vectors, so
//! the steady state allocates nothing. The first byte of a queue is the byte at SND.UNA (after the SYN).

/// The handle of "no queue".
pub const NONE: u32 = u32::MAX;

#[derive(Debug)]
enum Slot {
    Free,
    /// A static blob; `head` bytes of it are already acknowledged.
    Static {
        data: &'static [u8],
        head: usize,
    },
    /// Owned bytes; `head` bytes are already acknowledged (compacted lazily).
    Owned {
        data: Vec<u8>,
        head: usize,
    },
}

/// The pool of send queues of one endpoint.
#[derive(Debug)]
pub struct SendBufs {
    slots: Vec<Slot>,
    free: Vec<u32>,
    spare: Vec<Vec<u8>>,
    /// Bytes held in owned queues (unacknowledged; static blobs cost nothing).
    owned: usize,
    /// At most this many owned bytes for the whole endpoint: connections whose peers stop reading cannot take
    /// the host's memory, only this.
    budget: usize,
}

impl Default for SendBufs {
    fn default() -> Self {
        Self::with_budget(usize::MAX)
    }
}

impl SendBufs {
    pub fn new() -> Self {
        Self::default()
    }

    /// A pool whose owned queues hold at most `budget` bytes together.
    pub fn with_budget(budget: usize) -> Self {
        SendBufs { slots: Vec::new(), free: Vec::new(), spare: Vec::new(), owned: 0, budget }
    }

    /// What [`SendBufs::push`] would take now on queue `h` under a per-queue cap of `cap` bytes: the queue's room,
    /// and no more than is left of the endpoint's budget.
    #[inline]
    pub fn room(&self, h: u32, cap: usize) -> usize {
        cap.saturating_sub(self.len(h)).min(self.budget.saturating_sub(self.owned))
    }

    /// Bytes held in owned queues.
    pub fn owned_bytes(&self) -> usize {
        self.owned
    }

    /// Seven eighths of the budget or more are in use: the endpoint may shed connections that hold memory without
    /// making progress (RFC 6429 allows aborting connections stuck behind a zero window under resource pressure).
    pub fn under_pressure(&self) -> bool {
        self.owned >= self.budget - self.budget / 8
    }

    /// Queued bytes (acknowledged ones excluded).
    #[inline]
    pub fn len(&self, h: u32) -> usize {
        match self.slots.get(h as usize) {
            Some(Slot::Static { data, head }) => data.len() - head,
            Some(Slot::Owned { data, head }) => data.len() - head,
            _ => 0,
        }
    }

    fn alloc(&mut self, slot: Slot) -> u32 {
        if let Some(h) = self.free.pop() {
            self.slots[h as usize] = slot;
            h
        } else {
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        }
    }

    /// Appends up to [`SendBufs::room`] bytes of `bytes`; returns how many were taken.
    pub fn push(&mut self, h: &mut u32, bytes: &[u8], cap: usize) -> usize {
        let n = self.room(*h, cap).min(bytes.len());
        if n == 0 {
            return 0;
        }
        let bytes = &bytes[..n];
        if *h == NONE {
            let mut v = self.spare.pop().unwrap_or_default();
            v.clear();
            v.extend_from_slice(bytes);
            *h = self.alloc(Slot::Owned { data: v, head: 0 });
            self.owned += n;
            return n;
        }
        let mut copied = n;
        let spare = &mut self.spare;
        let slot = &mut self.slots[*h as usize];
        match slot {
            Slot::Owned { data, head } => {
                if *head > 0 && *head >= data.len() / 2 {
                    data.drain(..*head);
                    *head = 0;
                }
                data.extend_from_slice(bytes);
            }
            Slot::Static { data: s, head } => {
                let mut v = spare.pop().unwrap_or_default();
                v.clear();
                v.extend_from_slice(&s[*head..]);
                v.extend_from_slice(bytes);
                // The static part becomes owned too (at most one queue's cap beyond the budget).
                copied = v.len();
                *slot = Slot::Owned { data: v, head: 0 };
            }
            Slot::Free => unreachable!("send queue handle {h} is free"),
        }
        self.owned += copied;
        n
    }

    /// Queues a static blob without copying it when the queue is empty; otherwise copies as [`SendBufs::push`].
    /// Returns how many bytes were taken.
    pub fn push_static(&mut self, h: &mut u32, bytes: &'static [u8], cap: usize) -> usize {
        if *h == NONE && bytes.len() <= cap {
            if bytes.is_empty() {
                return 0;
            }
            *h = self.alloc(Slot::Static { data: bytes, head: 0 });
            return bytes.len();
        }
        self.push(h, bytes, cap)
    }

    /// Up to `max` queued bytes starting `offset` bytes past the first unacknowledged one.
    #[inline]
    pub fn slice(&self, h: u32, offset: usize, max: usize) -> &[u8] {
        let (data, head): (&[u8], usize) = match self.slots.get(h as usize) {
            Some(Slot::Static { data, head }) => (data, *head),
            Some(Slot::Owned { data, head }) => (data, *head),
            _ => return &[],
        };
        let start = head.saturating_add(offset).min(data.len());
        let end = start.saturating_add(max).min(data.len());
        &data[start..end]
    }

    /// Drops `n` acknowledged bytes from the front; frees the queue when it becomes empty.
    pub fn consume(&mut self, h: &mut u32, n: usize) {
        if *h == NONE || n == 0 {
            return;
        }
        let empty = match &mut self.slots[*h as usize] {
            Slot::Static { data, head } => {
                *head = (*head + n).min(data.len());
                *head == data.len()
            }
            Slot::Owned { data, head } => {
                let taken = n.min(data.len() - *head);
                *head += taken;
                self.owned -= taken;
                *head == data.len()
            }
            Slot::Free => true,
        };
        if empty {
            self.release(h);
        }
    }

    /// Frees the queue (acknowledged or not).
    pub fn release(&mut self, h: &mut u32) {
        if *h == NONE {
            return;
        }
        let slot = std::mem::replace(&mut self.slots[*h as usize], Slot::Free);
        if matches!(slot, Slot::Free) {
            // A stale copy of a handle released already (a caller's bug): pushing the slot on the free list a
            // second time would later hand it to two queues at once.
            *h = NONE;
            return;
        }
        if let Slot::Owned { mut data, head } = slot {
            self.owned -= data.len() - head;
            // Keep a bounded number of spare vectors, and none that grew huge.
            if self.spare.len() < 1024 && data.capacity() <= 1 << 20 {
                data.clear();
                self.spare.push(data);
            }
        }
        self.free.push(*h);
        *h = NONE;
    }

    /// Queues in use.
    pub fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Heap bytes held by the pool.
    pub fn memory_bytes(&self) -> usize {
        let owned: usize = self
            .slots
            .iter()
            .map(|s| match s {
                Slot::Owned { data, .. } => data.capacity(),
                _ => 0,
            })
            .sum();
        self.slots.capacity() * core::mem::size_of::<Slot>()
            + self.free.capacity() * 4
            + self.spare.iter().map(|v| v.capacity()).sum::<usize>()
            + self.spare.capacity() * core::mem::size_of::<Vec<u8>>()
            + owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_owned_bytes_of_all_queues_and_comes_back_when_acknowledged_or_freed() {
        static BLOB: &[u8] = b"0123456789";
        let mut p = SendBufs::with_budget(100);
        let (mut a, mut b, mut c) = (NONE, NONE, NONE);
        assert_eq!(p.push(&mut a, &[1; 70], 1000), 70);
        assert_eq!(p.room(b, 1000), 30);
        assert_eq!(p.push(&mut b, &[2; 70], 1000), 30, "only what is left of the budget");
        assert_eq!(p.room(c, 1000), 0);
        assert!(p.under_pressure());
        // A static blob costs nothing while it stays static.
        assert_eq!(p.push_static(&mut c, BLOB, 1000), 10);
        assert_eq!(p.owned_bytes(), 100);
        p.consume(&mut a, 50);
        assert_eq!((p.owned_bytes(), p.room(b, 1000)), (50, 50));
        // Appending to the static queue copies its unacknowledged part into the budget.
        p.consume(&mut c, 4);
        assert_eq!(p.push(&mut c, b"ab", 1000), 2);
        assert_eq!(p.owned_bytes(), 58);
        assert_eq!(p.slice(c, 0, 100), b"456789ab");
        p.release(&mut b);
        p.consume(&mut a, 1000);
        assert_eq!(p.owned_bytes(), 8);
        assert!(!p.under_pressure());
        p.release(&mut c);
        assert_eq!((p.owned_bytes(), p.in_use()), (0, 0));
    }

    #[test]
    fn a_stale_handle_released_again_frees_nothing_twice() {
        let mut p = SendBufs::with_budget(100);
        let mut a = NONE;
        p.push(&mut a, b"abc", 1000);
        let mut stale = a;
        p.release(&mut a);
        p.release(&mut stale);
        assert_eq!((p.in_use(), stale), (0, NONE));
        // Two new queues get two different slots.
        let (mut x, mut y) = (NONE, NONE);
        p.push(&mut x, b"x", 1000);
        p.push(&mut y, b"y", 1000);
        assert_ne!(x, y);
        assert_eq!((p.slice(x, 0, 10), p.slice(y, 0, 10)), (&b"x"[..], &b"y"[..]));
    }

    #[test]
    fn static_blob_is_queued_without_copy_and_freed_when_acknowledged() {
        static BLOB: &[u8] = b"HTTP/1.1 200 OK\r\n\r\n";
        let mut p = SendBufs::new();
        let mut h = NONE;
        assert_eq!(p.push_static(&mut h, BLOB, 1000), BLOB.len());
        assert_eq!(p.slice(h, 0, 4).as_ptr(), BLOB.as_ptr());
        assert_eq!(p.slice(h, 5, 3), b"1.1");
        p.consume(&mut h, 5);
        assert_eq!(p.len(h), BLOB.len() - 5);
        assert_eq!(p.slice(h, 0, 3), b"1.1");
        p.consume(&mut h, 100);
        assert_eq!(h, NONE);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn push_respects_capacity_and_appends_after_static() {
        let mut p = SendBufs::new();
        let mut h = NONE;
        assert_eq!(p.push_static(&mut h, b"abc", 5), 3);
        assert_eq!(p.push(&mut h, b"defgh", 5), 2);
        assert_eq!(p.slice(h, 0, 10), b"abcde");
        p.consume(&mut h, 4);
        assert_eq!(p.push(&mut h, b"xyz", 5), 3);
        assert_eq!(p.slice(h, 0, 10), b"exyz");
    }

    #[test]
    fn released_vectors_are_reused() {
        let mut p = SendBufs::new();
        let mut a = NONE;
        p.push(&mut a, &[1; 100], 1000);
        p.release(&mut a);
        let before = p.memory_bytes();
        let mut b = NONE;
        p.push(&mut b, &[2; 50], 1000);
        assert_eq!(p.memory_bytes(), before);
        assert_eq!(p.slice(b, 0, 100), &[2; 50][..]);
    }

    #[test]
    fn out_of_range_slices_are_empty() {
        let mut p = SendBufs::new();
        let mut h = NONE;
        p.push(&mut h, b"abc", 10);
        assert_eq!(p.slice(h, 3, 10), b"");
        assert_eq!(p.slice(h, 99, 10), b"");
        assert_eq!(p.slice(NONE, 0, 10), b"");
    }
}
