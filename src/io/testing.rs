//! An in-memory ring pair: two [`PacketIo`] endpoints joined back to back, with no kernel, for testing the
//! layers above AF_XDP deterministically.
//!
//! Frames committed to A's sink become visible to B's `recv` at A's next `flush` (as on a real TX ring), in
//! order, unless a fault hook decides otherwise: drop, delay (reorder) or duplicate. Each direction holds at most
//! `capacity` frames (lent, queued, in flight or waiting to be received); beyond that `buffer()` returns `None`,
//! as a real pool runs dry. Buffers are recycled, so a steady exchange does not allocate. Single-threaded by design
//! (`Rc`), and `wait` never sleeps: tests run in virtual time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use super::error::IoError;
use super::PacketIo;
use crate::sink::{FrameSink, MAX_FRAME};

/// What a fault hook does with a frame being sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    /// Hold the frame back until `n` later frames of the same direction have been delivered (reordering), or
    /// until [`MemIo::release_held`].
    Delay(u32),
    /// Deliver it twice.
    Duplicate,
}

type FaultHook = Box<dyn FnMut(&[u8]) -> Fate>;

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames made visible to the receiver (duplicates count twice).
    pub delivered: u64,
    pub dropped: u64,
    pub delayed: u64,
    pub duplicated: u64,
    /// Frames taken by the receiver.
    pub received: u64,
    /// `buffer()` calls refused because the direction was at capacity.
    pub no_frame: u64,
}

/// One direction of the pair.
struct Link {
    queue: VecDeque<Vec<u8>>,
    held: Vec<(u32, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
    capacity: usize,
    in_use: usize,
    hook: Option<FaultHook>,
    stats: LinkStats,
}

impl Link {
    fn new(capacity: usize) -> Self {
        Link {
            queue: VecDeque::with_capacity(capacity),
            held: Vec::new(),
            pool: Vec::with_capacity(capacity),
            capacity,
            in_use: 0,
            hook: None,
            stats: LinkStats::default(),
        }
    }

    fn take_buffer(&mut self) -> Option<Vec<u8>> {
        if self.in_use >= self.capacity {
            self.stats.no_frame += 1;
            return None;
        }
        self.in_use += 1;
        let mut buf = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(MAX_FRAME));
        buf.clear();
        buf.resize(MAX_FRAME, 0);
        Some(buf)
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        self.in_use = self.in_use.saturating_sub(1);
        self.pool.push(buf);
    }

    fn send(&mut self, frame: Vec<u8>) {
        let fate = match self.hook.as_mut() {
            Some(hook) => hook(&frame),
            None => Fate::Deliver,
        };
        match fate {
            Fate::Deliver => self.deliver(frame),
            Fate::Drop => {
                self.stats.dropped += 1;
                self.give_back(frame);
            }
            Fate::Delay(0) => self.deliver(frame),
            Fate::Delay(n) => {
                self.stats.delayed += 1;
                self.held.push((n, frame));
            }
            Fate::Duplicate => {
                self.stats.duplicated += 1;
                let copy = frame.clone();
                self.in_use += 1;
                self.deliver(frame);
                self.deliver(copy);
            }
        }
    }

    fn deliver(&mut self, frame: Vec<u8>) {
        self.queue.push_back(frame);
        self.stats.delivered += 1;
        // Held frames count down on every delivery; those that reach zero follow right behind it.
        let mut i = 0;
        while i < self.held.len() {
            self.held[i].0 -= 1;
            if self.held[i].0 == 0 {
                let (_, f) = self.held.remove(i);
                self.queue.push_back(f);
                self.stats.delivered += 1;
            } else {
                i += 1;
            }
        }
    }

    fn release_held(&mut self) {
        for (_, f) in std::mem::take(&mut self.held) {
            self.queue.push_back(f);
            self.stats.delivered += 1;
        }
    }
}

/// The sink of one endpoint: lends buffers of its outbound direction.
pub struct MemSink {
    link: Rc<RefCell<Link>>,
    current: Option<Vec<u8>>,
    pending: Vec<Vec<u8>>,
}

