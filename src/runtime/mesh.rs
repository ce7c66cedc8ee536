//! Bounded channels between the workers of one process: each worker gets an inbox and a sender to every worker's
//! inbox, by worker index (its own included), so that it can address any other without a lock. The serve workers
//! pass ICMP messages for each other's connections on one (`worker::IcmpPeers`), the load generator's workers
//! segments that came in on the wrong queue on another (`load::handoff`).

use crossbeam::channel::{bounded, Receiver, Sender};

/// One worker's end of a mesh.
#[derive(Debug)]
pub struct MeshEnd<T> {
    pub inbox: Receiver<T>,
    /// Every worker's inbox, by worker index.
    pub peers: Vec<Sender<T>>,
}

/// The ends of `n` workers, by worker index, each inbox holding at most `capacity` messages.
pub fn mesh<T>(n: usize, capacity: usize) -> Vec<MeshEnd<T>> {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| bounded(capacity)).unzip();
    rxs.into_iter().map(|inbox| MeshEnd { inbox, peers: txs.clone() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_reaches_every_inbox_by_index() {
        let ends = mesh::<u32>(3, 4);
        for (from, end) in ends.iter().enumerate() {
            for (to, tx) in end.peers.iter().enumerate() {
                tx.send((from * 10 + to) as u32).unwrap();
            }
        }
        for (to, end) in ends.iter().enumerate() {
            let got: Vec<u32> = end.inbox.try_iter().collect();
            assert_eq!(got, (0..3).map(|from| (from * 10 + to) as u32).collect::<Vec<_>>());
        }
        assert!(mesh::<u32>(0, 4).is_empty());
    }
}
