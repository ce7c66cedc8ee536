//! Everything the endpoint sends: segments of a connection (data, FIN, ACK, SYN, RST) and stateless replies.
//!
//! Frames are emitted straight into the sink's buffer, headers and checksums included. Sending never changes
//! what a connection has received; it only advances SND.NXT and the FIN states.

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::conn::{flags, State, Tcb};
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::{FlowKey, TTL};
use crate::tcp::reassembly::{self, Reassembly};
use crate::tcp::scoreboard;
use crate::tcp::sendbuf::SendBufs;
use crate::tcp::seq::SeqNum;
use crate::tcp::stats::{Drop, Stats};
use crate::wire::{
    EthernetRepr, FrameRepr, IpRepr, Ipv4Repr, Ipv6Repr, SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamps,
};

/// Emits `frame` into the next buffer of `sink`.
#[inline]
pub fn transmit<S: FrameSink>(stats: &mut Stats, sink: &mut S, frame: &FrameRepr<'_>) -> bool {
    let Some(buf) = sink.buffer() else {
        stats.drop(Drop::NoTxBuffer);
        return false;
    };
    match frame.emit(buf) {
        Ok(n) => {
            sink.commit(n);
            stats.frames_out += 1;
            true
        }
        Err(_) => {
            stats.drop(Drop::NoTxBuffer);
            false
        }
    }
}

/// The MSS we announce for family `K`.
#[inline]
pub fn our_mss<K: FlowKey>(mss: u16) -> u16 {
    // cfg.mss is for IPv4 (1500 − 40); IPv6 headers are 20 bytes longer.
    mss.saturating_sub(K::IP_HEADER_LEN - 20).max(48)
}

/// Emits a segment without payload on a connection (see [`emit_conn`]).
#[inline]
pub fn emit_ctl<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &Tcb,
    seq: SeqNum,
    flags_: TcpFlags,
    sink: &mut S,
) -> bool {
    let ts = ctx.ts_clock();
    let eth = conn_eth::<K, A>(ctx, tcb);
    let dsack = ctx.dsack.take();
    emit_conn(eth, &mut ctx.stats, &ctx.held, dsack, ts, key, tcb, seq, flags_, &[], sink)
}

/// The Ethernet header of a connection's frames: to its next hop, from us.
#[inline]
pub fn conn_eth<K: FlowKey, A: App>(ctx: &Ctx<A>, tcb: &Tcb) -> EthernetRepr {
    let hop = ctx.hops.get(tcb.hop);
    EthernetRepr { dst: hop.mac, src: ctx.cfg.local_mac, vlan: hop.vlan, ethertype: K::ETHERTYPE }
}

/// Emits one segment of a connection under `eth` (see [`conn_eth`]). `ack` is taken from RCV.NXT when the ACK
/// flag is set; with SACK, its blocks say what is held beyond it, after `dsack`, a duplicate the peer sent
/// (RFC 2883). Takes the context's parts separately so that `payload` can borrow the send queues.
#[allow(clippy::too_many_arguments)]
pub fn emit_conn<K: FlowKey, S: FrameSink>(
    eth: EthernetRepr,
    stats: &mut Stats,
    held: &Reassembly,
    dsack: Option<(SeqNum, SeqNum)>,
    ts_now: u32,
    key: &K,
    tcb: &Tcb,
    seq: SeqNum,
    flags_: TcpFlags,
    payload: &[u8],
    sink: &mut S,
) -> bool {
    let mut options = TcpOptions::default();
    if tcb.has(flags::TS) && !flags_.rst() {
        options.timestamps = Some(Timestamps { tsval: ts_now, tsecr: tcb.ts_recent });
    }
    if (tcb.rx_held != reassembly::NONE || dsack.is_some()) && tcb.has(flags::SACK) && flags_.ack() && !flags_.rst() {
        // RFC 2018 §4: what we hold beyond RCV.NXT, newest first, as many blocks as fit.
        let fit = sack_room(tcb, payload.len());
        let mut sack = held.sack_blocks(tcb.rx_held, tcb.rcv_nxt);
        if let Some((start, end)) = dsack {
            sack = with_dsack(sack, start, end);
        }
        sack.len = sack.len.min(fit);
        options.sack = sack;
    }
    let tcp = TcpRepr {
        src_port: key.local_port(),
        dst_port: key.remote_port(),
        seq: seq.0,
        ack: if flags_.ack() { tcb.rcv_nxt.0 } else { 0 },
        flags: flags_,
        window: if flags_.rst() { 0 } else { tcb.window_field() },
        urgent: 0,
        options,
        payload,
    };
    transmit(stats, sink, &FrameRepr { eth, ip: key.reply_ip(), tcp })
}

