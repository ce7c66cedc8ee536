//! The sans-IO face of the TCP core: one endpoint per worker.
//!
//! Frames and `now` go in ([`Endpoint::handle_frame`], [`Endpoint::handle_timeout`]); frames to send come out
//! through a [`FrameSink`], and [`Endpoint::poll_timeout`] says when to call again. It listens statelessly (SYN
//! cookies), opens connections actively for the load generator, and keeps each address family in its own
//! compact tables.

use crate::app::App;
use crate::sink::FrameSink;
use crate::tcp::api::{CloseReason, Conn, ConnId};
use crate::tcp::config::Config;
use crate::tcp::conn::{flags, State, Tcb};
use crate::tcp::cookie::KeyRing;
use crate::tcp::ctx::Ctx;
use crate::tcp::flow::{FlowKey, V4Flow, V6Flow};
use crate::tcp::flows::Flows;
use crate::tcp::input;
use crate::tcp::lifecycle::{app_conn, finish, send_rst, Next};
use crate::tcp::listen::on_listen;
use crate::tcp::output::{emit_syn, our_mss, reset_for};
use crate::tcp::path_mtu;
use crate::tcp::presence::Presence;
use crate::tcp::seq::SeqNum;
use crate::tcp::stats::{Drop, Stats};
use crate::tcp::timers;
use crate::tcp::tw_input::on_time_wait;
use crate::time::Instant;
use crate::wire::{icmp, parse_frame, FrameRepr, IpRepr, MacAddr, ParseError};
use std::net::{IpAddr, SocketAddr};

/// Why [`Endpoint::connect`] refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("local and remote addresses are of different families")]
    FamilyMismatch,
    #[error("a connection on this 4-tuple is live")]
    InUse,
    #[error("this 4-tuple is in TIME-WAIT")]
    InTimeWait,
    #[error("the connection table is full (or every next hop it can name is in use)")]
    TableFull,
}

/// Memory held by an endpoint's connection state, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub conn_tables: usize,
    pub timers: usize,
    pub time_wait: usize,
    pub send_queues: usize,
    /// The peers' MACs and VLANs, one entry per next hop (see [`crate::tcp::next_hops`]).
    pub next_hops: usize,
    /// Rings of the out-of-order pool, allocated as connections first hold data and kept for reuse.
    pub reassembly: usize,
    /// Reserved for the cookie replay filters (fixed; see [`crate::tcp::replay`]).
    pub replay_filters: usize,
}

/// Workers' memory added up, part by part.
impl core::ops::AddAssign for Memory {
    fn add_assign(&mut self, o: Memory) {
        let Memory { conn_tables, timers, time_wait, send_queues, next_hops, reassembly, replay_filters } = o;
        self.conn_tables += conn_tables;
        self.timers += timers;
        self.time_wait += time_wait;
        self.send_queues += send_queues;
        self.next_hops += next_hops;
        self.reassembly += reassembly;
        self.replay_filters += replay_filters;
    }
}

impl Memory {
    /// Everything together.
    pub fn total(&self) -> usize {
        self.conn_tables
            + self.timers
            + self.time_wait
            + self.send_queues
            + self.next_hops
            + self.reassembly
            + self.replay_filters
    }
}

/// One TCP endpoint: listeners, connections, TIME-WAIT and timers of one worker.
pub struct Endpoint<A: App> {
    ctx: Ctx<A>,
    v4: Flows<V4Flow>,
    v6: Flows<V6Flow>,
    expired: Vec<u32>,
    /// ICMP "too big" messages that quoted no connection here, for the other workers (bounded).
    forward: Vec<Vec<u8>>,
}

impl<A: App> core::fmt::Debug for Endpoint<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("live", &self.ctx.live)
            .field("time_wait", &(self.v4.tw.len() + self.v6.tw.len()))
            .finish_non_exhaustive()
    }
}

impl<A: App> Endpoint<A> {
    /// An endpoint whose clock starts at `start`. It answers no SYN until it has cookie keys
    /// ([`Endpoint::set_cookie_keys`]) and listens on no port until told ([`Endpoint::listen`]).
    pub fn new(cfg: Config, app: A, start: Instant) -> Self {
        let cfg = cfg.normalised();
        let v4 = Flows::new(&cfg, start);
        let v6 = Flows::new(&cfg, start);
        let mut ctx = Ctx::new(cfg, app);
        ctx.now = start;
        Endpoint { ctx, v4, v6, expired: Vec::new(), forward: Vec::new() }
    }

