//! The end of every event on a connection: apply the app's close/abort, send what is due, set the timer, or
//! retire the connection to CLOSED or TIME-WAIT and tell the app.

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::api::{CloseReason, Conn};
use crate::tcp::conn::{flags, State, TailProbe, Tcb};
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::FlowKey;
use crate::tcp::flows::Flows;
use crate::tcp::output::{emit_ctl, output};
use crate::tcp::time_wait::TimeWait;
use crate::time::duration_nanos;
use crate::wire::TcpFlags;

/// What happens to a connection after an event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Next {
    Keep,
    Close(CloseReason),
    TimeWait,
}

/// A [`Conn`] for the app over the connection at `h`.
macro_rules! app_conn {
    ($ctx:expr, $id:expr, $key:expr, $tcb:expr) => {
        Conn::new($id, $ctx.now, $key.local(), $key.remote(), $tcb, &mut $ctx.bufs, $ctx.cfg.send_buffer as usize)
    };
}
pub(crate) use app_conn;

/// Finishes an event on the connection at `h` (see the module docs).
pub fn finish<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    h: u32,
    next: Next,
    sink: &mut S,
) {
    finish_inner(ctx, flows, h, next, sink);
    // A D-SACK the event's ACK did not carry (data went instead, or nothing) is not for anyone else's.
    ctx.dsack = None;
}

fn finish_inner<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    h: u32,
    next: Next,
    sink: &mut S,
) {
    match next {
        Next::Keep => {
            let (key, tcb) = flows.table.entry_mut(h);
            if tcb.has(flags::ABORT) {
                send_rst(ctx, key, tcb, sink);
                return close(ctx, flows, h, CloseReason::Aborted);
            }
            open_window(ctx, tcb);
            output(ctx, key, tcb, false, sink);
            rearm(ctx, flows, h);
        }
        Next::Close(reason) => close(ctx, flows, h, reason),
        Next::TimeWait => {
            let (key, tcb) = flows.table.entry_mut(h);
            open_window(ctx, tcb);
            output(ctx, key, tcb, false, sink);
            enter_time_wait(ctx, flows, h);
        }
    }
}

/// RFC 9293 §3.10.4 ABORT (and giving up after retransmissions): `<SEQ=SND.NXT><CTL=RST>`.
pub fn send_rst<K: FlowKey, A: App, S: FrameSink>(ctx: &mut Ctx<A>, key: &K, tcb: &Tcb, sink: &mut S) {
    if matches!(tcb.state, State::SynSent) {
        return; // The peer knows nothing of us yet.
    }
    let seq = tcb.snd_nxt;
    if emit_ctl(ctx, key, tcb, seq, TcpFlags::RST, sink) {
        ctx.stats.rsts_sent += 1;
    }
}

/// Moves the right edge of the receive window to what the app can take now (never left: a window is not
/// shrunk). When a window the peer saw as nearly closed opens by a useful amount — half the buffer or one MSS,
/// RFC 9293 §3.8.6.2.2's receiver-side silly window avoidance — an ACK announces it.
pub fn open_window<A: App>(ctx: &Ctx<A>, tcb: &mut Tcb) {
    if !tcb.state.is_synchronized() {
        return;
    }
    let open_for_sending = !tcb.has(flags::FIN_QUEUED | flags::ABORT);
    let send_capacity = if open_for_sending { ctx.bufs.room(tcb.tx, ctx.cfg.send_buffer as usize) } else { 0 };
    let cap = ctx.app.receive_window(tcb.user, send_capacity).min(ctx.cfg.rcv_wnd as usize) as u32;
    let scale = tcb.rcv_wscale;
    let want = (cap.min(0xffff << scale) >> scale) << scale;
    let right = tcb.rcv_nxt + want;
    if right > tcb.rcv_adv {
        let threshold = (ctx.cfg.rcv_wnd / 2).min(u32::from(tcb.mss)).max(1);
        if tcb.rcv_window() < threshold && want >= threshold {
            tcb.set(flags::ACK_NOW);
        }
        tcb.rcv_adv = right;
    }
    // A scaled window field can only say multiples of 2^scale, and it is rounded down: the edge the peer computes
    // from it may then sit up to 2^scale − 1 bytes left of the previous one (RFC 7323 §2.4 allows for this
    // retraction). Rounding up instead would promise bytes the app may not be able to take, and the promise
    // would creep forward with every segment.
}