/// SACK blocks that fit in a segment with `payload` bytes of data: payload and options together stay within the
/// MSS (RFC 6691), so a full data segment carries none and a pure ACK as many as fit (each block 8 bytes after 4
/// of NOP, NOP, kind and length, beside 12 of timestamps), four at most.
#[inline]
fn sack_room(tcb: &Tcb, payload: usize) -> u8 {
    let used = (payload as u32).saturating_add(if tcb.has(flags::TS) { 12 } else { 0 });
    (u32::from(tcb.mss).saturating_sub(used).saturating_sub(4) / 8).min(4) as u8
}

/// The pending D-SACK (see `Ctx::dsack`) for a data segment of `payload` bytes if it has room for it, taken so
/// that it is reported once; else it stays for a pure ACK (and is dropped with the event if none follows).
#[inline]
fn dsack_for_data<A: App>(ctx: &mut Ctx<A>, tcb: &Tcb, payload: u32) -> Option<(SeqNum, SeqNum)> {
    if ctx.dsack.is_some() && sack_room(tcb, payload as usize) > 0 {
        ctx.dsack.take()
    } else {
        None
    }
}

/// RFC 2883 §4: the D-SACK block [`start`, `end`) first, then the held block that contains it if there is one
/// (its duplicate came from data above the cumulative ACK), then the others, newest first, as many as fit.
fn with_dsack(held: SackBlocks, start: SeqNum, end: SeqNum) -> SackBlocks {
    let blocks = held.as_slice();
    let within = |&(l, r): &(u32, u32)| SeqNum(l) <= start && end <= SeqNum(r);
    let container = blocks.iter().position(within);
    let mut out = SackBlocks { blocks: [(start.0, end.0); 4], len: 1 };
    let rest = container
        .map(|i| blocks[i])
        .into_iter()
        .chain(blocks.iter().enumerate().filter(|&(i, _)| Some(i) != container).map(|(_, &b)| b));
    for b in rest.take(3) {
        out.blocks[usize::from(out.len)] = b;
        out.len += 1;
    }
    out
}

/// Emits our SYN (active open) or SYN-ACK (simultaneous open), with the options we offer.
pub fn emit_syn<K: FlowKey, A: App, S: FrameSink>(ctx: &mut Ctx<A>, key: &K, tcb: &Tcb, sink: &mut S) -> bool {
    let with_ack = tcb.state == State::SynReceived;
    let cfg = &ctx.cfg;
    let options = TcpOptions {
        mss: Some(our_mss::<K>(cfg.mss)),
        // RFC 7323 §2.2 and §3.2: a <SYN,ACK> may carry Window Scale, and TSopt, only if the <SYN> it answers did.
        window_scale: (!with_ack || tcb.has(flags::PEER_WSCALE)).then_some(cfg.window_scale),
        sack_permitted: cfg.sack,
        timestamps: (cfg.timestamps && (!with_ack || tcb.has(flags::TS)))
            .then(|| Timestamps { tsval: ctx.ts_clock(), tsecr: if with_ack { tcb.ts_recent } else { 0 } }),
        sack: Default::default(),
    };
    let tcp = TcpRepr {
        src_port: key.local_port(),
        dst_port: key.remote_port(),
        seq: tcb.snd_una.0,
        ack: if with_ack { tcb.rcv_nxt.0 } else { 0 },
        flags: if with_ack { TcpFlags::SYN | TcpFlags::ACK } else { TcpFlags::SYN },
        window: cfg.syn_window(),
        urgent: 0,
        options,
        payload: &[],
    };
    let eth = conn_eth::<K, A>(ctx, tcb);
    transmit(&mut ctx.stats, sink, &FrameRepr { eth, ip: key.reply_ip(), tcp })
}