impl FrameSink for MemSink {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        if self.current.is_none() {
            self.current = Some(self.link.borrow_mut().take_buffer()?);
        }
        self.current.as_deref_mut()
    }

    fn commit(&mut self, len: usize) {
        let Some(mut buf) = self.current.take() else {
            return;
        };
        if len == 0 {
            self.link.borrow_mut().give_back(buf);
            return;
        }
        buf.truncate(len);
        self.pending.push(buf);
    }
}

impl MemSink {
    fn new(link: Rc<RefCell<Link>>) -> Self {
        MemSink { link, current: None, pending: Vec::new() }
    }

    /// Frames committed and not yet flushed.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// One endpoint of an in-memory pair.
pub struct MemIo {
    inbound: Rc<RefCell<Link>>,
    sink: MemSink,
}

/// Two endpoints joined back to back; each direction holds at most `capacity` frames.
pub fn pair(capacity: usize) -> (MemIo, MemIo) {
    let a_to_b = Rc::new(RefCell::new(Link::new(capacity)));
    let b_to_a = Rc::new(RefCell::new(Link::new(capacity)));
    let a = MemIo { inbound: Rc::clone(&b_to_a), sink: MemSink::new(Rc::clone(&a_to_b)) };
    // B receives what A sends, and sends on the direction A receives.
    let b = MemIo { inbound: a_to_b, sink: MemSink::new(b_to_a) };
    (a, b)
}

impl MemIo {
    /// Decides the fate of every frame this endpoint sends from now on.
    pub fn set_tx_fault(&mut self, hook: impl FnMut(&[u8]) -> Fate + 'static) {
        self.sink.link.borrow_mut().hook = Some(Box::new(hook));
    }

    /// Removes the fault hook: frames are delivered in order again.
    pub fn clear_tx_fault(&mut self) {
        self.sink.link.borrow_mut().hook = None;
    }

    /// Delivers every frame this endpoint's hook delayed, now.
    pub fn release_held(&mut self) {
        self.sink.link.borrow_mut().release_held();
    }

    /// Puts `frame` in this endpoint's receive queue as if the peer had sent it (for crafted input). Not subject
    /// to capacity or faults.
    pub fn inject(&mut self, frame: &[u8]) {
        let mut link = self.inbound.borrow_mut();
        link.in_use += 1;
        let mut buf = link.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        link.queue.push_back(buf);
    }

    /// Buffers this endpoint's sink can still lend before its direction is at capacity.
    pub fn tx_free(&self) -> usize {
        let link = self.sink.link.borrow();
        link.capacity.saturating_sub(link.in_use)
    }

    /// Frames this endpoint's direction holds at most (its whole pool).
    pub fn tx_capacity(&self) -> usize {
        self.sink.link.borrow().capacity
    }

    /// Frames waiting to be received here.
    pub fn rx_pending(&self) -> usize {
        self.inbound.borrow().queue.len()
    }

    /// Counters of what this endpoint sent.
    pub fn tx_stats(&self) -> LinkStats {
        self.sink.link.borrow().stats
    }

    /// Counters of what this endpoint was sent.
    pub fn rx_stats(&self) -> LinkStats {
        self.inbound.borrow().stats
    }
}

impl PacketIo for MemIo {
    type Sink = MemSink;

    fn recv<F: FnMut(&[u8], &mut Self::Sink)>(&mut self, max: usize, mut f: F) -> usize {
        let mut n = 0;
        while n < max {
            let Some(frame) = self.inbound.borrow_mut().queue.pop_front() else {
                break;
            };
            f(&frame, &mut self.sink);
            let mut link = self.inbound.borrow_mut();
            link.stats.received += 1;
            link.give_back(frame);
            n += 1;
        }
        n
    }

    fn sink(&mut self) -> &mut Self::Sink {
        &mut self.sink
    }

    fn flush(&mut self) -> Result<(), IoError> {
        let mut link = self.sink.link.borrow_mut();
        for frame in self.sink.pending.drain(..) {
            link.send(frame);
        }
        Ok(())
    }

    /// Never sleeps: the caller's clock is virtual.
    fn wait(&mut self, _timeout: Option<Duration>) -> Result<(), IoError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(io: &mut MemIo, bytes: &[u8]) -> bool {
        let sink = io.sink();
        match sink.buffer() {
            Some(buf) => {
                buf[..bytes.len()].copy_from_slice(bytes);
                sink.commit(bytes.len());
                true
            }
            None => false,
        }
    }

