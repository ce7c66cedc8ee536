//! Segment arrival on a live connection: RFC 9293 §3.10.7.3 (SYN-SENT) and §3.10.7.4 (every other state),
//! hardened by RFC 5961 (blind RST, SYN and data injection) and RFC 7323 (PAWS).
//!
//! In-order data goes straight to the app, which may take only part of it (the rest is not acknowledged). Data
//! beyond RCV.NXT is held in the endpoint's reassembly pool (see [`crate::tcp::reassembly`]) and handed over
//! once the hole before it fills. Nothing here allocates, except the pool's ring the first few times a
//! connection holds data.

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::api::{CloseReason, Conn, ConnId};
use crate::tcp::conn::{flags, State, TailProbe, Tcb};
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::FlowKey;
use crate::tcp::flows::Flows;
use crate::tcp::lifecycle::{app_conn, Next};
use crate::tcp::output::{emit_ctl, emit_syn, our_mss, retransmit_at, retransmit_first, send_one_new};
use crate::tcp::reassembly::{self, Hold};
use crate::tcp::scoreboard;
use crate::tcp::seq::SeqNum;
use crate::tcp::stats::Drop;
use crate::wire::{TcpFlags, TcpRepr};

/// Processes `seg` on the connection at `h` and says what becomes of the connection.
pub fn segment<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    h: u32,
    seg: &TcpRepr<'_>,
    sink: &mut S,
) -> Next {
    let id = flows.id(h);
    let Flows { table, wheel, .. } = flows;
    let (key, tcb) = table.entry_mut(h);
    ctx.dsack = None;
    if tcb.state == State::SynSent {
        return syn_sent(ctx, wheel, h, key, tcb, seg, sink, id);
    }

    // RFC 7323 §3.2: once timestamps are on, a non-RST segment without them SHOULD be dropped; §5.3 PAWS: a
    // segment with an older TSval is an old duplicate — drop it and acknowledge. A SYN without them goes on to
    // RFC 5961 §4's challenge ACK: a peer that restarted without timestamps learns from it that this connection
    // is still open here and resets it (dropped silently, the half-open connection would linger; as Linux).
    if tcb.has(flags::TS) && !seg.flags.rst() {
        match seg.options.timestamps {
            None if seg.flags.syn() => {}
            None => {
                ctx.stats.drop(Drop::Paws);
                return Next::Keep;
            }
            Some(ts) if (ts.tsval.wrapping_sub(tcb.ts_recent) as i32) < 0 => {
                ctx.stats.drop(Drop::Paws);
                limited_ack(ctx, key, tcb, sink, false);
                return Next::Keep;
            }
            Some(_) => {}
        }
    }

    // Simultaneous open: the peer's SYN-ACK repeats the SYN we already took. Its sequence number lies just
    // before the window, so take it as the ACK it carries (Linux does the same).
    let simultaneous_syn_ack = tcb.state == State::SynReceived
        && seg.flags.syn()
        && seg.flags.ack()
        && !seg.flags.rst()
        && seg.payload.is_empty()
        && SeqNum(seg.seq) + 1 == tcb.rcv_nxt
        && SeqNum(seg.ack) == tcb.snd_nxt;
    if simultaneous_syn_ack {
        // RFC 7323 §4.3: it passed PAWS and SEG.SEQ < RCV.NXT, so its TSval is the one our ACK must echo.
        if let (true, Some(ts)) = (tcb.has(flags::TS), seg.options.timestamps) {
            tcb.ts_recent = ts.tsval;
        }
        return synchronize(ctx, wheel, h, id, key, tcb, seg);
    }

    // First: is the segment in the receive window?
    let seq = SeqNum(seg.seq);
    let seg_len = seg.payload.len() as u32 + u32::from(seg.flags.syn()) + u32::from(seg.flags.fin());
    let wnd = tcb.rcv_window();
    let acceptable = match (seg_len, wnd) {
        (0, 0) => seq == tcb.rcv_nxt,
        (0, _) => tcb.rcv_nxt.window_contains(wnd, seq),
        (_, 0) => false,
        (_, _) => tcb.rcv_nxt.window_contains(wnd, seq) || tcb.rcv_nxt.window_contains(wnd, seq + (seg_len - 1)),
    };
    // RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments will be acceptable, but special allowance should be
    // made to accept valid ACKs". A peer probing our closed window, or whose probe byte we did not take, sends at
    // or just past RCV.NXT: its ACK and window must still be heard, or a window it reopened is never seen here.
    // The ACK still has to pass RFC 5961 §5.2 below; the segment's text and FIN are not taken.
    // The same allowance for a bare ACK at the right edge of an open window: a peer that sent all the window
    // offered sends its ACKs from there, and while we hold any of those bytes out of order (or the app refused
    // them) RCV.NXT lags behind, so each would fail the test by one and the data they acknowledge would wait for
    // the hole to be repaired (Linux accepts a segment that starts at the edge).
    let edge_ack = seg_len == 0 && seq == tcb.rcv_nxt + wnd;
    let zero_window_ack = !acceptable
        && (wnd == 0 || edge_ack)
        && seg.flags.ack()
        && !seg.flags.rst()
        && !seg.flags.syn()
        && seq >= tcb.rcv_nxt
        && seq - tcb.rcv_nxt <= 0xffff.max(wnd);
    if !acceptable && !zero_window_ack {
        if seg.flags.rst() {
            ctx.stats.drop(Drop::RstIgnored);
        } else if seg_len > 0 && !seg.flags.syn() {
            // Data or a FIN we already hold (our ACK was lost) or that lies beyond the window: the peer needs our
            // ACK to make progress (RFC 9293 §3.10.7.4), so it is not rationed by the RFC 5961 §7 challenge-ACK
            // budget, which a busy endpoint's ordinary losses would exhaust. Such segments are never sent in reply
            // to an ACK, so answering each cannot start an ACK war (Linux exempts them likewise).
            ctx.stats.drop(Drop::OutOfWindow);
            tcb.set(flags::ACK_NOW);
            // RFC 2883: data we had taken already is reported back as a D-SACK block, which tells the peer that
            // its retransmission was spurious (Linux undoes the window cut of one it finds so).
            let end = seq + seg.payload.len() as u32;
            if !seg.payload.is_empty() && end <= tcb.rcv_nxt {
                ctx.dsack = Some((seq, end));
            }
        } else if seg.flags.syn() {
            // RFC 5961 §4.2: a SYN gets a challenge ACK whatever its sequence number (the fourth check below
            // answers one inside the window): counted as one.
            limited_ack(ctx, key, tcb, sink, true);
        } else {
            ctx.stats.drop(Drop::OutOfWindow);
            limited_ack(ctx, key, tcb, sink, false);
        }
        return Next::Keep;
    }

    // Second: RST. RFC 5961 §3.2: only an exact match resets; anywhere else in the window earns a challenge ACK.
    if seg.flags.rst() {
        if seq == tcb.rcv_nxt {
            return Next::Close(if tcb.state == State::SynReceived {
                CloseReason::Refused
            } else {
                CloseReason::Reset
            });
        }
        limited_ack(ctx, key, tcb, sink, true);
        return Next::Keep;
    }

    // Fourth: SYN. RFC 5961 §4.2: a SYN on a synchronized connection gets a challenge ACK, whatever its sequence.
    if seg.flags.syn() {
        limited_ack(ctx, key, tcb, sink, true);
        return Next::Keep;
    }

    // Fifth: ACK.
    if !seg.flags.ack() {
        ctx.stats.drop(Drop::BadAck);
        return Next::Keep;
    }
    let ack = SeqNum(seg.ack);
    if tcb.state == State::SynReceived {
        // Simultaneous open: our SYN must be acknowledged, or the segment is answered with a reset.
        if !(ack > tcb.snd_una && ack <= tcb.snd_nxt) {
            limited_rst(ctx, key, tcb, ack, sink);
            return Next::Keep;
        }
        synchronize(ctx, wheel, h, id, key, tcb, seg);
    }
    // RFC 5961 §5.2: the ACK must lie in [SND.UNA - MAX.SND.WND, SND.NXT].
    if ack > tcb.snd_nxt || ack < tcb.snd_una - tcb.max_snd_wnd {
        ctx.stats.drop(Drop::BadAck);
        limited_ack(ctx, key, tcb, sink, true);
        return Next::Keep;
    }
    // RFC 7323 §4.3: remember the peer's newest timestamp from segments that start at or before RCV.NXT.
    if let Some(ts) = seg.options.timestamps {
        if tcb.has(flags::TS) && seq <= tcb.rcv_nxt {
            tcb.ts_recent = ts.tsval;
        }
    }
    let window = u32::from(seg.window) << tcb.snd_wscale;
    let advanced = ack > tcb.snd_una;
    if tcb.tlp != TailProbe::Idle {
        tail_probe_ack(ctx, tcb, seg, ack, advanced);
    }
    if ack > tcb.snd_una {
        let acked = ack - tcb.snd_una;
        let queued = ctx.bufs.len(tcb.tx) as u32;
        ctx.bufs.consume(&mut tcb.tx, acked.min(queued) as usize);
        tcb.snd_una = ack;
        tcb.on_new_ack(acked);
        if tcb.has(flags::RTT_TIMING) && ack >= tcb.rtt_seq {
            tcb.clear(flags::RTT_TIMING);
            tcb.rtt_sample(ctx.now_us().wrapping_sub(tcb.rtt_start_us));
        }
        if tcb.in_flight() == 0 {
            tcb.rtt_start_us = ctx.now_us(); // The idle clock of RFC 5681 §4.1 starts (see `Tcb::rtt_seq`).
        }
        tcb.retries = 0;
        tcb.dup_acks = 0;
        // RFC 6298 §5.3: progress restarts the retransmission timer (re-armed when the event finishes).
        wheel.cancel(h);
        if tcb.has(flags::RECOVERY) {
            if ack >= tcb.recover {
                // RFC 6582 §3.2 step 3 (a full acknowledgment): everything sent before the loss was noticed has
                // arrived. What was sent since is new data, not a hole: repairing on until the flight empties
                // would resend it segment by segment, one per ACK.
                end_recovery(ctx, tcb, ack);
            } else if tcb.tx_board != scoreboard::NONE {
                sack_recovery(ctx, key, tcb, seg, true, sink);
            } else {
                // RFC 6582 §3.2 step 4, a partial ACK: the segment at the new SND.UNA was lost too.
                retransmit_first(ctx, key, tcb, sink);
            }
        } else if !tcb.resent_beyond_una() {
            // Outside a recovery `recover` only marks what the last one resent beyond its end (`end_recovery`);
            // kept at SND.UNA otherwise, an old value can never read as ahead once sequence numbers wrap.
            tcb.recover = ack;
        }
    } else if ack == tcb.snd_una
        && seg.payload.is_empty()
        && !seg.flags.fin()
        && window == tcb.snd_wnd
        && window != 0
        && tcb.in_flight() > 0
    {
        if tcb.has(flags::RECOVERY) {
            // Duplicates during a recovery never start another (RFC 6582 §3.2 step 1: one reduction per window
            // of data); with a scoreboard each one brings SACK information and, by PRR, room to send.
            if tcb.tx_board != scoreboard::NONE {
                sack_recovery(ctx, key, tcb, seg, false, sink);
            }
        } else {
            tcb.dup_acks = tcb.dup_acks.saturating_add(1);
            if tcb.dup_acks == 3 || early_retransmit(ctx, tcb) || probe_sacked_past_a_hole(tcb, seg, ack) {
                enter_fast_recovery(ctx, key, tcb, seg, sink);
            }
        }
    }
    // Window update (RFC 9293 §3.10.7.4), from segments newer than the last update and only when SND.UNA =<
    // SEG.ACK (an older ACK, reordered behind a newer one, would put back a window the peer has since shrunk);
    // as Linux does, an ACK that advances SND.UNA always brings the window along. SND.WL1 is kept at most at
    // RCV.NXT: a segment ahead of it (held out of order, or dropped) would otherwise leave the in-order segments
    // that follow, which start behind it, unable to update the window again.
    // RFC 9293's third condition, SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK, needs no SND.WL2 here: every ACK that
    // advances SND.UNA updates the window, so SND.WL2 would always equal SND.UNA, which SEG.ACK has just been
    // checked against. The TCB saves its four bytes.
    let newer = ack >= tcb.snd_una && tcb.snd_wl1 <= seq;
    if advanced || newer {
        let reopened = window > tcb.snd_wnd && tcb.snd_wnd == 0;
        if reopened {
            wheel.cancel(h); // The zero window opened: stop the persist timer, output sends at once.
            tcb.dup_acks = 0; // It counted probes; duplicate ACKs count afresh.
            tcb.backoff = 0; // The probes' backoff measured the peer's reader, not the path (as Linux does).
        }
        tcb.snd_wnd = window;
        if reopened && tcb.in_flight() > 0 {
            // The probe byte the peer did not take is still unacknowledged: send it again first, or everything
            // sent after it lands beyond the peer's RCV.NXT.
            retransmit_first(ctx, key, tcb, sink);
        }
        tcb.max_snd_wnd = tcb.max_snd_wnd.max(window);
        tcb.snd_wl1 = seq.min(tcb.rcv_nxt);
    }
    if tcb.snd_wnd == 0 {
        // While the window is closed, `dup_acks` counts unanswered window probes (see timers): any acceptable ACK
        // answers them, so a peer that keeps answering is never given up on (RFC 9293 §3.8.6.1, MUST-66).
        // (Duplicate ACKs into a closed window are not counted toward fast retransmit above.)
        tcb.dup_acks = 0;
    }
    let fin_acked = tcb.state.fin_sent() && tcb.snd_una == tcb.snd_nxt;
    match tcb.state {
        State::FinWait1 if fin_acked => tcb.state = State::FinWait2,
        State::Closing if fin_acked => return Next::TimeWait,
        State::LastAck if fin_acked => return Next::Close(CloseReason::Normal),
        _ => {}
    }
    if zero_window_ack {
        if seg_len > 0 {
            // A probe we cannot take: our ACK repeats the closed window.
            ctx.stats.drop(Drop::OutOfWindow);
            tcb.set(flags::ACK_NOW);
        }
        return Next::Keep;
    }

    // Seventh: segment text. In-order bytes go to the app, then any held bytes they made contiguous; bytes (and a
    // FIN) beyond RCV.NXT are held. Either way an ACK goes at once: RFC 5681 §4.2 wants a duplicate ACK for a
    // segment out of order and an immediate one for a segment that fills a hole, and our ACKs carry SACK blocks
    // for whatever is still held.
    let mut fin_at = seg.flags.fin().then(|| seq + seg.payload.len() as u32);
    if tcb.state.accepts_data() && seq > tcb.rcv_nxt && (seg_len > 0) {
        hold(ctx, tcb, seq, seg);
        fin_at = None;
        tcb.set(flags::ACK_NOW);
    } else if !seg.payload.is_empty() && tcb.state.accepts_data() {
        let skip = (tcb.rcv_nxt - seq) as usize;
        if skip > 0 {
            // Its start was taken before: a D-SACK of that part (RFC 2883 §4.1.1's partly duplicate segment).
            ctx.dsack = Some((seq, seq + skip.min(seg.payload.len()) as u32));
        }
        let fresh = seg.payload.get(skip..).unwrap_or(&[]);
        let fresh = &fresh[..fresh.len().min(wnd as usize)];
        if !fresh.is_empty() {
            let mut c = app_conn!(ctx, id, key, tcb);
            let taken = ctx.app.on_data(&mut c, fresh).min(fresh.len());
            tcb.rcv_nxt += taken as u32;
            if tcb.rx_held != reassembly::NONE {
                ctx.held.settle(&mut tcb.rx_held, tcb.rcv_nxt);
                if taken == fresh.len() {
                    deliver_held(ctx, id, key, tcb);
                }
            }
            if tcb.state == State::FinWait2 {
                wheel.cancel(h); // A peer still sending is alive: restart the FIN-WAIT-2 timeout.
            }
        }
        tcb.set(flags::ACK_NOW);
    } else if tcb.rx_held != reassembly::NONE && tcb.state.accepts_data() {
        // Held bytes at RCV.NXT the app refused earlier (its send queue was full) are offered again on any
        // segment, an ACK that made room above all: the peer was told by SACK that we hold them and would not send
        // them again before its RTO, and no in-order segment need come before then.
        let before = tcb.rcv_nxt;
        deliver_held(ctx, id, key, tcb);
        if tcb.rcv_nxt != before {
            tcb.set(flags::ACK_NOW);
        }
    }

    // Eighth: FIN, once everything before it has been taken: the one this segment carries, or one held.
    let fin_at = fin_at.or_else(|| ctx.held.fin(tcb.rx_held));
    if fin_at == Some(tcb.rcv_nxt) && !tcb.state.peer_fin_received() {
        tcb.rcv_nxt += 1;
        ctx.held.settle(&mut tcb.rx_held, tcb.rcv_nxt);
        tcb.set(flags::ACK_NOW);
        let before = tcb.state;
        tcb.state = match before {
            State::Established => State::CloseWait,
            State::FinWait1 => State::Closing,
            State::FinWait2 => State::TimeWait,
            s => s,
        };
        let mut c = app_conn!(ctx, id, key, tcb);
        ctx.app.on_peer_close(&mut c);
        if tcb.state == State::TimeWait {
            return Next::TimeWait;
        }
    } else if seg.flags.fin() && tcb.state.accepts_data() {
        // A FIN that cannot be taken yet (the app left bytes before it) is answered at once, like data.
        tcb.set(flags::ACK_NOW);
    }
    Next::Keep
}