/// A reply to `frame` that belongs to no connection: addresses and ports swapped, sent to the sender's MAC
/// (and VLAN).
pub fn reply<A: App, S: FrameSink>(ctx: &mut Ctx<A>, frame: &FrameRepr<'_>, tcp: TcpRepr<'_>, sink: &mut S) -> bool {
    let eth = EthernetRepr {
        dst: frame.eth.src,
        src: ctx.cfg.local_mac,
        vlan: frame.eth.vlan,
        ethertype: frame.eth.ethertype,
    };
    let ip = match frame.ip {
        IpRepr::V4(ip) => {
            IpRepr::V4(Ipv4Repr { src: ip.dst, dst: ip.src, protocol: 6, ttl: TTL, tos: 0, payload_len: 0 })
        }
        IpRepr::V6(ip) => IpRepr::V6(Ipv6Repr {
            src: ip.dst,
            dst: ip.src,
            next_header: 6,
            hop_limit: TTL,
            tclass: 0,
            flow_label: 0,
            payload_len: 0,
        }),
    };
    transmit(&mut ctx.stats, sink, &FrameRepr { eth, ip, tcp })
}

/// A bare TCP header answering `frame` (ports swapped), to be completed by the caller.
#[inline]
pub fn reply_header<'a>(frame: &FrameRepr<'_>, seq: u32, ack: u32, flags_: TcpFlags) -> TcpRepr<'a> {
    TcpRepr {
        src_port: frame.tcp.dst_port,
        dst_port: frame.tcp.src_port,
        seq,
        ack,
        flags: flags_,
        window: 0,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    }
}

/// RFC 9293 §3.10.7.1: the RST answering a segment that belongs to nothing — `<SEQ=SEG.ACK><CTL=RST>` for an
/// ACK, `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` otherwise. Never answers an RST; rate-limited.
pub fn reset_for<A: App, S: FrameSink>(ctx: &mut Ctx<A>, frame: &FrameRepr<'_>, sink: &mut S) {
    let seg = &frame.tcp;
    if seg.flags.rst() {
        return;
    }
    if !ctx.rst_limit.allow(ctx.now) {
        ctx.stats.rsts_rate_limited += 1;
        return;
    }
    let tcp = if seg.flags.ack() {
        reply_header(frame, seg.ack, 0, TcpFlags::RST)
    } else {
        let seg_len = seg.payload.len() as u32 + u32::from(seg.flags.syn()) + u32::from(seg.flags.fin());
        reply_header(frame, 0, seg.seq.wrapping_add(seg_len), TcpFlags::RST | TcpFlags::ACK)
    };
    if reply(ctx, frame, tcp, sink) {
        ctx.stats.rsts_sent += 1;
    }
}

/// Bytes of data queued past SND.NXT that could go out.
#[inline]
fn unsent(bufs: &SendBufs, tcb: &Tcb) -> u32 {
    let queued = bufs.len(tcb.tx) as u32;
    let sent_data = tcb.in_flight().min(queued);
    // Once our FIN is out nothing remains unsent; before it, in-flight bytes are all data.
    if tcb.state.fin_sent() && tcb.in_flight() > queued {
        0
    } else {
        queued - sent_data
    }
}