    pub fn config(&self) -> &Config {
        &self.ctx.cfg
    }
    pub fn app(&self) -> &A {
        &self.ctx.app
    }
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.ctx.app
    }

    /// Replaces the cookie keys (the runtime rotates them; the previous slot's key must stay in the ring).
    pub fn set_cookie_keys(&mut self, keys: KeyRing) {
        self.ctx.keys = keys;
    }
    pub fn cookie_keys(&self) -> &KeyRing {
        &self.ctx.keys
    }

    /// Publishes every tuple this endpoint holds (live or in TIME-WAIT) in `presence`, for a steering program
    /// that answers SYNs itself and must leave those tuples' SYNs to us (see [`crate::tcp::presence`]). Call it
    /// before the first connection.
    pub fn set_presence(&mut self, presence: Presence) {
        self.v4.table.set_presence(Some(presence.clone()));
        self.v4.tw.set_presence(Some(presence.clone()));
        self.v6.table.set_presence(Some(presence.clone()));
        self.v6.tw.set_presence(Some(presence));
    }

    pub fn listen(&mut self, port: u16) {
        self.ctx.listening.insert(port);
    }
    pub fn unlisten(&mut self, port: u16) {
        self.ctx.listening.remove(port);
    }
    /// Stops accepting new connections (a drain): SYNs and cookie ACKs are then answered with RST.
    pub fn stop_listening(&mut self) {
        self.ctx.listening.clear();
    }
    pub fn is_listening(&self, port: u16) -> bool {
        self.ctx.listening.contains(port)
    }

    /// Counters, with the gauges filled in.
    pub fn stats(&self) -> Stats {
        let mut s = self.ctx.stats;
        s.live_conns = self.ctx.live as u64;
        s.time_wait = (self.v4.tw.len() + self.v6.tw.len()) as u64;
        s
    }

    pub fn live_connections(&self) -> usize {
        self.ctx.live
    }
    pub fn time_wait_len(&self) -> usize {
        self.v4.tw.len() + self.v6.tw.len()
    }

    /// Pre-sizes one family's tables for `conns` live connections and `time_wait` TIME-WAIT entries (each
    /// clamped to its bound), so that a run reaching those sizes never stops to grow and rehash a table.
    pub fn reserve(&mut self, ipv6: bool, conns: usize, time_wait: usize) {
        if ipv6 {
            self.v6.table.reserve(conns);
            self.v6.tw.reserve(time_wait);
        } else {
            self.v4.table.reserve(conns);
            self.v4.tw.reserve(time_wait);
        }
    }

    /// Heap bytes held by connection state.
    pub fn memory(&self) -> Memory {
        Memory {
            conn_tables: self.v4.table.memory_bytes() + self.v6.table.memory_bytes(),
            next_hops: self.ctx.hops.memory_bytes(),
            replay_filters: self.v4.replay.memory_bytes() + self.v6.replay.memory_bytes(),
            timers: self.v4.wheel.memory_bytes() + self.v6.wheel.memory_bytes(),
            time_wait: self.v4.tw.memory_bytes() + self.v6.tw.memory_bytes(),
            send_queues: self.ctx.bufs.memory_bytes(),
            reassembly: self.ctx.held.allocation_size(),
        }
    }

    /// Processes one received frame. Malformed frames are counted and dropped; replies go to `sink`.
    pub fn handle_frame<S: FrameSink>(&mut self, now: Instant, frame: &[u8], sink: &mut S) {
        self.set_now(now);
        self.ctx.stats.frames_in += 1;
        let f = match parse_frame(frame) {
            Ok(f) => f,
            Err(ParseError::NotTcp) => return self.handle_icmp(frame, false, sink),
            Err(e) => {
                self.ctx.stats.malformed(e);
                return;
            }
        };
        // From our own destination address is no peer either (a LAND attack: it would talk to itself).
        let (src, dst) = (f.ip.src_addr(), f.ip.dst_addr());
        if !self.addressed_to_us(f.eth.dst, dst, src == dst) {
            return;
        }
        match f.ip {
            IpRepr::V4(ip) => {
                let key = V4Flow::new(ip.dst, f.tcp.dst_port, ip.src, f.tcp.src_port);
                dispatch(&mut self.ctx, &mut self.v4, key, &f, sink);
            }
            IpRepr::V6(ip) => {
                let key = V6Flow::new(ip.dst, f.tcp.dst_port, ip.src, f.tcp.src_port);
                dispatch(&mut self.ctx, &mut self.v6, key, &f, sink);
            }
        }
    }

    /// Whether a frame is for us, as Linux judges it: unicast to our MAC, to a unicast address that is one of ours,
    /// and not from that very address (`land`). Counts the drop when it is not.
    fn addressed_to_us(&mut self, eth_dst: MacAddr, dst: IpAddr, land: bool) -> bool {
        let unicast_ip = !land
            && match dst {
                IpAddr::V4(a) => !crate::wire::ipv4::is_not_unicast(a),
                IpAddr::V6(a) => !crate::wire::ipv6::is_not_unicast(a),
            };
        if eth_dst != self.ctx.cfg.local_mac || !unicast_ip {
            self.ctx.stats.drop(Drop::NotUnicast);
            return false;
        }
        if !self.ctx.cfg.local_addrs.is_empty() && !self.ctx.cfg.local_addrs.contains(&dst) {
            self.ctx.stats.drop(Drop::NotLocal);
            return false;
        }
        true
    }

    /// ICMP "too big" messages kept for the other workers since the last call (see
    /// `Config::forward_unmatched_icmp`); at most [`Endpoint::FORWARD_LIMIT`] wait, the rest are counted unmatched.
    pub fn forwarded_icmp(&mut self) -> std::vec::Drain<'_, Vec<u8>> {
        self.forward.drain(..)
    }

    /// Messages kept for other workers between two calls of [`Endpoint::forwarded_icmp`], at most.
    pub const FORWARD_LIMIT: usize = 64;

    /// A message another worker forwarded (see [`Endpoint::forwarded_icmp`]): applied if it quotes a connection
    /// here, never forwarded again, and if it quotes none, not counted (another worker holds it, or nobody).
    pub fn handle_forwarded_icmp<S: FrameSink>(&mut self, now: Instant, frame: &[u8], sink: &mut S) {
        self.set_now(now);
        self.ctx.stats.icmp_forwarded_in += 1;
        self.handle_icmp(frame, true, sink);
    }

    /// A frame that is not TCP: an ICMP "too big" message about one of our connections lowers its MSS (see
    /// [`path_mtu`]); anything else is counted as not TCP. `forwarded` is set for a message from another worker.
    fn handle_icmp<S: FrameSink>(&mut self, frame: &[u8], forwarded: bool, sink: &mut S) {
        let t = match icmp::parse_too_big(frame) {
            Ok(t) => t,
            Err(e) => {
                if !forwarded {
                    self.ctx.stats.malformed(e);
                }
                return;
            }
        };
        if !forwarded {
            self.ctx.stats.icmp_too_big += 1;
        }
        if !self.addressed_to_us(t.eth.dst, t.dst, false) {
            return;
        }
        // The quoted segment left from the address the message came back to.
        let q = t.quoted;
        let found = match (q.src, q.dst) {
            (IpAddr::V4(l), IpAddr::V4(r)) if t.dst == q.src => {
                let key = V4Flow::new(l, q.src_port, r, q.dst_port);
                path_mtu::too_big(&mut self.ctx, &mut self.v4, &key, q.seq, t.mtu, sink)
            }
            (IpAddr::V6(l), IpAddr::V6(r)) if t.dst == q.src => {
                let key = V6Flow::new(l, q.src_port, r, q.dst_port);
                path_mtu::too_big(&mut self.ctx, &mut self.v6, &key, q.seq, t.mtu, sink)
            }
            _ => {
                self.ctx.stats.drop(Drop::IcmpUnmatched);
                return;
            }
        };
        if found == path_mtu::Found::NoConnection && !forwarded {
            if self.ctx.cfg.forward_unmatched_icmp && self.forward.len() < Self::FORWARD_LIMIT {
                self.forward.push(frame.to_vec());
                self.ctx.stats.icmp_forwarded += 1;
            } else {
                self.ctx.stats.drop(Drop::IcmpUnmatched);
            }
        }
    }

    /// Runs the timers due at `now` (retransmissions, probes, timeouts) and expires TIME-WAIT entries.
    pub fn handle_timeout<S: FrameSink>(&mut self, now: Instant, sink: &mut S) {
        self.set_now(now);
        timers::run(&mut self.ctx, &mut self.v4, &mut self.expired, sink);
        timers::run(&mut self.ctx, &mut self.v6, &mut self.expired, sink);
    }

    /// When [`Endpoint::handle_timeout`] should run next (never later than needed; possibly a little early).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.v4.next_deadline(), self.v6.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Opens a connection from `local` to `remote` (whose next hop is `peer_mac`): sends the SYN, arms its
    /// retransmission. The app hears `on_open` when the handshake completes or `on_closed` when it fails.
    pub fn connect<S: FrameSink>(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        peer_mac: MacAddr,
        user: u32,
        sink: &mut S,
    ) -> Result<ConnId, ConnectError> {
        self.connect_with(now, local, remote, peer_mac, user, TimeWaitCheck::Look, sink)
    }

    /// [`connect`](Self::connect) for a caller that already knows the tuple is not in TIME-WAIT here: the load
    /// generator's tuple allocator hands out never-used tuples in its first round and asks
    /// [`in_time_wait`](Self::in_time_wait) in later ones. It spares a TIME-WAIT lookup per connection, a cache
    /// miss once a 60 s TIME-WAIT holds millions of tuples. The live-table check stays (it costs no extra miss:
    /// the insert probes the same place). Debug builds assert the promise.
    pub fn connect_fresh<S: FrameSink>(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        peer_mac: MacAddr,
        user: u32,
        sink: &mut S,
    ) -> Result<ConnId, ConnectError> {
        self.connect_with(now, local, remote, peer_mac, user, TimeWaitCheck::CallerVouches, sink)
    }

    #[allow(clippy::too_many_arguments)]
    fn connect_with<S: FrameSink>(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        peer_mac: MacAddr,
        user: u32,
        tw: TimeWaitCheck,
        sink: &mut S,
    ) -> Result<ConnId, ConnectError> {
        self.set_now(now);
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => {
                let key = V4Flow::new(*l.ip(), l.port(), *r.ip(), r.port());
                connect_in(&mut self.ctx, &mut self.v4, key, peer_mac, user, tw, sink)
            }
            (SocketAddr::V6(l), SocketAddr::V6(r)) => {
                let key = V6Flow::new(*l.ip(), l.port(), *r.ip(), r.port());
                connect_in(&mut self.ctx, &mut self.v6, key, peer_mac, user, tw, sink)
            }
            _ => Err(ConnectError::FamilyMismatch),
        }
    }

    /// Whether the tuple is held in TIME-WAIT (the load generator never reuses such a tuple).
    pub fn in_time_wait(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => {
                self.v4.tw.get(&V4Flow::new(*l.ip(), l.port(), *r.ip(), r.port())).is_some()
            }
            (SocketAddr::V6(l), SocketAddr::V6(r)) => {
                self.v6.tw.get(&V6Flow::new(*l.ip(), l.port(), *r.ip(), r.port())).is_some()
            }
            _ => false,
        }
    }

    /// The state of a live connection.
    pub fn state(&self, id: ConnId) -> Option<State> {
        self.tcb(id).map(|t| t.state)
    }

    /// The smoothed round-trip time (RFC 6298's SRTT) of a live connection, once it has a measurement.
    pub fn smoothed_rtt(&self, id: ConnId) -> Option<std::time::Duration> {
        self.tcb(id).and_then(|t| (t.srtt_us > 0).then(|| std::time::Duration::from_micros(u64::from(t.srtt_us))))
    }

    /// Runs `f` on a live connection as if inside an app callback (send, close, abort...), then sends what is
    /// due. `None` when `id` is not live.
    pub fn with_conn<S: FrameSink, R>(
        &mut self,
        now: Instant,
        id: ConnId,
        sink: &mut S,
        f: impl FnOnce(&mut Conn<'_>) -> R,
    ) -> Option<R> {
        self.set_now(now);
        if id.is_v6() {
            with_in(&mut self.ctx, &mut self.v6, id.handle(), sink, f)
        } else {
            with_in(&mut self.ctx, &mut self.v4, id.handle(), sink, f)
        }
    }

    /// Queues bytes on a connection from outside a callback; returns how many were taken.
    pub fn send<S: FrameSink>(&mut self, now: Instant, id: ConnId, data: &[u8], sink: &mut S) -> usize {
        self.with_conn(now, id, sink, |c| c.send(data)).unwrap_or(0)
    }

    /// Closes our direction of a connection, as the app's `close` would (FIN after queued data).
    pub fn close<S: FrameSink>(&mut self, now: Instant, id: ConnId, sink: &mut S) {
        self.with_conn(now, id, sink, |c| c.close());
    }

    /// Resets a connection now (RST); the app hears `on_closed(Aborted)`.
    pub fn abort<S: FrameSink>(&mut self, now: Instant, id: ConnId, sink: &mut S) {
        self.with_conn(now, id, sink, |c| c.abort());
    }

    /// Resets every live connection (shutdown after a drain deadline).
    pub fn abort_all<S: FrameSink>(&mut self, now: Instant, sink: &mut S) {
        self.set_now(now);
        abort_all_in(&mut self.ctx, &mut self.v4, sink);
        abort_all_in(&mut self.ctx, &mut self.v6, sink);
    }

    fn set_now(&mut self, now: Instant) {
        // Time never runs backwards for the core, whatever the caller's clock does.
        self.ctx.now = self.ctx.now.max(now);
    }

    fn tcb(&self, id: ConnId) -> Option<&Tcb> {
        if id.is_v6() {
            live(&self.v6, id.handle())
        } else {
            live(&self.v4, id.handle())
        }
    }
}