/// RFC 9293 §3.10.7.3: a segment for a connection in SYN-SENT (active open, or the first half of a simultaneous
/// open).
#[allow(clippy::too_many_arguments)]
fn syn_sent<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    wheel: &mut crate::tcp::timer::TimerWheel,
    h: u32,
    key: &K,
    tcb: &mut Tcb,
    seg: &TcpRepr<'_>,
    sink: &mut S,
    id: ConnId,
) -> Next {
    let ack = SeqNum(seg.ack);
    let ack_ok = seg.flags.ack() && ack > tcb.snd_una && ack <= tcb.snd_nxt;
    if seg.flags.ack() && !ack_ok {
        ctx.stats.drop(Drop::BadAck);
        if !seg.flags.rst() {
            limited_rst(ctx, key, tcb, ack, sink);
        }
        return Next::Keep;
    }
    if seg.flags.rst() {
        // RFC 5961 §3.2 for SYN-SENT: acceptable only when it acknowledges our SYN.
        if ack_ok {
            return Next::Close(CloseReason::Refused);
        }
        ctx.stats.drop(Drop::RstIgnored);
        return Next::Keep;
    }
    if !seg.flags.syn() {
        ctx.stats.drop(Drop::BadAck);
        return Next::Keep;
    }
    // A SYN from the peer: take its options (RFC 7323 §1.3: scaling only when both SYNs carried it).
    tcb.rcv_nxt = SeqNum(seg.seq) + 1;
    // Our SYN offered the (unscaled) SYN window.
    tcb.rcv_adv = tcb.rcv_nxt + u32::from(ctx.cfg.syn_window());
    let o = &seg.options;
    tcb.mss = o.mss.unwrap_or(K::DEFAULT_MSS).min(our_mss::<K>(ctx.cfg.mss));
    if let Some(ws) = o.window_scale {
        tcb.snd_wscale = ws;
        tcb.rcv_wscale = ctx.cfg.window_scale;
        tcb.set(flags::PEER_WSCALE);
    }
    if let (Some(ts), true) = (o.timestamps, ctx.cfg.timestamps) {
        tcb.set(flags::TS);
        tcb.ts_recent = ts.tsval;
    }
    if o.sack_permitted && ctx.cfg.sack {
        tcb.set(flags::SACK);
    }
    // The window of a SYN is never scaled (RFC 7323 §2.2).
    tcb.snd_wnd = u32::from(seg.window);
    tcb.max_snd_wnd = tcb.snd_wnd;
    tcb.snd_wl1 = SeqNum(seg.seq);
    if ack_ok {
        tcb.snd_una = ack;
        tcb.handshake_rtt(ctx.now_us());
        tcb.start_congestion_control(tcb.retries > 0);
        tcb.retries = 0;
        // RFC 6298 §5.3: the ACK of our SYN restarts the timer. Left armed, the SYN's deadline (earlier than the
        // new RTO allows, or the backed-off one after a lost SYN) would time out data sent from `on_open`.
        wheel.cancel(h);
        tcb.state = State::Established;
        // The handshake's ACK goes now, alone, or with whatever `on_open` queues (see the config's doc).
        let alone = ctx.cfg.handshake_ack_alone && emit_ctl(ctx, key, tcb, tcb.snd_nxt, TcpFlags::ACK, sink);
        if !alone {
            tcb.set(flags::ACK_NOW);
        }
        ctx.stats.conns_opened += 1;
        ctx.stats.conns_active_opened += 1;
        let mut c = app_conn!(ctx, id, key, tcb);
        ctx.app.on_open(&mut c);
        // Data on a SYN-ACK is not taken (the peer retransmits it); the ACK we send says so.
        return Next::Keep;
    }
    // Simultaneous open: answer with SYN-ACK and wait in SYN-RECEIVED. It sends our ISS again, so the ACK that
    // completes the handshake cannot say which copy it answers: no RTT sample from it (Karn).
    tcb.state = State::SynReceived;
    tcb.clear(flags::RTT_TIMING);
    emit_syn(ctx, key, tcb, sink);
    Next::Keep
}

