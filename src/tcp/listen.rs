//! LISTEN without state: every SYN is answered with a SYN cookie, and a connection exists only once an ACK
//! returns a cookie that validates (RFC 9293 §3.10.7.2, RFC 4987 §3.6).

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::conn::{flags, State, Tcb};
use crate::tcp::cookie;
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::FlowKey;
use crate::tcp::flows::Flows;
use crate::tcp::input;
use crate::tcp::lifecycle::{finish, open, Next};
use crate::tcp::output::{our_mss, reply, reset_for};
use crate::tcp::replay::Mark;
use crate::tcp::seq::SeqNum;
use crate::tcp::stats::Drop;
use crate::wire::{FrameRepr, TcpFlags, TcpOptions, TcpRepr, Timestamps};

/// A segment for a listening port that matches no connection and no TIME-WAIT entry.
pub fn on_listen<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    key: K,
    frame: &FrameRepr<'_>,
    sink: &mut S,
) {
    let seg = &frame.tcp;
    if seg.flags.rst() {
        ctx.stats.drop(Drop::RstIgnored);
    } else if seg.flags.ack() {
        if seg.flags.syn() {
            // A SYN-ACK to a listener: any ACK in LISTEN is answered with <SEQ=SEG.ACK><CTL=RST>.
            ctx.stats.drop(Drop::ListenerJunk);
            reset_for(ctx, frame, sink);
        } else {
            match check_fresh_cookie(ctx, flows, &key, seg) {
                Cookie::Valid(mss, mark) => open_passive(ctx, flows, key, frame, (mss, mark), sink),
                Cookie::Invalid => {
                    // Linux answers a failed cookie with RST too; ours is rate-limited against ACK floods.
                    ctx.stats.cookies_rejected += 1;
                    ctx.stats.drop(Drop::BadCookie);
                    reset_for(ctx, frame, sink);
                }
                Cookie::Replayed => {
                    // The connection this ACK opened has gone: answer as for any segment of a dead connection.
                    ctx.stats.drop(Drop::CookieReplayed);
                    reset_for(ctx, frame, sink);
                }
            }
        }
    } else if seg.flags.syn() {
        answer_syn(ctx, &key, frame, sink);
    } else {
        ctx.stats.drop(Drop::ListenerJunk);
    }
}

/// Answers a SYN with a SYN-ACK whose ISN is a cookie. No state is kept; a lost SYN-ACK is recovered by the
/// client's SYN retransmission. Data on the SYN is not taken (the client sends it again).
pub fn answer_syn<K: FlowKey, A: App, S: FrameSink>(ctx: &mut Ctx<A>, key: &K, frame: &FrameRepr<'_>, sink: &mut S) {
    ctx.stats.syns_received += 1;
    let seg = &frame.tcp;
    let cfg = &ctx.cfg;
    // Window scale and SACK-permitted can only be remembered through the timestamp we send back.
    let ts = seg.options.timestamps.filter(|_| cfg.timestamps);
    let wscale = seg.options.window_scale.filter(|_| ts.is_some());
    let sack = seg.options.sack_permitted && cfg.sack && ts.is_some();
    let ts_bits = ts.map(|_| cookie::encode_ts_bits(wscale, sack));
    let client_mss = seg.options.mss.unwrap_or(K::DEFAULT_MSS);
    let slot = ctx.cookie_slot();
    let Some(c) = cookie::mint(&ctx.keys, slot, key, seg.seq, client_mss, ts_bits) else {
        ctx.stats.drop(Drop::NoCookieKey);
        return;
    };
    let options = TcpOptions {
        mss: Some(our_mss::<K>(cfg.mss)),
        window_scale: wscale.map(|_| cfg.window_scale),
        sack_permitted: sack,
        timestamps: ts
            .zip(ts_bits)
            .map(|(t, bits)| Timestamps { tsval: cookie::tsval_with_bits(ctx.ts_clock(), bits), tsecr: t.tsval }),
        sack: Default::default(),
    };
    let tcp = TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        seq: c.isn,
        ack: seg.seq.wrapping_add(1),
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: cfg.syn_window(),
        urgent: 0,
        options,
        payload: &[],
    };
    if reply(ctx, frame, tcp, sink) {
        ctx.stats.cookies_sent += 1;
    }
}

/// Checks the cookie an ACK returns (`SEG.ACK - 1`) against the exact client ISN (`SEG.SEQ - 1`); the MSS it
/// carries on success.
pub fn check_cookie<K: FlowKey, A: App>(ctx: &Ctx<A>, key: &K, seg: &TcpRepr<'_>) -> Option<u16> {
    let ts_bits = if ctx.cfg.timestamps { seg.options.timestamps.map(|t| (t.tsecr & 0x1f) as u8) } else { None };
    cookie::check(&ctx.keys, ctx.cookie_slot(), key, seg.seq.wrapping_sub(1), seg.ack.wrapping_sub(1), ts_bits).ok()
}

