//! Segments for a tuple in TIME-WAIT (RFC 9293 §3.10.7.4, RFC 1337, RFC 6191).
//!
//! The only thing that can legitimately arrive is a retransmission of the peer's FIN: it is acknowledged again
//! and the 2MSL restarts. An RST is ignored (RFC 1337: TIME-WAIT assassination). A new SYN with a higher
//! sequence number (or a newer timestamp) may reopen the tuple: it gets a cookie SYN-ACK like any SYN, and the
//! TIME-WAIT entry is dropped only when the cookie ACK proves the SYN genuine.

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::FlowKey;
use crate::tcp::flows::Flows;
use crate::tcp::listen::{answer_syn, check_fresh_cookie, open_passive, Cookie};
use crate::tcp::output::{reply, reply_header};
use crate::tcp::seq::SeqNum;
use crate::tcp::stats::Drop;
use crate::tcp::time_wait::TimeWait;
use crate::wire::{FrameRepr, TcpFlags, Timestamps};

pub fn on_time_wait<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    key: K,
    tw: TimeWait,
    frame: &FrameRepr<'_>,
    sink: &mut S,
) {
    let seg = &frame.tcp;
    let ts_on = tw.flags & TimeWait::TIMESTAMPS != 0;
    if seg.flags.rst() {
        ctx.stats.drop(Drop::RstInTimeWait);
        return;
    }
    let listening = ctx.listening.contains(key.local_port());
    // RFC 6191: a new incarnation's SYN (whose sequence number is `isn`) is acceptable when its timestamp is newer
    // than TS.Recent, or equal to it with a higher sequence number (§2: a reconnection within one tick of the
    // peer's clock), or, without timestamps on both incarnations, when its sequence number is higher.
    let higher = |isn: u32| SeqNum(isn) > SeqNum(tw.rcv_nxt);
    let newer = |isn: u32| match (ts_on, seg.options.timestamps) {
        (true, Some(ts)) => {
            let ahead = ts.tsval.wrapping_sub(tw.ts_recent) as i32;
            ahead > 0 || (ahead == 0 && higher(isn))
        }
        _ => higher(isn),
    };
    if seg.flags.syn() {
        if !seg.flags.ack() && newer(seg.seq) && listening {
            answer_syn(ctx, &key, frame, sink);
        } else {
            // RFC 5961 §4.2 (RFC 9293 §3.10.7.4, fourth check): any other SYN, a SYN-ACK included, is answered
            // with a challenge ACK.
            ack(ctx, frame, &tw, sink, true);
        }
        return;
    }
    if seg.flags.ack() && !seg.flags.syn() && listening && seg.seq != tw.rcv_nxt {
        // Possibly the ACK completing a reopening handshake: its SYN (at SEG.SEQ − 1) must have passed the same
        // test, by sequence number or by timestamp (the ACK's TSval is at least the SYN's).
        if newer(seg.seq.wrapping_sub(1)) {
            if let Cookie::Valid(mss, mark) = check_fresh_cookie(ctx, flows, &key, seg) {
                flows.tw.remove(&key);
                ctx.stats.time_wait_reopened += 1;
                open_passive(ctx, flows, key, frame, (mss, mark), sink);
                return;
            }
        }
    }
    // RFC 7323 §5.3 PAWS applies in TIME-WAIT too.
    if let (true, Some(ts)) = (ts_on, seg.options.timestamps) {
        if (ts.tsval.wrapping_sub(tw.ts_recent) as i32) < 0 {
            ctx.stats.drop(Drop::Paws);
            ack(ctx, frame, &tw, sink, false);
            return;
        }
    }
    let end = SeqNum(seg.seq) + seg.payload.len() as u32;
    if seg.flags.fin() && end + 1 == SeqNum(tw.rcv_nxt) {
        // The peer's FIN again: our ACK was lost. Acknowledge it and restart the 2MSL.
        let mut renewed = tw;
        if let Some(ts) = seg.options.timestamps {
            renewed.ts_recent = ts.tsval;
        }
        // Not rationed by the challenge-ACK budget: without this ACK the peer can never finish (see input.rs).
        send_ack(ctx, frame, &renewed, sink);
        flows.tw.restart(ctx.now, &key, renewed);
        return;
    }
    if !seg.payload.is_empty() || seg.flags.fin() || SeqNum(seg.seq) != SeqNum(tw.rcv_nxt) {
        ctx.stats.drop(Drop::OutOfWindow);
        ack(ctx, frame, &tw, sink, false);
        return;
    }
    // A duplicate of the last ACK: nothing to say.
    ctx.stats.drop(Drop::OutOfWindow);
}

/// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` from a TIME-WAIT entry, limited for the whole endpoint.
fn ack<A: App, S: FrameSink>(ctx: &mut Ctx<A>, frame: &FrameRepr<'_>, tw: &TimeWait, sink: &mut S, challenge: bool) {
    if !ctx.time_wait_limit.allow(ctx.now) {
        ctx.stats.challenge_acks_rate_limited += 1;
        return;
    }
    if send_ack(ctx, frame, tw, sink) && challenge {
        ctx.stats.challenge_acks += 1;
    }
}

/// The ACK of a TIME-WAIT entry, unlimited; whether it went out.
fn send_ack<A: App, S: FrameSink>(ctx: &mut Ctx<A>, frame: &FrameRepr<'_>, tw: &TimeWait, sink: &mut S) -> bool {
    let mut tcp = reply_header(frame, tw.snd_nxt, tw.rcv_nxt, TcpFlags::ACK);
    tcp.window = ctx.cfg.window_field(tw.rcv_wscale());
    if tw.flags & TimeWait::TIMESTAMPS != 0 {
        tcp.options.timestamps = Some(Timestamps { tsval: ctx.ts_clock(), tsecr: tw.ts_recent });
    }
    reply(ctx, frame, tcp, sink)
}