/// `<SEQ=SEG.ACK><CTL=RST>` for an unacceptable ACK in SYN-SENT or SYN-RECEIVED (RFC 9293 §3.10.7.3/4). Anyone
/// who knows the tuple can provoke it, so it draws on the endpoint's RST budget like the RSTs of closed ports.
fn limited_rst<K: FlowKey, A: App, S: FrameSink>(ctx: &mut Ctx<A>, key: &K, tcb: &Tcb, seq: SeqNum, sink: &mut S) {
    if !ctx.rst_limit.allow(ctx.now) {
        ctx.stats.rsts_rate_limited += 1;
        return;
    }
    if emit_ctl(ctx, key, tcb, seq, TcpFlags::RST, sink) {
        ctx.stats.rsts_sent += 1;
    }
}

/// An ACK that an attacker could provoke — RFC 5961 challenge ACKs (`challenge`) and answers to unacceptable
/// segments — limited per connection and for the whole endpoint (RFC 5961 §7).
pub fn limited_ack<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    sink: &mut S,
    challenge: bool,
) {
    let epoch = (ctx.now.as_millis() / 1000) as u16;
    if tcb.challenge_epoch != epoch {
        tcb.challenge_epoch = epoch;
        tcb.challenge_count = 0;
    }
    let now = ctx.now;
    if tcb.challenge_count >= ctx.cfg.challenge_acks_per_conn
        || ctx.challenge_limit.as_mut().is_some_and(|b| !b.allow(now))
    {
        ctx.stats.challenge_acks_rate_limited += 1;
        return;
    }
    tcb.challenge_count += 1;
    let seq = tcb.snd_nxt;
    if emit_ctl(ctx, key, tcb, seq, TcpFlags::ACK, sink) && challenge {
        ctx.stats.challenge_acks += 1;
    }
}