/// Sends what may go out now: new data within the peer's window and the congestion window (split at the MSS,
/// avoiding silly windows), our FIN once the app has closed and the queue is drained, or a bare ACK when one is
/// owed. `probe` lets one byte out into a zero window (RFC 9293 §3.8.6.1). Returns whether anything was sent.
pub fn output<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    probe: bool,
    sink: &mut S,
) -> bool {
    let mut sent = false;
    if matches!(tcb.state, State::Established | State::CloseWait) {
        // During a recovery that keeps a scoreboard, new data goes out only as proportional rate reduction
        // clocks it, ACK by ACK (`send_one_new`), never here.
        while tcb.tx_board == scoreboard::NONE {
            let unsent = unsent(&ctx.bufs, tcb);
            if unsent == 0 {
                break;
            }
            let in_flight = tcb.in_flight();
            if in_flight == 0 && tcb.restart_after_idle(ctx.now_us(), &ctx.cfg) {
                ctx.stats.cwnd_restarts += 1;
            }
            // RFC 5681 §3.1: never more than min(cwnd, rwnd) in flight. With nothing in flight the congestion
            // window always allows a full segment (see `send_window`), so only a closed peer window makes a probe.
            let mut room = tcb.send_window().saturating_sub(in_flight);
            if room == 0 && probe && !sent {
                room = 1;
                ctx.stats.zero_window_probes += 1;
            }
            let n = unsent.min(tcb.send_mss()).min(room);
            if n == 0 {
                break;
            }
            if silly(tcb, n, unsent) && !probe {
                break;
            }
            if !send_new(ctx, key, tcb, n, unsent, sink) {
                break;
            }
            sent = true;
            if probe {
                break;
            }
        }
        if tcb.has(flags::FIN_QUEUED) && !tcb.state.fin_sent() && unsent(&ctx.bufs, tcb) == 0 {
            let seq = tcb.snd_nxt;
            if emit_ctl(ctx, key, tcb, seq, TcpFlags::FIN | TcpFlags::ACK, sink) {
                sent = true;
                tcb.snd_nxt = seq + 1;
                enter_fin_sent(tcb);
            }
        }
    }
    if !sent && tcb.has(flags::ACK_NOW) {
        let seq = tcb.snd_nxt;
        sent = emit_ctl(ctx, key, tcb, seq, TcpFlags::ACK, sink);
    }
    tcb.clear(flags::ACK_NOW);
    sent
}

/// RFC 9293 §3.8.6.2.1 (sender side of silly window avoidance): `n` of the `unsent` bytes may go only as a full
/// segment, everything queued, or at least half the largest window the peer ever offered.
#[inline]
fn silly(tcb: &Tcb, n: u32, unsent: u32) -> bool {
    n < tcb.send_mss() && n < unsent && n < tcb.max_snd_wnd / 2
}

/// Sends `n` new bytes at SND.NXT (of `unsent` queued past it), with our FIN if the app has closed and they are
/// the last; starts an RTT measurement if none is running. False when no buffer was free.
fn send_new<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    n: u32,
    unsent: u32,
    sink: &mut S,
) -> bool {
    let fin = tcb.has(flags::FIN_QUEUED) && n == unsent;
    let mut f = TcpFlags::ACK;
    if n == unsent {
        f = f | TcpFlags::PSH;
    }
    if fin {
        f = f | TcpFlags::FIN;
    }
    let seq = tcb.snd_nxt;
    let ts = ctx.ts_clock();
    let eth = conn_eth::<K, A>(ctx, tcb);
    let dsack = dsack_for_data(ctx, tcb, n);
    let payload = ctx.bufs.slice(tcb.tx, tcb.in_flight() as usize, n as usize);
    if !emit_conn(eth, &mut ctx.stats, &ctx.held, dsack, ts, key, tcb, seq, f, payload, sink) {
        ctx.dsack = dsack;
        return false;
    }
    if !tcb.has(flags::RTT_TIMING) {
        tcb.set(flags::RTT_TIMING);
        tcb.rtt_seq = seq + n;
        tcb.rtt_start_us = ctx.now_us();
    }
    tcb.snd_nxt = seq + n + u32::from(fin);
    if fin {
        enter_fin_sent(tcb);
    }
    true
}