/// Arms the connection's one timer for what it waits on now, or cancels it: retransmission (or the SYN's, or
/// a tail loss probe's: RFC 8985 §7.2), the persist timer, the FIN-WAIT-2 timeout, or the idle timeout. A
/// retransmission timer already armed is left alone (RFC 6298 §5.3 restarts are done by cancelling first when
/// an ACK brings progress), unless it is set later than the wait it must now cover (an idle timer giving way to
/// a retransmission); the idle timer moves with every event. `Tcb::tlp` records whether the armed deadline is a
/// probe timeout, which `timers` needs to know when it fires.
pub fn rearm<K: FlowKey, A: App>(ctx: &mut Ctx<A>, flows: &mut Flows<K>, h: u32) {
    let tcb = flows.table.get(h);
    let mut probe = false;
    // The wait in nanoseconds (see `Tcb::rto_ns`).
    let wait = match tcb.state {
        State::SynSent | State::SynReceived => Some(tcb.rto_ns(&ctx.cfg)),
        State::FinWait2 => Some(duration_nanos(ctx.cfg.fin_wait2_timeout)),
        _ if tcb.in_flight() > 0 => {
            probe = tcb.probe_allowed(&ctx.cfg);
            Some(if probe { tcb.pto_ns(&ctx.cfg) } else { tcb.rto_ns(&ctx.cfg) })
        }
        // Data waits behind a zero window: the persist timer (RFC 9293 §3.8.6.1).
        State::Established | State::CloseWait if ctx.bufs.len(tcb.tx) > 0 => Some(tcb.rto_ns(&ctx.cfg)),
        State::Established | State::CloseWait => {
            match ctx.cfg.idle_timeout {
                Some(idle) => flows.wheel.arm(h, ctx.now + idle),
                None => flows.wheel.cancel(h),
            }
            disarm_probe(flows.table.get_mut(h));
            return;
        }
        _ => None,
    };
    match wait {
        Some(ns) => {
            let due = ctx.now.add_nanos(ns);
            if flows.wheel.deadline(h).is_none_or(|t| t > due) {
                flows.wheel.arm(h, due);
                let tcb = flows.table.get_mut(h);
                if probe {
                    tcb.tlp = TailProbe::Armed;
                } else {
                    disarm_probe(tcb);
                }
            }
            // Else an earlier deadline stays, and with it what `tlp` says of it.
        }
        None => {
            flows.wheel.cancel(h);
            disarm_probe(flows.table.get_mut(h));
        }
    }
}

/// The timer no longer holds a probe timeout.
#[inline]
fn disarm_probe(tcb: &mut Tcb) {
    if tcb.tlp == TailProbe::Armed {
        tcb.tlp = TailProbe::Idle;
    }
}

/// Forgets the connection at `h` and tells the app why.
pub fn close<K: FlowKey, A: App>(ctx: &mut Ctx<A>, flows: &mut Flows<K>, h: u32, reason: CloseReason) {
    let id = flows.id(h);
    flows.wheel.cancel(h);
    let (_key, mut tcb) = flows.table.remove(h);
    ctx.hops.release(tcb.hop);
    ctx.bufs.release(&mut tcb.tx);
    ctx.held.release(&mut tcb.rx_held);
    ctx.boards.release(&mut tcb.tx_board);
    ctx.live -= 1;
    let s = &mut ctx.stats;
    match reason {
        CloseReason::Normal => s.conns_closed += 1,
        CloseReason::Reset => s.conns_reset += 1,
        CloseReason::Refused => s.conns_refused_by_peer += 1,
        CloseReason::TimedOut => s.conns_timed_out += 1,
        CloseReason::Aborted => s.conns_aborted += 1,
    }
    ctx.app.on_closed(id, tcb.user, reason);
}

/// Moves the connection at `h` into the TIME-WAIT table (RFC 9293 §3.10.7.4) and tells the app it is closed.
pub fn enter_time_wait<K: FlowKey, A: App>(ctx: &mut Ctx<A>, flows: &mut Flows<K>, h: u32) {
    let id = flows.id(h);
    flows.wheel.cancel(h);
    let (key, mut tcb) = flows.table.remove(h);
    ctx.hops.release(tcb.hop);
    ctx.bufs.release(&mut tcb.tx);
    ctx.held.release(&mut tcb.rx_held);
    ctx.boards.release(&mut tcb.tx_board);
    ctx.live -= 1;
    let tw = TimeWait {
        snd_nxt: tcb.snd_nxt.0,
        rcv_nxt: tcb.rcv_nxt.0,
        ts_recent: tcb.ts_recent,
        flags: TimeWait::flags_for(tcb.has(flags::TS), tcb.rcv_wscale),
    };
    match flows.tw.insert(ctx.now, key, tw) {
        Ok(()) => ctx.stats.time_wait_entered += 1,
        // Like Linux's tw bucket overflow: the tuple is released early rather than refusing to close.
        Err(_) => ctx.stats.time_wait_overflow += 1,
    }
    ctx.stats.conns_closed += 1;
    ctx.app.on_closed(id, tcb.user, CloseReason::Normal);
}

/// A passive open is complete: starts the connection's congestion window (its MSS is known now) and tells the
/// app the connection at `h` has opened.
pub fn open<K: FlowKey, A: App>(ctx: &mut Ctx<A>, flows: &mut Flows<K>, h: u32) {
    let id = flows.id(h);
    let (key, tcb) = flows.table.entry_mut(h);
    // Stateless SYN-ACKs: a lost one cannot be told from a slow one, so the initial window is always RFC 6928's.
    tcb.start_congestion_control(false);
    let mut c = app_conn!(ctx, id, key, tcb);
    ctx.app.on_open(&mut c);
}