/// SYN-RECEIVED → ESTABLISHED: our SYN is acknowledged by `seg`. Accounts for the SYN here so that it is never
/// taken for a byte of data, takes the window, and tells the app.
fn synchronize<K: FlowKey, A: App>(
    ctx: &mut Ctx<A>,
    wheel: &mut crate::tcp::timer::TimerWheel,
    h: u32,
    id: ConnId,
    key: &K,
    tcb: &mut Tcb,
    seg: &TcpRepr<'_>,
) -> Next {
    let ack = SeqNum(seg.ack);
    tcb.snd_una = ack;
    tcb.handshake_rtt(ctx.now_us());
    tcb.start_congestion_control(tcb.retries > 0);
    tcb.retries = 0;
    wheel.cancel(h);
    tcb.state = State::Established;
    // The window of a SYN-ACK is never scaled (RFC 7323 §2.2).
    tcb.snd_wnd = if seg.flags.syn() { u32::from(seg.window) } else { u32::from(seg.window) << tcb.snd_wscale };
    tcb.max_snd_wnd = tcb.snd_wnd;
    tcb.snd_wl1 = SeqNum(seg.seq);
    if seg.flags.syn() {
        tcb.set(flags::ACK_NOW);
    }
    ctx.stats.conns_opened += 1;
    ctx.stats.conns_active_opened += 1;
    let mut c = app_conn!(ctx, id, key, tcb);
    ctx.app.on_open(&mut c);
    Next::Keep
}