    fn drain(io: &mut MemIo) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        io.recv(usize::MAX, |f, _| got.push(f.to_vec()));
        got
    }

    #[test]
    fn frames_cross_only_after_flush_and_in_order() {
        let (mut a, mut b) = pair(8);
        assert!(send(&mut a, b"one"));
        assert!(send(&mut a, b"two"));
        assert!(drain(&mut b).is_empty(), "nothing is visible before flush");
        a.flush().unwrap();
        assert_eq!(drain(&mut b), vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(drain(&mut a).is_empty(), "a frame never comes back to its sender");
    }

    #[test]
    fn replies_from_the_receive_callback_reach_the_sender() {
        let (mut a, mut b) = pair(8);
        send(&mut a, b"ping");
        a.flush().unwrap();
        b.recv(16, |frame, sink| {
            let buf = sink.buffer().expect("a free buffer");
            buf[..frame.len()].copy_from_slice(frame);
            buf[1] = b'o';
            sink.commit(frame.len());
        });
        b.flush().unwrap();
        assert_eq!(drain(&mut a), vec![b"pong".to_vec()]);
    }

    #[test]
    fn a_full_direction_refuses_buffers_until_frames_are_received() {
        let (mut a, mut b) = pair(2);
        assert!(send(&mut a, b"1"));
        assert!(send(&mut a, b"2"));
        assert!(!send(&mut a, b"3"));
        assert_eq!(a.tx_stats().no_frame, 1);
        a.flush().unwrap();
        assert_eq!(drain(&mut b).len(), 2);
        assert!(send(&mut a, b"3"));
    }

    #[test]
    fn empty_commits_send_nothing_and_return_the_buffer() {
        let (mut a, mut b) = pair(1);
        let sink = a.sink();
        assert!(sink.buffer().is_some());
        sink.commit(0);
        a.flush().unwrap();
        assert!(drain(&mut b).is_empty());
        assert!(send(&mut a, b"x"), "the buffer came back");
    }

    #[test]
    fn loss_hook_drops_chosen_frames() {
        let (mut a, mut b) = pair(8);
        let mut i = 0;
        a.set_tx_fault(move |_| {
            i += 1;
            if i % 2 == 0 {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        for f in [b"a", b"b", b"c", b"d"] {
            send(&mut a, f);
        }
        a.flush().unwrap();
        assert_eq!(drain(&mut b), vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(a.tx_stats().dropped, 2);
    }

    #[test]
    fn delay_hook_reorders_and_release_delivers_the_rest() {
        let (mut a, mut b) = pair(8);
        a.set_tx_fault(|f| match f {
            b"a" => Fate::Delay(2),
            b"z" => Fate::Delay(100),
            _ => Fate::Deliver,
        });
        for f in [b"a", b"b", b"c", b"d", b"z"] {
            send(&mut a, f);
        }
        a.flush().unwrap();
        let got: Vec<Vec<u8>> = drain(&mut b);
        assert_eq!(got, vec![b"b".to_vec(), b"c".to_vec(), b"a".to_vec(), b"d".to_vec()]);
        a.release_held();
        assert_eq!(drain(&mut b), vec![b"z".to_vec()]);
    }

    #[test]
    fn duplicate_hook_delivers_twice_and_inject_feeds_crafted_frames() {
        let (mut a, mut b) = pair(8);
        a.set_tx_fault(|_| Fate::Duplicate);
        send(&mut a, b"dup");
        a.flush().unwrap();
        b.inject(b"crafted");
        assert_eq!(drain(&mut b), vec![b"dup".to_vec(), b"dup".to_vec(), b"crafted".to_vec()]);
        a.clear_tx_fault();
        send(&mut a, b"once");
        a.flush().unwrap();
        assert_eq!(drain(&mut b), vec![b"once".to_vec()]);
    }

    #[test]
    fn recv_honours_max() {
        let (mut a, mut b) = pair(8);
        for _ in 0..5 {
            send(&mut a, b"f");
        }
        a.flush().unwrap();
        assert_eq!(b.recv(3, |_, _| {}), 3);
        assert_eq!(b.rx_pending(), 2);
        assert_eq!(b.recv(3, |_, _| {}), 2);
    }
}