fn live<K: FlowKey>(flows: &Flows<K>, h: u32) -> Option<&Tcb> {
    flows.table.contains(h).then(|| flows.table.get(h))
}

fn with_in<K: FlowKey, A: App, S: FrameSink, R>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    h: u32,
    sink: &mut S,
    f: impl FnOnce(&mut Conn<'_>) -> R,
) -> Option<R> {
    if !flows.table.contains(h) {
        return None;
    }
    let id = flows.id(h);
    let (key, tcb) = flows.table.entry_mut(h);
    let r = f(&mut app_conn!(ctx, id, key, tcb));
    finish(ctx, flows, h, Next::Keep, sink);
    Some(r)
}

fn abort_all_in<K: FlowKey, A: App, S: FrameSink>(ctx: &mut Ctx<A>, flows: &mut Flows<K>, sink: &mut S) {
    let handles: Vec<u32> = flows.table.handles().collect();
    for h in handles {
        let (key, tcb) = flows.table.entry_mut(h);
        send_rst(ctx, key, tcb, sink);
        crate::tcp::lifecycle::close(ctx, flows, h, CloseReason::Aborted);
    }
}

/// Routes a segment: live connection, then TIME-WAIT, then listener, else the RST of a closed port.
fn dispatch<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    key: K,
    frame: &FrameRepr<'_>,
    sink: &mut S,
) {
    let hash = flows.table.hash(&key);
    if let Some(h) = flows.table.find_hashed(hash, &key) {
        let next = input::segment(ctx, flows, h, &frame.tcp, sink);
        finish(ctx, flows, h, next, sink);
    } else if let Some(tw) = flows.tw.get_hashed(hash, &key) {
        on_time_wait(ctx, flows, key, tw, frame, sink);
    } else if ctx.listening.contains(key.local_port()) {
        on_listen(ctx, flows, key, frame, sink);
    } else {
        ctx.stats.drop(Drop::NoConnection);
        reset_for(ctx, frame, sink);
    }
}