/// Holds the part of `seg` beyond RCV.NXT (RFC 9293 §3.10.7.4), or counts it dropped when it cannot be held.
fn hold<A: App>(ctx: &mut Ctx<A>, tcb: &mut Tcb, seq: SeqNum, seg: &TcpRepr<'_>) {
    match ctx.held.hold(&mut tcb.rx_held, tcb.rcv_nxt, tcb.rcv_adv, seq, seg.payload, seg.flags.fin()) {
        Hold::Held => ctx.stats.out_of_order_held += 1,
        // All of it was held already: a D-SACK block for it, before the block that holds it (RFC 2883 §4.1.3).
        Hold::Duplicate if !seg.payload.is_empty() => ctx.dsack = Some((seq, seq + seg.payload.len() as u32)),
        Hold::Duplicate => {}
        Hold::PoolFull | Hold::TooManyRanges => ctx.stats.drop(Drop::OutOfOrder),
    }
}

/// Hands the app the held bytes that now start at RCV.NXT, for as long as it takes all it is given.
fn deliver_held<K: FlowKey, A: App>(ctx: &mut Ctx<A>, id: ConnId, key: &K, tcb: &mut Tcb) {
    while tcb.rx_held != reassembly::NONE && !tcb.has(flags::ABORT) {
        // One slice per turn: where the ring wraps, the next turn starts at its beginning.
        let (ready, _) = ctx.held.ready(tcb.rx_held, tcb.rcv_nxt);
        if ready.is_empty() {
            return;
        }
        let mut c = app_conn!(ctx, id, key, tcb);
        let taken = ctx.app.on_data(&mut c, ready).min(ready.len());
        let all = taken == ready.len();
        tcb.rcv_nxt += taken as u32;
        ctx.stats.out_of_order_delivered_bytes += taken as u64;
        ctx.held.settle(&mut tcb.rx_held, tcb.rcv_nxt);
        if !all {
            return;
        }
    }
}

