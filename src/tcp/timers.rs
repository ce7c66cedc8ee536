//! What happens when a connection's timer fires: SYN and data retransmission with backoff (RFC 6298 §5) and the
//! congestion response to a timeout (RFC 5681 §3.1), zero-window probes (RFC 9293 §3.8.6.1), the FIN-WAIT-2
//! timeout, and TIME-WAIT expiry.

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::api::CloseReason;
use crate::tcp::conn::{flags, State, TailProbe, Tcb};
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::FlowKey;
use crate::tcp::flows::Flows;
use crate::tcp::lifecycle::{finish, send_rst, Next};
use crate::tcp::output::{output, retransmit_at, retransmit_first, send_one_new};

/// Runs every timer of `flows` that is due at `ctx.now`, and expires TIME-WAIT entries.
pub fn run<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    expired: &mut Vec<u32>,
    sink: &mut S,
) {
    expired.clear();
    flows.wheel.expire(ctx.now, expired);
    for &h in expired.iter() {
        let next = fire(ctx, flows, h, sink);
        finish(ctx, flows, h, next, sink);
    }
    ctx.stats.time_wait_expired += flows.tw.expire(ctx.now) as u64;
}

fn fire<K: FlowKey, A: App, S: FrameSink>(ctx: &mut Ctx<A>, flows: &mut Flows<K>, h: u32, sink: &mut S) -> Next {
    let (key, tcb) = flows.table.entry_mut(h);
    match tcb.state {
        State::SynSent | State::SynReceived => {
            tcb.note_timeout();
            if tcb.retries > ctx.cfg.syn_retries {
                send_rst(ctx, key, tcb, sink);
                return Next::Close(CloseReason::TimedOut);
            }
            retransmit_first(ctx, key, tcb, sink);
            ctx.stats.retransmits += 1;
            Next::Keep
        }
        // Linux's tcp_fin_timeout: a peer that never sends its FIN does not hold the connection forever.
        State::FinWait2 => Next::Close(CloseReason::TimedOut),
        _ if tcb.tlp == TailProbe::Armed => {
            tcb.tlp = TailProbe::Idle;
            if tcb.probe_allowed(&ctx.cfg) {
                tail_loss_probe(ctx, key, tcb, sink);
            } else {
                // The conditions lapsed since the probe was scheduled (a duplicate ACK came, a recovery began,
                // the window closed): no probe, and no timeout yet either. The RTO the PTO stood in for is due
                // what is left of it (the finish leaves this earlier deadline be).
                let left = tcb.rto_ns(&ctx.cfg).saturating_sub(tcb.pto_ns(&ctx.cfg));
                flows.wheel.arm(h, ctx.now.add_nanos(left));
            }
            Next::Keep
        }
        // RFC 6429: a connection stuck behind a zero window may be aborted when resources run short. Peers that
        // stop reading would otherwise pin the send memory for as long as they answer probes (MUST-66).
        _ if tcb.snd_wnd == 0 && ctx.bufs.len(tcb.tx) > 0 && ctx.bufs.under_pressure() => {
            ctx.stats.persist_aborts += 1;
            send_rst(ctx, key, tcb, sink);
            Next::Close(CloseReason::TimedOut)
        }
        _ if tcb.in_flight() > 0 && tcb.snd_wnd == 0 => {
            // The window is closed: what we retransmit is a window probe (RFC 9293 §3.8.6.1). Probes back off like
            // any retransmission, but only unanswered ones count toward giving up: `dup_acks` counts them here and
            // every acceptable ACK from the peer resets it (input). MUST-66: a peer that answers keeps the
            // connection open however long its window stays shut.
            tcb.note_timeout();
            tcb.dup_acks = tcb.dup_acks.saturating_add(1);
            if tcb.dup_acks > ctx.cfg.data_retries {
                send_rst(ctx, key, tcb, sink);
                return Next::Close(CloseReason::TimedOut);
            }
            if retransmit_first(ctx, key, tcb, sink) {
                ctx.stats.zero_window_probes += 1;
            }
            Next::Keep
        }
        _ if tcb.in_flight() > 0 => {
            // RFC 5681 §3.1: ssthresh = max(FlightSize / 2, 2·SMSS) when the timer first resends this data — not
            // again on the backed-off timeouts that follow (`retries` counts them; an ACK of new data resets it) —
            // and cwnd = the loss window, one segment, on every timeout. Slow start then repairs from SND.UNA.
            if tcb.retries == 0 {
                tcb.halve_ssthresh();
            }
            tcb.cwnd = tcb.send_mss();
            tcb.note_timeout();
            if tcb.retries > ctx.cfg.data_retries {
                send_rst(ctx, key, tcb, sink);
                return Next::Close(CloseReason::TimedOut);
            }
            let black_hole =
                ctx.cfg.black_hole_detection.then(|| black_hole_mss::<K>(tcb.retries, tcb.mss, tcb.in_flight()));
            if let Some(mss) = black_hole.flatten() {
                tcb.mss = mss;
                tcb.cwnd = tcb.send_mss();
                ctx.stats.mss_black_hole_fallbacks += 1;
            }
            tcb.dup_acks = 0;
            tcb.set(flags::RECOVERY);
            tcb.tlp = TailProbe::Idle; // A probe's episode, if one was out, ends in the timeout's own response.
                                       // RFC 6582 §4: a timeout sets `recover` too, so duplicate ACKs of the old flight start no fast
                                       // retransmit and the repair ends once that flight is acknowledged.
            tcb.recover = tcb.snd_nxt;
            // RFC 6675 §5.1: after a timeout the scoreboard is not trusted (the peer may have reneged); repair
            // from SND.UNA one segment per partial ACK.
            ctx.boards.release(&mut tcb.tx_board);
            retransmit_first(ctx, key, tcb, sink);
            Next::Keep
        }
        State::Established | State::CloseWait if ctx.bufs.len(tcb.tx) > 0 => {
            // The persist timer: the window is zero and data waits. Probe with one byte.
            tcb.note_timeout();
            if tcb.retries > ctx.cfg.data_retries {
                send_rst(ctx, key, tcb, sink);
                return Next::Close(CloseReason::TimedOut);
            }
            output(ctx, key, tcb, true, sink);
            Next::Keep
        }
        State::Established | State::CloseWait if ctx.cfg.idle_timeout.is_some() => {
            // Nothing in flight, nothing queued, nothing heard for the idle timeout: the peer is gone (or never
            // existed: a connection re-created from a late duplicate of its handshake ACK).
            ctx.stats.idle_timeouts += 1;
            send_rst(ctx, key, tcb, sink);
            Next::Close(CloseReason::TimedOut)
        }
        _ => Next::Keep,
    }
}