/// Whether an active open looks the tuple up in TIME-WAIT.
#[derive(Clone, Copy)]
enum TimeWaitCheck {
    Look,
    CallerVouches,
}

fn connect_in<K: FlowKey, A: App, S: FrameSink>(
    ctx: &mut Ctx<A>,
    flows: &mut Flows<K>,
    key: K,
    peer_mac: MacAddr,
    user: u32,
    tw: TimeWaitCheck,
    sink: &mut S,
) -> Result<ConnId, ConnectError> {
    // One hash for the lookups and the insert (the tables share their key).
    let hash = flows.table.hash(&key);
    if flows.table.find_hashed(hash, &key).is_some() {
        return Err(ConnectError::InUse);
    }
    let held = |flows: &Flows<K>| flows.tw.get_hashed(hash, &key).is_some();
    match tw {
        TimeWaitCheck::Look if held(flows) => return Err(ConnectError::InTimeWait),
        TimeWaitCheck::Look => {}
        TimeWaitCheck::CallerVouches => debug_assert!(!held(flows), "connect_fresh: {key:?} is in TIME-WAIT"),
    }
    if ctx.live >= ctx.cfg.max_conns {
        return Err(ConnectError::TableFull);
    }
    let iss = SeqNum(ctx.isn.isn(ctx.now, &key));
    let hop = ctx.hops.acquire(peer_mac, None).ok_or(ConnectError::TableFull)?;
    let mut tcb = Tcb::new(State::SynSent, hop);
    tcb.snd_una = iss;
    tcb.snd_nxt = iss + 1;
    tcb.user = user;
    tcb.mss = our_mss::<K>(ctx.cfg.mss);
    tcb.set(flags::RTT_TIMING);
    tcb.rtt_seq = iss + 1;
    tcb.rtt_start_us = ctx.now_us();
    let Ok(h) = flows.table.insert_hashed(hash, key, tcb) else {
        ctx.hops.release(hop);
        return Err(ConnectError::TableFull);
    };
    ctx.live += 1;
    let (key, tcb) = flows.table.entry_mut(h);
    emit_syn(ctx, key, tcb, sink);
    let rto = flows.table.get(h).rto_ns(&ctx.cfg);
    flows.wheel.arm(h, ctx.now.add_nanos(rto));
    Ok(flows.id(h))
}