/// RFC 5681 §3.2 fast retransmit on the third duplicate ACK: ssthresh = max(FlightSize / 2, 2·SMSS) (step 2),
/// the lost segment goes again (step 3), and the recovery lasts until everything sent so far is acknowledged
/// (RFC 6582's `recover`). With SACK, a scoreboard from this ACK on (RFC 6675 §5, 4.1–4.3) and proportional
/// rate reduction (RFC 6937) set what each later ACK lets out. Without one (no SACK, or every scoreboard taken)
/// we keep only the outcome of fast recovery, cwnd = ssthresh, at once: no 3·SMSS inflation nor per-duplicate
/// growth (steps 3-4), so no new data leaves until ACKs bring the flight under the halved window. That is more
/// conservative than §3.2 allows, which §3 permits ("MUST NOT be more aggressive"); holes after the first are
/// repaired one per partial ACK (RFC 6582 §3.2 step 4).
fn enter_fast_recovery<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    seg: &TcpRepr<'_>,
    sink: &mut S,
) {
    // What the last recovery resent beyond its end and is not yet acknowledged is in flight again: the new
    // recovery (a new loss, so a new reduction) must not send it a third time.
    // (A tail loss probe's episode does not count: it resent only the last segment. It ends here, in the
    // recovery's own reduction. A probe still scheduled stays so: its deadline is armed, and when it fires it
    // finds the recovery and arms what is left of the RTO instead of timing out early.)
    let resent = (tcb.tlp != TailProbe::Resent && tcb.resent_beyond_una()).then_some(tcb.recover);
    if tcb.tlp != TailProbe::Armed {
        tcb.tlp = TailProbe::Idle;
    }
    tcb.halve_ssthresh();
    tcb.cwnd = tcb.ssthresh;
    tcb.set(flags::RECOVERY);
    tcb.recover = tcb.snd_nxt;
    let sacked = tcb.has(flags::SACK) && seg.options.sack.len > 0;
    if sacked && ctx.boards.start(&mut tcb.tx_board, tcb.snd_una, tcb.snd_nxt) {
        ctx.stats.sack_recoveries += 1;
    }
    if let Some(end) = resent {
        ctx.boards.resent_before(tcb.tx_board, end);
    } else if retransmit_first(ctx, key, tcb, sink) {
        let n = tcb.send_mss().min(tcb.in_flight());
        ctx.boards.retransmitted(tcb.tx_board, tcb.snd_una, tcb.snd_una + n, tcb.snd_nxt);
    }
    if tcb.tx_board != scoreboard::NONE {
        sack_recovery(ctx, key, tcb, seg, false, sink);
    }
}

