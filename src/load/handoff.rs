//! Segments that arrive on one worker's queue for a connection another worker owns. Tuples are split between
//! workers by a stride over tuple indices ([`TupleAllocator::owner`]), but the NIC spreads replies over queues
//! by its own hash: against a peer that answers on another queue, a SYN-ACK for worker A's connection reaches
//! worker B, whose endpoint knows nothing of it and would answer RST, and A's connection would time out.
//!
//! It owns the channels between workers: each worker has an inbox, and a sender to every worker's. A frame for
//! another worker is copied and sent to its owner, which handles it as if received itself. Lock-free
//! (crossbeam channels); the copy, an allocation, is paid only by frames on the wrong queue. It never blocks:
//! when the owner's inbox is full the frame is dropped and counted (TCP retransmits), never answered.
//!
//! [`TupleAllocator::owner`]: super::tuples::TupleAllocator::owner

use crate::runtime::mesh::{mesh, MeshEnd};
use crossbeam::channel::{Receiver, Sender, TrySendError};

/// One worker's end of the mesh.
#[derive(Debug)]
pub struct Handoff {
    me: u32,
    inbox: Receiver<Vec<u8>>,
    /// Every worker's inbox, by worker index (this worker's own included, never used).
    peers: Vec<Sender<Vec<u8>>>,
    /// Frames sent on to the worker that owns their tuple.
    pub handed_off: u64,
    /// Frames dropped because their owner's inbox was full (or the owner gone).
    pub dropped: u64,
}

impl Handoff {
    /// Frames waiting in one worker's inbox, at most: a few receive batches' worth.
    pub const INBOX: usize = 4096;

    /// The ends of `n` workers, by worker index; none for a lone worker (nothing to hand to).
    pub fn mesh(n: u32) -> Vec<Option<Handoff>> {
        if n < 2 {
            return (0..n).map(|_| None).collect();
        }
        mesh(n as usize, Self::INBOX)
            .into_iter()
            .zip(0..)
            .map(|(MeshEnd { inbox, peers }, me)| Some(Handoff { me, inbox, peers, handed_off: 0, dropped: 0 }))
            .collect()
    }

    /// This worker's index.
    pub fn me(&self) -> u32 {
        self.me
    }

    /// Sends a copy of `frame` to worker `owner`.
    #[inline]
    pub fn send(&mut self, owner: u32, frame: &[u8]) {
        let Some(tx) = self.peers.get(owner as usize) else {
            self.dropped += 1;
            return;
        };
        match tx.try_send(frame.to_vec()) {
            Ok(()) => self.handed_off += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped += 1,
        }
    }

    /// Calls `f` on every frame the other workers sent here; returns how many.
    #[inline]
    pub fn take(&self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Ok(frame) = self.inbox.try_recv() {
            f(&frame);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_sent_to_its_owner_arrives_there_once_and_a_full_inbox_drops_and_counts() {
        let mut mesh: Vec<Handoff> = Handoff::mesh(3).into_iter().map(Option::unwrap).collect();
        assert_eq!(mesh.iter().map(Handoff::me).collect::<Vec<_>>(), [0, 1, 2]);
        mesh[0].send(2, b"for two");
        let mut got = Vec::new();
        assert_eq!(mesh[2].take(|f| got.push(f.to_vec())), 1);
        assert_eq!(got, [b"for two".to_vec()]);
        assert_eq!(mesh[1].take(|_| panic!("nothing for worker 1")), 0);
        for _ in 0..Handoff::INBOX + 5 {
            mesh[1].send(0, b"x");
        }
        assert_eq!((mesh[1].handed_off, mesh[1].dropped), (Handoff::INBOX as u64, 5));
        mesh[1].send(9, b"no such worker");
        assert_eq!(mesh[1].dropped, 6);
        assert!(Handoff::mesh(1)[0].is_none(), "a lone worker hands nothing off");
    }
}