/// RFC 8985 §7.3: the probe timeout fired. One segment of new data goes if the peer's window takes it (cwnd
/// does not apply), else the last segment again; cwnd is not touched, nor the RTO's backoff, and the timer now
/// runs as the RTO (the finish arms it: no second probe until an ACK of new data).
fn tail_loss_probe<K: FlowKey, A: App, S: FrameSink>(ctx: &mut Ctx<A>, key: &K, tcb: &mut Tcb, sink: &mut S) {
    // Whatever happens, no second probe before an ACK of new data: without a free buffer the RTO comes next,
    // rather than one probe timeout after another (which would keep the RTO, and so giving up, from ever coming).
    tcb.tlp = TailProbe::Spent;
    if send_one_new(ctx, key, tcb, sink).is_some() {
        ctx.stats.tail_loss_probes += 1;
        return;
    }
    let data = tcb.in_flight().min(ctx.bufs.len(tcb.tx) as u32);
    if retransmit_at(ctx, key, tcb, data.saturating_sub(tcb.send_mss()), u32::MAX, sink).is_some() {
        tcb.tlp = TailProbe::Resent;
        tcb.recover = tcb.snd_nxt; // TLPHighRxt
        ctx.stats.tail_loss_probes += 1;
    }
}

/// RFC 4821 black-hole detection (its full-stop timeout), as Linux does it with `tcp_mtu_probing=1`: where ICMP
/// "fragmentation needed" and "packet too big" never reach us (filtered on the way, or landing on another
/// worker's queue), every full-sized segment (DF set) on a path whose MTU is below it is lost until the
/// connection gives up. When the same data has timed out twice,
/// and what is in flight is larger than a segment of the base MSS, we send smaller segments from then on: 1024
/// bytes for IPv4 (Linux's `tcp_base_mss`) and 1220 for IPv6 (its 1280-byte minimum MTU); IPv4 falls to 536
/// (RFC 9293's default, a 576-byte MTU) after four. Returns the new MSS, if it drops.
#[inline]
fn black_hole_mss<K: FlowKey>(retries: u8, mss: u16, in_flight: u32) -> Option<u16> {
    let floor = match (K::V6, retries) {
        (true, 2) => 1220,
        (false, 2) => 1024,
        (false, 4) => 536,
        _ => return None,
    };
    (mss > floor && in_flight > u32::from(floor).saturating_sub(40)).then_some(floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::flow::{V4Flow, V6Flow};

    #[test]
    fn rfc4821_full_stop_timeout_the_mss_falls_after_the_second_timeout_and_for_ipv4_again_after_the_fourth() {
        assert_eq!(black_hole_mss::<V4Flow>(1, 1460, 1448), None, "one timeout is ordinary loss");
        assert_eq!(black_hole_mss::<V4Flow>(2, 1460, 1448), Some(1024));
        assert_eq!(black_hole_mss::<V6Flow>(2, 1440, 1428), Some(1220));
        assert_eq!(black_hole_mss::<V4Flow>(3, 1024, 1012), None);
        assert_eq!(black_hole_mss::<V4Flow>(4, 1024, 1012), Some(536));
        assert_eq!(black_hole_mss::<V6Flow>(4, 1220, 1208), None, "IPv6 never goes below its minimum MTU");
        assert_eq!(black_hole_mss::<V4Flow>(2, 1460, 100), None, "small segments are not the problem");
        assert_eq!(black_hole_mss::<V4Flow>(2, 536, 5000), None, "never raised");
    }
}