/// RFC 8985 §7.4: what an ACK says of a tail loss probe that is out (before the ACK moves SND.UNA). A probe of
/// new data, or one still scheduled, is done with once new data is acknowledged. A probe that resent the last
/// segment, ending at TLPHighRxt (`recover`), waits for the evidence: a D-SACK of it, or a duplicate ACK right
/// at its end from a peer without D-SACK, says both copies arrived and nothing was lost; an ACK beyond it with
/// neither says the probe repaired a loss, and cwnd is halved as a fast recovery would have done. An ACK that
/// reaches its end exactly leaves the question open, as in Linux, until data sent after it is acknowledged.
fn tail_probe_ack<A: App>(ctx: &mut Ctx<A>, tcb: &mut Tcb, seg: &TcpRepr<'_>, ack: SeqNum, advanced: bool) {
    match tcb.tlp {
        TailProbe::Armed | TailProbe::Spent if advanced => tcb.tlp = TailProbe::Idle,
        TailProbe::Resent => {
            let high = tcb.recover;
            let duplicate = ack == high && !advanced && seg.payload.is_empty() && !seg.flags.fin();
            if dsack(seg, ack) || (duplicate && seg.options.sack.len == 0) {
                tcb.tlp = TailProbe::Idle;
            } else if ack > high {
                tcb.tlp = TailProbe::Idle;
                tcb.reduce_after_probe_repair();
                ctx.stats.tail_loss_repairs += 1;
            }
        }
        _ => {}
    }
}

/// RFC 8985 §7.4 leaves the ACK of a tail loss probe to RACK: a segment sent after the ones still missing
/// arrived, and those were sent at least a probe timeout (two round trips) before it, so they are lost, not late.
/// Without RACK's clocks, this reads the same from the ACK: a duplicate that SACKs data while a probe is out
/// starts the recovery at once, rather than waiting for duplicates that a tail of fewer than four segments
/// cannot produce, or for the RTO.
fn probe_sacked_past_a_hole(tcb: &Tcb, seg: &TcpRepr<'_>, ack: SeqNum) -> bool {
    matches!(tcb.tlp, TailProbe::Resent | TailProbe::Spent) && seg.options.sack.len > 0 && !dsack(seg, ack)
}

/// RFC 2883 §4: the ACK's first SACK block reports a duplicate segment (a D-SACK): it lies below the cumulative
/// ACK, or within the second block.
fn dsack(seg: &TcpRepr<'_>, ack: SeqNum) -> bool {
    let blocks = seg.options.sack.as_slice();
    blocks.first().is_some_and(|&(l, r)| {
        SeqNum(l) < ack || blocks.get(1).is_some_and(|&(l2, r2)| SeqNum(l) >= SeqNum(l2) && SeqNum(r) <= SeqNum(r2))
    })
}

/// RFC 5827 early retransmit: with fewer than four segments in flight and nothing more to send, three duplicate
/// ACKs may never come (the tail of a response, where most losses of a short transfer are), so one fewer than
/// the two or three segments in flight suffice. Without it such a loss waits for the retransmission timer,
/// 200 ms or more. The delayed variant (§6) is not used: like the ordinary threshold, it trusts the path not to
/// reorder.
fn early_retransmit<A: App>(ctx: &Ctx<A>, tcb: &Tcb) -> bool {
    let nothing_unsent = tcb.state.fin_sent() || ctx.bufs.len(tcb.tx) as u32 <= tcb.in_flight();
    // Segments of data: a FIN takes a sequence number but rides on the last one (or goes alone, as one).
    let fin = u32::from(tcb.state.fin_sent());
    let segments = tcb.in_flight().saturating_sub(fin).div_ceil(tcb.send_mss()).max(1);
    // A lone segment in flight has nothing behind it whose arrival could make a duplicate ACK.
    nothing_unsent && (2..4).contains(&segments) && u32::from(tcb.dup_acks) + 1 >= segments
}