/// What a handshake's ACK carries back to a stateless listener.
pub enum Cookie {
    /// A cookie we minted, not used before: open with this MSS, and record this mark once open.
    Valid(u16, Mark),
    /// Not a cookie of ours (or expired).
    Invalid,
    /// A valid cookie whose ACK has opened a connection before.
    Replayed,
}

/// [`check_cookie`], then whether this very ACK has opened a connection before. ([`open_passive`] records it
/// once the connection exists: an ACK refused because the table was full may come again.)
pub fn check_fresh_cookie<K: FlowKey, A: App>(ctx: &Ctx<A>, flows: &Flows<K>, key: &K, seg: &TcpRepr<'_>) -> Cookie {
    match check_cookie(ctx, key, seg) {
        None => Cookie::Invalid,
        Some(mss) => {
            let mark = flows.replay.mark(key, seg.seq.wrapping_sub(1), seg.ack.wrapping_sub(1));
            if flows.replay.contains(mark) {
                Cookie::Replayed
            } else {
                Cookie::Valid(mss, mark)
            }
        }
    }
}

/// Creates the connection a valid cookie ACK completes, tells the app, and processes the rest of the segment
/// (data, FIN) as ESTABLISHED would. ACK, ACK+data and ACK+FIN all complete the handshake. `mark` goes into the
/// replay filter once the connection exists.
pub fn open_passive<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    key: K,
    frame: &FrameRepr<'_>,
    (mss, mark): (u16, Mark),
    sink: &mut S,
) {
    let seg = &frame.tcp;
    if ctx.live >= ctx.cfg.max_conns {
        ctx.stats.conns_refused_full += 1;
        reset_for(ctx, frame, sink);
        return;
    }
    let Some(hop) = ctx.hops.acquire(frame.eth.src, frame.eth.vlan) else {
        ctx.stats.conns_refused_full += 1;
        reset_for(ctx, frame, sink);
        return;
    };
    let mut tcb = Tcb::new(State::Established, hop);
    tcb.snd_una = SeqNum(seg.ack);
    tcb.snd_nxt = SeqNum(seg.ack);
    tcb.rcv_nxt = SeqNum(seg.seq);
    // Our SYN-ACK offered the (unscaled) SYN window.
    tcb.rcv_adv = tcb.rcv_nxt + u32::from(ctx.cfg.syn_window());
    tcb.mss = mss.min(our_mss::<K>(ctx.cfg.mss));
    if let (Some(ts), true) = (seg.options.timestamps, ctx.cfg.timestamps) {
        let (wscale, sack) = cookie::decode_ts_bits((ts.tsecr & 0x1f) as u8);
        tcb.set(flags::TS);
        tcb.ts_recent = ts.tsval;
        // The echoed TSval dates our SYN-ACK: an RTT sample for the first RTO, which would otherwise be the
        // 1 s of RFC 6298 §2.1 because a stateless listener timed nothing. It overestimates by less than the
        // 32 ms the cookie bits may have set the TSval back; a sample older than 1 s is not trusted.
        let rtt_ms = ctx.ts_clock().wrapping_sub(ts.tsecr);
        if rtt_ms < 1000 {
            tcb.rtt_sample(rtt_ms.max(1) * 1000);
        }
        if let Some(ws) = wscale {
            tcb.snd_wscale = ws;
            tcb.rcv_wscale = ctx.cfg.window_scale;
        }
        if sack {
            tcb.set(flags::SACK);
        }
    }
    tcb.snd_wnd = u32::from(seg.window) << tcb.snd_wscale;
    tcb.max_snd_wnd = tcb.snd_wnd;
    tcb.snd_wl1 = SeqNum(seg.seq);
    let Ok(h) = flows.table.insert(key, tcb) else {
        ctx.hops.release(hop);
        ctx.stats.conns_refused_full += 1;
        reset_for(ctx, frame, sink);
        return;
    };
    flows.replay.insert(mark);
    ctx.live += 1;
    ctx.stats.cookies_accepted += 1;
    ctx.stats.conns_opened += 1;
    open(ctx, flows, h);
    let next = if flows.table.get(h).has(flags::ABORT) || (seg.payload.is_empty() && !seg.flags.fin()) {
        Next::Keep
    } else {
        input::segment(ctx, flows, h, seg, sink)
    };
    finish(ctx, flows, h, next, sink);
}
