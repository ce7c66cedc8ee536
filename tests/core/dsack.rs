//! RFC 2883 D-SACK as a receiver: when a peer that negotiated SACK sends data we already have, the ACK that
//! answers it reports the duplicate in its first SACK block, so that the peer can tell a spurious
//! retransmission from a repair (Linux undoes the window reduction of one it finds spurious, and RFC 8985 tail
//! loss probes use it). Against a scripted peer; every frame is built or re-parsed by etherparse.

use crate::support;

use support::frames::{Seg, ACK, PSH, SERVER_MAC};
use support::net::config;
use support::peer::{PeerConn, SynOpts};
use support::recorder::{Recorder, Script};
use support::rig::Rig;

/// A server rig and a peer that has sent `abc` (taken and acknowledged); returns them with the data's first
/// sequence number.
fn after_abc(opts: SynOpts) -> (Rig, PeerConn, u32) {
    after_abc_with(Rig::server(), opts)
}

fn after_abc_with(mut rig: Rig, opts: SynOpts) -> (Rig, PeerConn, u32) {
    let mut p = PeerConn::open_to_server(&mut rig, opts);
    let start = p.seq;
    let out = p.send(&mut rig, b"abc");
    assert_eq!(out.last().map(|s| s.ack), Some(start.wrapping_add(3)), "{out:?}");
    (rig, p, start)
}

/// A data segment from the peer at `seq`, whatever its own next sequence number.
fn data_at(p: &mut PeerConn, rig: &Rig, seq: u32, payload: &[u8]) -> Seg {
    let mut s = p.seg(rig, ACK | PSH);
    s.seq = seq;
    s.payload = payload.to_vec();
    s
}

#[test]
fn rfc2883_4_1_1_a_segment_taken_before_is_reported_below_the_ack() {
    let (mut rig, mut p, start) = after_abc(SynOpts::FULL);
    let dup = data_at(&mut p, &rig, start, b"abc");
    let out = rig.send(&dup);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].ack, start.wrapping_add(3));
    assert_eq!(out[0].sack, [(start, start.wrapping_add(3))], "the D-SACK block lies below the ACK");
    // The next ACK, for new data, carries no D-SACK: it reported that duplicate once.
    let out = p.send(&mut rig, b"def");
    assert!(out.iter().all(|s| s.sack.is_empty()), "{out:?}");
}

#[test]
fn rfc2883_4_1_1_a_partly_duplicate_segment_reports_the_part_taken_before() {
    let (mut rig, mut p, start) = after_abc(SynOpts::FULL);
    // "bcdef": "bc" was taken, "def" is new.
    let s = data_at(&mut p, &rig, start.wrapping_add(1), b"bcdef");
    let out = rig.send(&s);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].ack, start.wrapping_add(6));
    assert_eq!(out[0].sack, [(start.wrapping_add(1), start.wrapping_add(3))]);
}

#[test]
fn rfc2883_4_1_3_a_duplicate_of_held_data_comes_first_then_the_block_that_holds_it() {
    let (mut rig, mut p, start) = after_abc(SynOpts::FULL);
    let at = |n: u32| start.wrapping_add(n);
    // "def" at 3 is lost; "ghi" at 6 and "mno" at 12 are held (two blocks, the newer first).
    let held = [data_at(&mut p, &rig, at(6), b"ghi"), data_at(&mut p, &rig, at(12), b"mno")];
    for s in &held {
        rig.send(s);
    }
    // "ghi" again: its D-SACK, then the block that holds it (not the newer one), then the other.
    let out = rig.send(&held[0]);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].ack, at(3));
    assert_eq!(out[0].sack, [(at(6), at(9)), (at(6), at(9)), (at(12), at(15))]);
}

#[test]
fn rfc2883_2_no_d_sack_without_sack_permitted() {
    let (mut rig, mut p, start) = after_abc(SynOpts { sack: false, ..SynOpts::FULL });
    let dup = data_at(&mut p, &rig, start, b"abc");
    let out = rig.send(&dup);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].sack.is_empty(), "{out:?}");
}

#[test]
fn rfc2883_4_1_1_the_duplicate_rides_on_the_data_that_carries_the_ack() {
    // An echo server answers the new part of a partly duplicate segment with data, and that data segment is the
    // ACK: it reports the duplicate, as a pure ACK would have (Linux puts D-SACK on data segments too).
    let echo = Recorder::new(Script { echo: true, ..Script::default() });
    let (mut rig, mut p, start) = after_abc_with(Rig::server_with(config(SERVER_MAC), echo), SynOpts::FULL);
    let s = data_at(&mut p, &rig, start.wrapping_add(1), b"bcdef");
    let out = rig.send(&s);
    assert_eq!(out.len(), 1, "the echo carries the ACK: {out:?}");
    assert_eq!((out[0].payload.as_slice(), out[0].ack), (&b"def"[..], start.wrapping_add(6)));
    assert_eq!(out[0].sack, [(start.wrapping_add(1), start.wrapping_add(3))]);
    // Reported once: the next data segment carries none.
    p.seq = start.wrapping_add(6);
    let out = p.send(&mut rig, b"ghi");
    assert_eq!(out.first().map(|s| s.payload.as_slice()), Some(&b"ghi"[..]), "{out:?}");
    assert!(out.iter().all(|s| s.sack.is_empty()), "{out:?}");
}