/// The recovery is over (RFC 6582 §3.2 step 3): `ack` reached its recovery point. After a fast recovery with a
/// scoreboard, cwnd = ssthresh (RFC 6937 §3: PRR has brought the flight there); after one without, cwnd was set
/// to ssthresh when it began and has grown since by congestion avoidance; after a timeout, slow start goes on
/// from where it is. A scoreboard may have resent lost data sent during the recovery, beyond its point (NextSeg
/// rule 1 has no upper bound): `recover` then keeps where those retransmissions end, so that the duplicate ACKs
/// still coming for that hole, which start the next recovery, do not send it yet again (RFC 6675 §5 step 4.3
/// would; Linux, which marks each retransmitted segment, does not).
fn end_recovery<A: App>(ctx: &mut Ctx<A>, tcb: &mut Tcb, ack: SeqNum) {
    if tcb.tx_board != scoreboard::NONE {
        if let Some(high_rxt) = ctx.boards.high_rxt(tcb.tx_board).filter(|&r| r > ack) {
            tcb.recover = high_rxt;
        }
        ctx.boards.release(&mut tcb.tx_board);
        tcb.cwnd = tcb.ssthresh;
    }
    tcb.clear(flags::RECOVERY);
}

/// RFC 6675 §5 on an ACK during a recovery that keeps a scoreboard, before its RecoveryPoint (`Tcb::recover`) is
/// acknowledged: the ACK's SACK blocks join the scoreboard, proportional rate reduction (RFC 6937) sets
/// cwnd = pipe + sndcnt from what this ACK delivered, and within it go a retransmission found lost too (see
/// [`scoreboard`]) first, then the lost segments (NextSeg rule 1), then new data (rule 2), then holes not yet
/// counted lost (rule 3). A partial ACK whose scoreboard names nothing
/// lost, but holds SACKed data above the hole, still sends the segment at SND.UNA if this recovery has not sent
/// it yet (what the recovery without a scoreboard does), so the repair never waits for the timer where it did
/// not before.
fn sack_recovery<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    seg: &TcpRepr<'_>,
    partial_ack: bool,
    sink: &mut S,
) {
    let board = tcb.tx_board;
    let delivered = ctx.boards.update(board, tcb.snd_una, tcb.snd_nxt, seg.options.sack.as_slice());
    let smss = tcb.send_mss();
    let pipe = ctx.boards.pipe(board, tcb.snd_una, tcb.snd_nxt, smss);
    tcb.cwnd = pipe.saturating_add(ctx.boards.prr_quota(board, delivered, pipe, tcb.ssthresh, smss));
    let mut sent = false;
    // Whole segments, while cwnd leaves any room: a send may overshoot sndcnt by less than a segment, and
    // prr_out then holds the next one back until deliveries catch up (as Linux counts PRR in whole packets).
    while ctx.boards.pipe(board, tcb.snd_una, tcb.snd_nxt, smss) < tcb.cwnd {
        // A retransmission lost too comes before any octet not yet resent: it is the oldest data missing.
        let lost_again = ctx.boards.lost_retransmission(board, smss);
        let lost = lost_again.or_else(|| ctx.boards.next_lost(board, tcb.snd_una, smss));
        if lost.is_none() {
            if let Some(n) = send_one_new(ctx, key, tcb, sink) {
                ctx.boards.prr_sent(board, n);
                continue;
            }
        }
        // Rule 1, or rule 3 once there is no new data either: a hole not yet counted lost (fewer than DupThresh
        // segments SACKed above it: the tail of a transfer) goes now rather than after another round trip.
        let Some((seq, len)) = lost.or_else(|| ctx.boards.next_hole(board, tcb.snd_una)) else { break };
        let Some(n) = retransmit_at(ctx, key, tcb, seq - tcb.snd_una, len, sink) else { break };
        ctx.boards.retransmitted(board, seq, seq + n, tcb.snd_nxt);
        ctx.stats.sack_retransmits += 1;
        ctx.stats.retransmissions_lost += u64::from(lost_again.is_some());
        sent = true;
    }
    // Only on evidence that the segment at SND.UNA is lost: the peer has SACKed something above it, or this
    // partial ACK covers every retransmission of the recovery while the segment, below the recovery point and so
    // sent before them all, is still missing (on a path that keeps order it would have arrived first; the case
    // RFC 6675's rescue retransmission is for, a loss at the tail with nothing SACKed above it). Otherwise a
    // partial ACK with nothing SACKed says the rest is still on its way, and resending it would be spurious.
    let first_resent = ctx.boards.high_rxt(board).is_some_and(|r| r > tcb.snd_una);
    let overtaken = ctx.boards.all_resent_acked(board, tcb.snd_una);
    if partial_ack && !sent && !first_resent && (ctx.boards.sacked(board) > 0 || overtaken) {
        if let Some(n) = retransmit_at(ctx, key, tcb, 0, u32::MAX, sink) {
            ctx.boards.retransmitted(board, tcb.snd_una, tcb.snd_una + n, tcb.snd_nxt);
        }
    }
}