/// One segment of new data, as much as the peer's window allows, whatever the congestion window says (the
/// caller's business): RFC 6675 NextSeg rule 2 in a recovery with a scoreboard, once nothing lost is left to
/// resend (PRR has counted the room), or an RFC 8985 tail loss probe. Returns the sequence space it took, or
/// None when there is nothing to send, the peer's window has no room for more than a silly segment, or no
/// buffer was free.
pub fn send_one_new<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    sink: &mut S,
) -> Option<u32> {
    if !matches!(tcb.state, State::Established | State::CloseWait) {
        return None;
    }
    let unsent = unsent(&ctx.bufs, tcb);
    let room = tcb.snd_wnd.saturating_sub(tcb.in_flight());
    let n = unsent.min(tcb.send_mss()).min(room);
    if n == 0 || silly(tcb, n, unsent) {
        return None;
    }
    let before = tcb.snd_nxt;
    send_new(ctx, key, tcb, n, unsent, sink).then(|| tcb.snd_nxt - before)
}

/// ESTABLISHED → FIN-WAIT-1 and CLOSE-WAIT → LAST-ACK when our FIN goes out.
fn enter_fin_sent(tcb: &mut Tcb) {
    tcb.state = match tcb.state {
        State::Established => State::FinWait1,
        State::CloseWait => State::LastAck,
        s => s,
    };
}

/// Retransmits the first unacknowledged segment (RFC 6298 §5.4): data from SND.UNA up to one MSS, with our FIN
/// if it was sent and fits. Never starts an RTT measurement (Karn).
pub fn retransmit_first<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    sink: &mut S,
) -> bool {
    tcb.clear(flags::RTT_TIMING);
    match tcb.state {
        State::SynSent | State::SynReceived => return emit_syn(ctx, key, tcb, sink),
        _ => {}
    }
    retransmit_at(ctx, key, tcb, 0, u32::MAX, sink).is_some()
}

/// Sends again the in-flight segment that starts `offset` bytes after SND.UNA: up to one MSS (and at most `limit`
/// bytes) of data, with our FIN if it was sent and this segment reaches it. Returns the sequence space it covered,
/// or None when nothing is left there or no buffer was free. Any RTT measurement in progress is abandoned (Karn,
/// RFC 6298 §3: the segment timed may be this one, and its ACK could not tell the two copies apart); here, so
/// that no caller can forget it (a SACK recovery's resends once did).
pub fn retransmit_at<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    key: &K,
    tcb: &mut Tcb,
    offset: u32,
    limit: u32,
    sink: &mut S,
) -> Option<u32> {
    tcb.clear(flags::RTT_TIMING);
    let queued = ctx.bufs.len(tcb.tx) as u32;
    let in_flight = tcb.in_flight();
    if offset >= in_flight {
        return None;
    }
    let data = in_flight.min(queued);
    let left = data.saturating_sub(offset);
    let n = left.min(tcb.send_mss()).min(limit);
    // Our FIN follows the last byte of data, and only a segment that ends there carries it.
    let fin = tcb.state.fin_sent() && in_flight > queued && offset + n == data;
    if n == 0 && !fin {
        return None;
    }
    let mut f = TcpFlags::ACK;
    if fin {
        f = f | TcpFlags::FIN;
    }
    if n > 0 && n == left {
        f = f | TcpFlags::PSH;
    }
    let seq = tcb.snd_una + offset;
    let ts = ctx.ts_clock();
    let eth = conn_eth::<K, A>(ctx, tcb);
    let dsack = dsack_for_data(ctx, tcb, n);
    let payload = ctx.bufs.slice(tcb.tx, offset as usize, n as usize);
    if !emit_conn(eth, &mut ctx.stats, &ctx.held, dsack, ts, key, tcb, seq, f, payload, sink) {
        ctx.dsack = dsack;
        return None;
    }
    ctx.stats.retransmits += 1;
    Some(n + u32::from(fin))
}
