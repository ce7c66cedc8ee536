//! An ICMP "too big" message about a segment of a live connection (RFC 1191 §6.3, RFC 8201 §5.2).
//!
//! It is believed only as RFC 5927 §4.1 and Linux check it: the segment it quotes must start at a sequence number
//! we sent and have not seen acknowledged (SND.UNA =< SEG.SEQ < SND.NXT), so a blind attacker must guess inside
//! the flight, as for an RST. The MSS only ever falls, and never below what an MTU of 552 bytes (IPv4, Linux's
//! `min_pmtu`; every segment we send has DF set, so a path narrower than that is not served) or 1280 (IPv6's
//! minimum, RFC 8201 §4) leaves. What was in flight goes again at once in segments of the new size, as much as
//! the congestion window allows and without a congestion response: the path did not congest, it dropped what
//! could not pass (Linux's `tcp_simple_retransmit` does the same).

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::FlowKey;
use crate::tcp::flows::Flows;
use crate::tcp::lifecycle::{finish, Next};
use crate::tcp::output::retransmit_at;
use crate::tcp::seq::SeqNum;
use crate::tcp::stats::Drop;

/// The smallest path MTU an IPv4 message may lower us to.
pub const MIN_MTU_V4: u32 = 552;
/// IPv6's minimum link MTU.
pub const MIN_MTU_V6: u32 = 1280;
const TCP_HEADER_LEN: u32 = 20;

/// What a "too big" message found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Found {
    /// No live connection of this endpoint has the quoted tuple (nothing counted: the caller decides).
    NoConnection,
    /// The connection exists; the message was applied, or refused and counted.
    Connection,
}

/// Applies a "too big" message reporting `mtu` for the segment starting at `seq` of the connection `key`.
pub fn too_big<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    key: &K,
    seq: u32,
    mtu: u32,
    sink: &mut S,
) -> Found {
    let Some(h) = flows.table.find(key) else {
        return Found::NoConnection;
    };
    let (key, tcb) = flows.table.entry_mut(h);
    let seq = SeqNum(seq);
    if !(seq >= tcb.snd_una && seq < tcb.snd_nxt) {
        ctx.stats.drop(Drop::IcmpUnmatched);
        return Found::Connection;
    }
    // RFC 1191 §5 would guess a plateau for a router that reports no MTU (0, from before RFC 1191); such routers
    // are gone, and a guess is as easy to forge as a value, so the message is taken only with a usable MTU.
    let floor = if K::V6 { MIN_MTU_V6 } else { MIN_MTU_V4 };
    if mtu == 0 {
        ctx.stats.drop(Drop::IcmpUnmatched);
        return Found::Connection;
    }
    let mss = mtu.max(floor) - u32::from(K::IP_HEADER_LEN) - TCP_HEADER_LEN;
    if mss >= u32::from(tcb.mss) {
        return Found::Connection; // Not smaller than what we send: nothing to do (ICMP never raises the MSS).
    }
    tcb.mss = mss as u16;
    ctx.stats.path_mtu_lowered += 1;
    // Resend the flight in segments of the new size, as far as the congestion window reaches.
    let budget = tcb.cwnd.max(tcb.send_mss());
    let mut offset = 0;
    while offset < budget {
        match retransmit_at(ctx, key, tcb, offset, u32::MAX, sink) {
            Some(n) if n > 0 => offset += n,
            _ => break,
        }
    }
    finish(ctx, flows, h, Next::Keep, sink);
    Found::Connection
}
