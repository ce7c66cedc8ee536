//! One worker's turn of the load loop, over any [`PacketIo`]: take what other workers handed over, receive a
//! batch, run due timers, abort connections past their deadline, start every connection now due, top the ring up
//! with flood frames, flush.
//!
//! It owns one endpoint (client role), its schedule, its source tuples and its optional flood. It never reads a
//! clock or sleeps: the runner passes `now` (and a clock, read once per receive batch) in and decides how to
//! wait, so tests drive it in virtual time over the in-memory ring pair. No allocation per connection or per
//! frame once the slab is warm, but for a segment that came in on another worker's queue (copied to its owner).

use super::app::{Failure, LoadApp};
use super::flood::{tcp_dst, Flooder};
use super::handoff::Handoff;
use super::schedule::{Due, Schedule};
use super::tuples::TupleAllocator;
use crate::io::testing::MemIo;
use crate::io::{IoError, PacketIo, XskSocket};
use crate::sink::FrameSink;
use crate::tcp::{ConnectError, Endpoint};
use crate::time::Instant;
use crate::wire::MacAddr;
use std::net::SocketAddr;
use std::time::Duration;

/// Starts skipped per turn because the generator was already past their timeout (they send nothing, but each
/// still takes a record and a histogram entry: bounded so that a turn stays short while the schedule catches up).
const MAX_SKIPS_PER_TURN: usize = 4096;

/// How many frames the transmit side can take right now, and holds in all.
pub trait TxRoom {
    fn tx_room(&mut self) -> usize;
    /// The whole TX pool: the reserve for replies is capped by it (see [`Driver::turn`]).
    fn tx_pool(&mut self) -> usize;
}

impl TxRoom for XskSocket {
    #[inline]
    fn tx_room(&mut self) -> usize {
        self.sink().free_frames()
    }

    #[inline]
    fn tx_pool(&mut self) -> usize {
        self.sink().pool_frames()
    }
}

impl TxRoom for MemIo {
    /// What the pair's outbound direction can still lend, as a real socket's free frames between flushes.
    fn tx_room(&mut self) -> usize {
        self.tx_free()
    }

    fn tx_pool(&mut self) -> usize {
        self.tx_capacity()
    }
}

/// What one turn did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Turn {
    pub received: usize,
    pub started: usize,
    pub flooded: usize,
}

impl Turn {
    pub fn idle(&self) -> bool {
        self.received == 0 && self.started == 0 && self.flooded == 0
    }
}

/// The state of one worker's load.
#[derive(Debug)]
pub struct Driver {
    pub ep: Endpoint<LoadApp>,
    pub sched: Schedule,
    tuples: TupleAllocator,
    target: SocketAddr,
    peer_mac: MacAddr,
    pub flood: Option<Flooder>,
    batch: usize,
    /// TX frames kept free for replies to a full receive batch.
    reserve: usize,
    /// Actual time of the latest measured start.
    pub last_measured_start: Option<Instant>,
    /// Set when the schedule finished: nothing new starts, in-flight connections finish.
    drain_deadline: Option<Instant>,
    /// Frames addressed outside our source range (another process's flood): dropped unread.
    pub foreign: u64,
    /// Closed loop: starts that found every source tuple live or in TIME-WAIT and waited for one (each counted
    /// once, however many turns it waited).
    pub tuple_waits: u64,
    /// A closed-loop start is waiting for a tuple.
    waiting_for_tuple: bool,
    /// With several workers: where segments for another worker's tuples go, and come from.
    pub handoff: Option<Handoff>,
}

/// What became of one start.
enum Start {
    /// Its SYN went out.
    Sent,
    /// It failed without a SYN (counted).
    Failed,
    /// Closed loop: no free tuple; handed back to the schedule, to be made once a tuple frees.
    NoTuple,
}

/// Receive batches one turn takes at most while they come full.
const RX_BATCHES_PER_TURN: usize = 8;

impl Driver {
    pub fn new(
        ep: Endpoint<LoadApp>,
        sched: Schedule,
        tuples: TupleAllocator,
        target: SocketAddr,
        peer_mac: MacAddr,
        flood: Option<Flooder>,
        batch: usize,
    ) -> Self {
        Driver {
            ep,
            sched,
            tuples,
            target,
            peer_mac,
            flood,
            batch: batch.max(1),
            reserve: batch.max(1) * 3,
            last_measured_start: None,
            drain_deadline: None,
            foreign: 0,
            tuple_waits: 0,
            waiting_for_tuple: false,
            handoff: None,
        }
    }

    /// One turn at `now`, in which no time passes (virtual time).
    #[inline]
    pub fn turn<P: PacketIo + TxRoom>(&mut self, now: Instant, io: &mut P) -> Result<Turn, IoError> {
        self.turn_clocked(now, io, || now)
    }

    /// One turn from `now`, asking `clock` for the time again before each receive batch after the first: a
    /// frame read after a few batches of work arrived that much later than the turn began, and stamped with the
    /// turn's start its connect or response latency would read short by as much. One clock read per batch, not
    /// per frame.
    #[inline]
    pub fn turn_clocked<P: PacketIo + TxRoom>(
        &mut self,
        mut now: Instant,
        io: &mut P,
        mut clock: impl FnMut() -> Instant,
    ) -> Result<Turn, IoError> {
        self.ep.app_mut().now = now;
        let Driver { ep, flood, tuples, foreign, handoff, .. } = self;
        let ours = *tuples.range();
        // What other workers received for our tuples, as if it had come in here.
        let mut received = handoff.as_ref().map_or(0, |h| h.take(|frame| ep.handle_frame(now, frame, io.sink())));
        // The reserve for replies never takes more than half the pool: taken whole (`--ring 64` with a batch of
        // 64 made a pool of 128 and a reserve of 192), no start ever had room, the schedule was never asked
        // again, so it never ended either, and the worker spun for ever with nothing in flight.
        let reserve = self.reserve.min(io.tx_pool() / 2);
        // Replies first: a backlog on the receive ring (after a stall, or at a rate past what this core can do)
        // is drained before anything new starts. Left there, it overflows the fill ring, the kernel drops the
        // replies, and each lost SYN-ACK comes back a second later as a retransmitted SYN: more work, more loss.
        for round in 0..RX_BATCHES_PER_TURN {
            if round > 0 {
                if io.tx_room() < reserve {
                    io.flush()?;
                }
                now = clock().max(now);
                ep.app_mut().now = now;
            }
            let got = io.recv(self.batch, |frame, sink| {
                let dst = tcp_dst(frame);
                if let Some(f) = flood.as_mut() {
                    if f.take_reply_to(dst) {
                        return;
                    }
                }
                // Replies to someone else's spoofed sources would only draw RSTs from the endpoint.
                if dst.is_some_and(|(dst, _)| !ours.contains(dst.ip())) {
                    *foreign += 1;
                    return;
                }
                // A reply on our queue for another worker's connection: its owner handles it, or it would
                // draw our RST and the owner's connection would time out.
                if let Some(h) = handoff.as_mut() {
                    if let Some(owner) = dst.and_then(|(t, _)| tuples.owner(t)).filter(|&o| o != h.me()) {
                        h.send(owner, frame);
                        return;
                    }
                }
                ep.handle_frame(now, frame, sink);
            });
            received += got;
            if got < self.batch {
                break;
            }
        }
        // Asked every turn: the wheel keeps its answer until timers fire, so this costs no scan.
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now, io.sink());
        }
        self.expire(now, io.sink());
        let mut started = 0;
        // At most a batch of starts per turn: a schedule that fell behind catches up over several turns, each
        // of which takes in replies first, instead of in one burst while the receive ring overflows. Starts
        // that come late are measured from their intended time all the same.
        let room = io.tx_room().saturating_sub(reserve).min(self.batch);
        let mut skipped = 0;
        while started < room && skipped < MAX_SKIPS_PER_TURN {
            let in_flight = self.ep.app().in_flight();
            let Some(due) = self.sched.next_due(now, in_flight) else { break };
            let made = self.start(due, now, io.sink());
            if due.measured && !matches!(made, Start::NoTuple) {
                self.last_measured_start = Some(now);
            }
            match made {
                Start::Sent => {
                    started += 1;
                    self.waiting_for_tuple = false;
                }
                Start::Failed => skipped += 1,
                Start::NoTuple => {
                    // Failing it instead would free its place in flight for the next start, which would find no
                    // tuple either: thousands of instant failures a turn until a TIME-WAIT ran out.
                    self.sched.give_back(due);
                    self.tuple_waits += u64::from(!self.waiting_for_tuple);
                    self.waiting_for_tuple = true;
                    break;
                }
            }
        }
        let mut flooded = 0;
        if let Some(f) = self.flood.as_mut() {
            if !self.sched.finished() {
                let room = io.tx_room().saturating_sub(reserve + started);
                flooded = f.fill(now, io.sink(), room);
            }
        }
        io.flush()?;
        if self.sched.finished() && self.drain_deadline.is_none() {
            self.drain_deadline = Some(now + self.ep.app().plan().timeout + Duration::from_secs(1));
        }
        Ok(Turn { received, started, flooded })
    }

    /// Aborts every connection whose deadline has passed (each counts as a timeout).
    #[inline]
    fn expire<S: FrameSink>(&mut self, now: Instant, sink: &mut S) {
        while let Some((slot, id)) = self.ep.app_mut().next_expired(now) {
            let aborted = id.and_then(|id| self.ep.with_conn(now, id, sink, |c| c.abort()));
            if aborted.is_none() {
                self.ep.app_mut().forget(slot);
            }
        }
    }

    /// Starts one connection: a record, a free tuple, the SYN.
    #[inline]
    fn start<S: FrameSink>(&mut self, due: Due, now: Instant, sink: &mut S) -> Start {
        let slot = self.ep.app_mut().begin(due);
        // An open loop's start has its time and fails without a tuple; a closed loop's waits for one.
        let no_tuple = |d: &mut Self| {
            if d.sched.is_closed_loop() {
                d.ep.app_mut().withdraw(slot);
                Start::NoTuple
            } else {
                d.ep.app_mut().launch_failed(slot, Failure::TupleExhausted);
                Start::Failed
            }
        };
        // Past its own limit an open-loop generator falls further behind every second, until each start is
        // made with its timeout all but spent: it then times out, its SYN-ACK arrives for a connection aborted
        // in the meantime and draws a RST, and the core works on nothing but failures (at 400 k/s offered on
        // the bench's pair, 91 k/s completed where 150 k/s could). A start with less than half its timeout left
        // is therefore not sent but counted as the generator's failure: the lag then settles at half the
        // timeout, and what is started has time to finish. Its lag is on record in `start_lag` all the same.
        if now > due.intended + self.ep.app().plan().timeout / 2 {
            self.ep.app_mut().launch_failed(slot, Failure::GeneratorBehind);
            return Start::Failed;
        }
        // Every tuple of the partition is live or in TIME-WAIT: exhausted, without probing.
        let held = (self.ep.live_connections() + self.ep.time_wait_len()) as u64;
        if held >= self.tuples.space() {
            return no_tuple(self);
        }
        let target = self.target;
        for _ in 0..4 {
            let ep = &self.ep;
            let Some(local) = self.tuples.next(|t| ep.in_time_wait(t, target)) else { break };
            // `next` vouches: a first-round tuple was never used, a later one was checked by `in_time_wait`.
            match self.ep.connect_fresh(now, local, target, self.peer_mac, slot, sink) {
                Ok(id) => {
                    self.ep.app_mut().launched(slot, id);
                    return Start::Sent;
                }
                Err(ConnectError::InUse | ConnectError::InTimeWait) => continue,
                Err(ConnectError::TableFull | ConnectError::FamilyMismatch) => {
                    self.ep.app_mut().launch_failed(slot, Failure::ConnectError);
                    return Start::Failed;
                }
            }
        }
        no_tuple(self)
    }

    /// Stops starting connections (a signal); in-flight ones get `grace` to finish.
    pub fn stop(&mut self, now: Instant, grace: Duration) {
        self.sched.stop();
        let d = now + grace;
        self.drain_deadline = Some(self.drain_deadline.map_or(d, |x| x.min(d)));
    }

    /// Nothing more to do: the schedule is over and every connection has ended (or the drain ran out).
    pub fn done(&self, now: Instant) -> bool {
        self.sched.finished() && (self.ep.app().in_flight() == 0 || self.drain_deadline.is_some_and(|d| now >= d))
    }

    /// Aborts whatever is still live (counted as `aborted`, or `timeout` if already past its deadline) and
    /// flushes.
    pub fn finish<P: PacketIo>(&mut self, now: Instant, io: &mut P) -> Result<(), IoError> {
        self.ep.app_mut().now = now;
        self.expire(now, io.sink());
        let live: Vec<_> = self.ep.app().live_slots().collect();
        for (slot, id) in live {
            if id.and_then(|id| self.ep.with_conn(now, id, io.sink(), |c| c.abort())).is_none() {
                self.ep.app_mut().forget(slot);
            }
        }
        io.flush()
    }

    /// When the next connection is due (open loop), for sleeping.
    pub fn next_due_time(&self) -> Option<Instant> {
        self.sched.next_time()
    }

    /// When a turn next has work that no frame brings: the endpoint's timers (retransmissions, TIME-WAIT
    /// expiry), the oldest connection's deadline, the end of the drain. A sleep must not run past it, or a SYN
    /// retransmission or a timeout fires that much late.
    pub fn next_timer(&self) -> Option<Instant> {
        [self.ep.poll_timeout(), self.ep.app().next_deadline(), self.drain_deadline].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{App, CloseApp, EchoApp, HttpApp};
    use crate::io::testing::pair;
    use crate::load::app::{CloseBy, Plan, Request};
    use crate::load::flood::{FloodKind, FloodSpec};
    use crate::load::schedule::{Bound, Pace};
    use crate::load::tuples::SrcRange;
    use crate::tcp::cookie::KeyRing;
    use crate::tcp::Config;

    const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
    const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x51]);
    const START: Instant = Instant::from_secs(1000);

    fn target() -> SocketAddr {
        "10.77.0.1:8080".parse().unwrap()
    }

    struct Setup {
        pace: Pace,
        bound: Bound,
        plan: Plan,
        src: &'static str,
        ports: std::ops::RangeInclusive<u16>,
        time_wait: Duration,
        warmup: Duration,
        flood: Option<FloodKind>,
        /// Frames each direction of the pair holds (the client's TX pool).
        tx_pool: usize,
    }

    impl Default for Setup {
        fn default() -> Self {
            Setup {
                pace: Pace::Rate(100_000.0),
                bound: Bound::Count(2000),
                plan: Plan { request: Request::None, close: CloseBy::Client, timeout: Duration::from_secs(3) },
                src: "10.77.1.0/24",
                ports: 1024..=65535,
                time_wait: Duration::from_secs(60),
                warmup: Duration::ZERO,
                flood: None,
                tx_pool: 8192,
            }
        }
    }

    /// Runs a whole load against `server_app` over the in-memory pair in virtual time (10 µs per turn, the wire
    /// delivering at each flush). Returns the driver and the server endpoint at the end.
    fn run<S: App>(s: Setup, server_app: S) -> (Driver, Endpoint<S>) {
        let (mut d, mut server, mut cio, mut sio) = build(s, server_app);
        let now = drive(&mut d, &mut server, &mut cio, &mut sio, START);
        d.finish(now, &mut cio).unwrap();
        (d, server)
    }

    /// Turns of 10 µs from `now` (driver, then server) until the driver is done; returns the time it was.
    fn drive<S: App>(
        d: &mut Driver,
        server: &mut Endpoint<S>,
        cio: &mut MemIo,
        sio: &mut MemIo,
        mut now: Instant,
    ) -> Instant {
        for _ in 0..2_000_000 {
            d.turn(now, cio).unwrap();
            serve(server, sio, now);
            if d.done(now) {
                break;
            }
            now += Duration::from_micros(10);
        }
        assert!(d.done(now), "the run never finished");
        now
    }

    /// The server takes everything waiting for it (in batches of 256) and answers.
    fn serve<S: App>(server: &mut Endpoint<S>, sio: &mut MemIo, now: Instant) {
        while sio.recv(256, |f, sink| server.handle_frame(now, f, sink)) > 0 {}
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now, sio.sink());
        }
        sio.flush().unwrap();
    }

    /// A driver (receive batches of 64) and a listening server joined by the in-memory pair.
    fn build<S: App>(s: Setup, server_app: S) -> (Driver, Endpoint<S>, MemIo, MemIo) {
        let (cio, sio) = pair(s.tx_pool);
        let scfg = Config { local_mac: SERVER_MAC, ..Config::default() };
        let slot = crate::tcp::cookie::slot_at(START.as_nanos());
        let mut server = Endpoint::new(scfg, server_app, START);
        server.set_cookie_keys(KeyRing::from_seed(9, slot - 1..=slot + 1));
        server.listen(target().port());
        let ccfg = Config { local_mac: CLIENT_MAC, time_wait: s.time_wait, ..Config::default() };
        let ep = Endpoint::new(ccfg, LoadApp::new(s.plan, 1024), START);
        let sched = Schedule::new(s.pace, s.bound, START, s.warmup, 0, 1);
        let tuples = TupleAllocator::new(SrcRange::parse(s.src).unwrap(), s.ports).unwrap();
        let flood = s.flood.map(|kind| {
            let spec = FloodSpec {
                kind,
                src: SrcRange::parse("10.77.9.0/24").unwrap(),
                src_ports: 1024..=65535,
                target: target(),
                src_mac: CLIENT_MAC,
                dst_mac: SERVER_MAC,
                pps: Some(50_000.0),
            };
            Flooder::new(spec, 5)
        });
        let d = Driver::new(ep, sched, tuples, target(), SERVER_MAC, flood, 64);
        (d, server, cio, sio)
    }

    fn counts(d: &Driver) -> crate::load::app::Counts {
        d.ep.app().counts
    }

    #[test]
    fn handshake_and_client_close_against_echo_all_complete_and_keep_time_wait() {
        let (d, server) = run(Setup::default(), EchoApp);
        let c = counts(&d);
        assert_eq!((c.started, c.opened, c.completed, c.failed_total()), (2000, 2000, 2000, 0), "{c:?}");
        let h = &d.ep.app().hist;
        assert_eq!((h.connect.len(), h.lifetime.len(), h.response.len()), (2000, 2000, 0));
        // Virtual time: one turn of 10 µs per hop; the handshake takes a couple of turns.
        assert!(h.connect.max() <= 100, "connect max {} µs", h.connect.max());
        assert_eq!(d.ep.time_wait_len(), 2000, "the client closed first: it holds TIME-WAIT");
        assert_eq!(d.ep.live_connections(), 0);
        assert_eq!((server.live_connections(), server.time_wait_len()), (0, 0));
        assert_eq!(d.ep.app().in_flight(), 0);
    }

    #[test]
    fn a_send_pool_smaller_than_three_batches_still_starts_every_connection() {
        // Found by a review: `--ring 64` with the default batch of 64 gave a pool of 128 send frames against a
        // reserve of 192 for replies; no start ever had room and the run never ended.
        let s = Setup { tx_pool: 128, bound: Bound::Count(300), ..Setup::default() };
        let (d, _) = run(s, EchoApp);
        let c = counts(&d);
        assert_eq!((c.started, c.completed, c.failed_total()), (300, 300, 0), "{c:?}");
    }

    #[test]
    fn echo_requests_come_back_byte_for_byte() {
        let bytes: &'static [u8] =
            Box::leak((0..3000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into_boxed_slice());
        let plan = Plan { request: Request::Echo(bytes), close: CloseBy::Client, timeout: Duration::from_secs(3) };
        let (d, _) = run(Setup { plan, bound: Bound::Count(300), ..Setup::default() }, EchoApp);
        let c = counts(&d);
        assert_eq!((c.completed, c.failed_total()), (300, 0), "{c:?}");
        assert_eq!(d.ep.app().hist.response.len(), 300);
    }

    #[test]
    fn http_with_client_close_and_with_server_close() {
        for (close, conn) in [(CloseBy::Client, "keep-alive"), (CloseBy::Server, "close")] {
            let req = format!("GET / HTTP/1.1\r\nHost: 10.77.0.1:8080\r\nConnection: {conn}\r\n\r\n");
            let req: &'static [u8] = Box::leak(req.into_bytes().into_boxed_slice());
            let plan = Plan { request: Request::Http(req), close, timeout: Duration::from_secs(3) };
            let (d, server) = run(Setup { plan, bound: Bound::Count(500), ..Setup::default() }, HttpApp::default());
            let c = counts(&d);
            assert_eq!((c.completed, c.failed_total()), (500, 0), "{close:?}: {c:?}");
            assert_eq!(d.ep.app().hist.response.len(), 500);
            match close {
                CloseBy::Client => assert_eq!((d.ep.time_wait_len(), server.time_wait_len()), (500, 0)),
                CloseBy::Server => assert_eq!((d.ep.time_wait_len(), server.time_wait_len()), (0, 500)),
            }
        }
    }

    #[test]
    fn server_close_app_and_closed_loop() {
        let plan = Plan { request: Request::None, close: CloseBy::Server, timeout: Duration::from_secs(3) };
        let s = Setup { plan, pace: Pace::Concurrency(16), bound: Bound::Count(1000), ..Setup::default() };
        let (d, server) = run(s, CloseApp);
        let c = counts(&d);
        assert_eq!((c.started, c.completed, c.failed_total()), (1000, 1000, 0), "{c:?}");
        assert_eq!(server.time_wait_len(), 1000, "the server closed first");
    }

    #[test]
    fn a_closed_port_counts_as_refused_and_a_silent_server_as_timeout() {
        /// Answers nothing: drops every frame (a black hole).
        struct Refuse;
        impl App for Refuse {
            fn on_data(&mut self, _: &mut crate::app::Conn<'_>, d: &[u8]) -> usize {
                d.len()
            }
        }
        // Nobody listens on port 9: the server's endpoint answers every SYN with RST.
        let (mut cio, mut sio) = pair(4096);
        let mut server = Endpoint::new(Config { local_mac: SERVER_MAC, ..Config::default() }, Refuse, START);
        let plan = Plan { request: Request::None, close: CloseBy::Client, timeout: Duration::from_millis(50) };
        let ep = Endpoint::new(Config { local_mac: CLIENT_MAC, ..Config::default() }, LoadApp::new(plan, 16), START);
        let sched = Schedule::new(Pace::Rate(10_000.0), Bound::Count(20), START, Duration::ZERO, 0, 1);
        let tuples = TupleAllocator::new(SrcRange::parse("10.77.1.9").unwrap(), 2000..=2999).unwrap();
        let closed: SocketAddr = "10.77.0.1:9".parse().unwrap();
        let mut d = Driver::new(ep, sched, tuples, closed, SERVER_MAC, None, 64);
        let mut now = START;
        let mut black_hole = false;
        while !d.done(now) {
            d.turn(now, &mut cio).unwrap();
            if black_hole {
                sio.recv(256, |_, _| {});
            } else {
                sio.recv(256, |f, sink| server.handle_frame(now, f, sink));
            }
            sio.flush().unwrap();
            now += Duration::from_micros(100);
            // The second half of the run meets a black hole instead.
            black_hole = d.sched.started >= 10;
        }
        d.finish(now, &mut cio).unwrap();
        let c = counts(&d);
        assert_eq!(c.failed(Failure::Refused), 10, "{c:?}");
        assert_eq!(c.failed(Failure::Timeout), 10, "{c:?}");
        assert_eq!(c.completed, 0);
        assert_eq!(d.ep.app().last_completion, None, "failures do not end a closed loop's measured span");
        assert_eq!(d.ep.live_connections(), 0, "timed-out connections were aborted");
    }

    #[test]
    fn tuples_in_time_wait_are_never_reused_and_exhaustion_is_counted() {
        // 1 address × 50 ports and a TIME-WAIT longer than the run: the first 50 complete, the rest find no tuple.
        let s = Setup { src: "10.77.1.9", ports: 3000..=3049, bound: Bound::Count(80), ..Setup::default() };
        let (d, _) = run(s, EchoApp);
        let c = counts(&d);
        assert_eq!(c.completed, 50, "{c:?}");
        assert_eq!(c.failed(Failure::TupleExhausted), 30, "{c:?}");
        assert_eq!(d.ep.time_wait_len(), 50);
        // Once TIME-WAIT has run out, the same tuples serve again.
        let s = Setup {
            src: "10.77.1.9",
            ports: 3000..=3049,
            pace: Pace::Rate(1000.0),
            bound: Bound::Count(150),
            time_wait: Duration::from_millis(40),
            ..Setup::default()
        };
        let (d, _) = run(s, EchoApp);
        let c = counts(&d);
        assert_eq!((c.completed, c.failed_total()), (150, 0), "{c:?}");
    }

    #[test]
    fn a_closed_loop_out_of_tuples_waits_for_one_instead_of_failing_start_after_start() {
        // Found by a review: with every tuple live or in TIME-WAIT, each closed-loop start failed at once as
        // `tuple_exhausted`, which freed its place for the next start, which failed too: thousands a turn.
        let s = Setup {
            src: "10.77.1.9",
            ports: 3000..=3049,
            pace: Pace::Concurrency(4),
            bound: Bound::Duration(Duration::from_millis(100)),
            ..Setup::default()
        };
        let (d, _) = run(s, EchoApp);
        let c = counts(&d);
        assert_eq!((c.started, c.completed, c.failed_total()), (50, 50, 0), "{c:?}");
        assert_eq!(d.tuple_waits, 1, "one start waited, from the 51st on, until the end of the run");
        assert_eq!(d.sched.started, 50, "nothing started but what had a tuple");
        assert_eq!(d.ep.app().hist.start_lag.len(), 50);
        // Once a TIME-WAIT runs out, the waiting start takes its tuple.
        let s = Setup {
            src: "10.77.1.9",
            ports: 3000..=3049,
            pace: Pace::Concurrency(4),
            bound: Bound::Count(120),
            time_wait: Duration::from_millis(5),
            ..Setup::default()
        };
        let (d, _) = run(s, EchoApp);
        let c = counts(&d);
        assert_eq!((c.completed, c.failed_total()), (120, 0), "{c:?}");
        assert!(d.tuple_waits >= 1, "the space ran out at least once: {}", d.tuple_waits);
    }

    #[test]
    fn the_next_timer_is_the_syns_retransmission_then_the_connections_deadline() {
        // One connection every 10 s into a black hole, timeout 3 s: the worker may sleep towards the next start
        // only until the SYN's retransmission (RFC 6298's first RTO, 1 s), and never past the deadline.
        let (mut cio, _peer) = pair(64);
        let plan = Plan { request: Request::None, close: CloseBy::Client, timeout: Duration::from_secs(3) };
        let ep = Endpoint::new(Config { local_mac: CLIENT_MAC, ..Config::default() }, LoadApp::new(plan, 16), START);
        let sched = Schedule::new(Pace::Rate(0.1), Bound::Count(2), START, Duration::ZERO, 0, 1);
        let tuples = TupleAllocator::new(SrcRange::parse("10.77.1.9").unwrap(), 2000..=2999).unwrap();
        let mut d = Driver::new(ep, sched, tuples, target(), SERVER_MAC, None, 64);
        assert_eq!(d.turn(START, &mut cio).unwrap().started, 1);
        assert_eq!(d.next_due_time(), Some(START + Duration::from_secs(10)));
        let rto = d.next_timer().unwrap();
        assert!(rto > START && rto <= START + Duration::from_secs(1), "{:?}", rto - START);
        assert_eq!(d.ep.app().next_deadline(), Some(START + Duration::from_secs(3)));
    }

    #[test]
    fn replies_that_come_in_on_the_other_workers_queue_are_handed_to_the_owner_not_reset() {
        // Found by a review: tuples are split between workers by index, but a peer may answer on any queue. A
        // SYN-ACK for worker 0's connection read by worker 1 drew worker 1's RST, and worker 0's connection
        // timed out. Here the server answers every segment on the other queue.
        let plan = Plan { request: Request::None, close: CloseBy::Client, timeout: Duration::from_millis(200) };
        let mut server = Endpoint::new(Config { local_mac: SERVER_MAC, ..Config::default() }, EchoApp, START);
        let slot = crate::tcp::cookie::slot_at(START.as_nanos());
        server.set_cookie_keys(KeyRing::from_seed(9, slot - 1..=slot + 1));
        server.listen(target().port());
        let (mut mesh, mut workers, mut queues) = (Handoff::mesh(2).into_iter(), Vec::new(), Vec::new());
        for w in 0..2 {
            let (cio, sio) = pair(4096);
            let cfg = Config { local_mac: CLIENT_MAC, ..Config::default() };
            let ep = Endpoint::new(cfg, LoadApp::new(plan, 64), START);
            let sched = Schedule::new(Pace::Rate(20_000.0), Bound::Count(200), START, Duration::ZERO, w, 2);
            let tuples = TupleAllocator::partition(SrcRange::parse("10.77.1.9").unwrap(), 3000..=3999, w, 2).unwrap();
            let mut d = Driver::new(ep, sched, tuples, target(), SERVER_MAC, None, 64);
            d.handoff = mesh.next().flatten();
            workers.push((d, cio));
            queues.push(sio);
        }
        let mut now = START;
        while !workers.iter().all(|(d, _)| d.done(now)) {
            for (d, cio) in workers.iter_mut() {
                d.turn(now, cio).unwrap();
            }
            let (q0, q1) = queues.split_at_mut(1);
            let (q0, q1) = (&mut q0[0], &mut q1[0]);
            while q0.recv(256, |f, _| server.handle_frame(now, f, q1.sink())) > 0 {}
            while q1.recv(256, |f, _| server.handle_frame(now, f, q0.sink())) > 0 {}
            q0.flush().unwrap();
            q1.flush().unwrap();
            now += Duration::from_micros(10);
            assert!(now < START + Duration::from_secs(5), "the run never finished");
        }
        for (w, (d, _)) in workers.iter().enumerate() {
            let c = counts(d);
            assert_eq!((c.started, c.completed, c.failed_total()), (100, 100, 0), "worker {w}: {c:?}");
            assert_eq!(d.ep.stats().rsts_sent, 0, "worker {w} reset nothing");
            let h = d.handoff.as_ref().unwrap();
            // Each connection's SYN-ACK and its FIN-ACK's ACK come back on the other queue.
            assert!(
                h.handed_off >= 200 && h.dropped == 0,
                "worker {w}: {} handed off, {} dropped",
                h.handed_off,
                h.dropped
            );
        }
    }

    #[test]
    fn warm_up_connections_are_not_measured() {
        let s = Setup { warmup: Duration::from_millis(5), bound: Bound::Count(100), ..Setup::default() };
        let (d, _) = run(s, EchoApp);
        let c = counts(&d);
        assert_eq!((c.started, c.completed, c.warmup), (100, 100, 500), "{c:?}");
        assert_eq!(d.ep.app().hist.connect.len(), 100);
    }

    #[test]
    fn frames_to_addresses_outside_the_source_range_are_dropped_unread() {
        let (mut cio, _peer) = pair(64);
        let plan = Plan { request: Request::None, close: CloseBy::Client, timeout: Duration::from_secs(1) };
        let ep = Endpoint::new(Config { local_mac: CLIENT_MAC, ..Config::default() }, LoadApp::new(plan, 16), START);
        let sched =
            Schedule::new(Pace::Rate(1.0), Bound::Count(1), START + Duration::from_secs(9), Duration::ZERO, 0, 1);
        let tuples = TupleAllocator::new(SrcRange::parse("10.77.1.0/24").unwrap(), 1024..=65535).unwrap();
        let mut d = Driver::new(ep, sched, tuples, target(), SERVER_MAC, None, 64);
        // A SYN-ACK from the target to someone else's spoofed source, and one to ours that matches nothing.
        let mut flood = Flooder::new(
            FloodSpec {
                kind: FloodKind::Syn,
                src: SrcRange::parse("10.77.0.1").unwrap(),
                src_ports: 8080..=8080,
                target: "10.99.0.1:4000".parse().unwrap(),
                src_mac: SERVER_MAC,
                dst_mac: CLIENT_MAC,
                pps: None,
            },
            1,
        );
        let mut buf = [0u8; 128];
        let n = flood.write_frame(&mut buf);
        cio.inject(&buf[..n]);
        d.turn(START, &mut cio).unwrap();
        assert_eq!(d.foreign, 1);
        assert_eq!(d.ep.stats().frames_in, 0, "never reached the endpoint");
        let mut to_ours =
            Flooder::new(FloodSpec { target: "10.77.1.5:4000".parse().unwrap(), ..flood.spec().clone() }, 2);
        let n = to_ours.write_frame(&mut buf);
        cio.inject(&buf[..n]);
        d.turn(START, &mut cio).unwrap();
        assert_eq!((d.foreign, d.ep.stats().frames_in), (1, 1), "ours goes to the endpoint");
    }

    #[test]
    fn a_flood_beside_the_load_takes_its_replies_and_leaves_the_load_intact() {
        let s = Setup { flood: Some(FloodKind::Syn), bound: Bound::Count(1000), ..Setup::default() };
        let (d, server) = run(s, EchoApp);
        let c = counts(&d);
        assert_eq!((c.completed, c.failed_total()), (1000, 0), "{c:?}");
        let f = d.flood.as_ref().unwrap();
        assert!(f.sent >= 400, "50 k/s for about 10 ms: {}", f.sent);
        assert_eq!(f.replies.syn_ack, f.sent, "every spoofed SYN got its SYN-ACK, none reached the endpoint");
        assert_eq!(d.ep.stats().rsts_sent, 0, "the endpoint never answered a flood reply");
        assert_eq!(d.foreign, 0);
        assert_eq!(server.stats().cookies_sent, f.sent + 1000);
    }

    #[test]
    fn a_schedule_that_fell_behind_catches_up_a_batch_per_turn_taking_replies_first() {
        // 100 k/s: a first turn 10 ms late finds 1000 connections due. It starts one batch of them; the
        // rest follow turn by turn, each turn taking in every reply waiting (more than one batch) first.
        let (mut d, mut server, mut cio, mut sio) = build(Setup::default(), EchoApp);
        let now = START + Duration::from_millis(10);
        for _ in 0..3 {
            let t = d.turn(now, &mut cio).unwrap();
            assert_eq!((t.received, t.started), (0, 64), "a batch of starts per turn, however late");
        }
        serve(&mut server, &mut sio, now);
        let t = d.turn(now, &mut cio).unwrap();
        assert_eq!(t.received, 192, "all three batches' SYN-ACKs in one turn");
        assert_eq!(t.started, 64);
        let lag = d.ep.app().hist.connect.max();
        assert!(lag >= 10_000, "late starts are measured from their intended time: {lag} µs");
        serve(&mut server, &mut sio, now);
        drive(&mut d, &mut server, &mut cio, &mut sio, now + Duration::from_micros(10));
        let c = counts(&d);
        assert_eq!((c.started, c.completed, c.failed_total()), (2000, 2000, 0), "{c:?}");
    }

    #[test]
    fn replies_read_in_a_later_batch_of_a_turn_are_stamped_with_the_time_of_their_batch() {
        // Found by a review: every reply of a turn was stamped with the turn's start, so those read after a few
        // batches of work had latencies too short by that work. A clock 100 ms on at each reading makes the
        // difference plain: the first batch reads about 10 ms of connect latency, the later ones over 100 ms.
        let (mut d, mut server, mut cio, mut sio) = build(Setup::default(), EchoApp);
        let now = START + Duration::from_millis(10);
        for _ in 0..3 {
            d.turn(now, &mut cio).unwrap();
        }
        serve(&mut server, &mut sio, now);
        let mut later = now;
        let t = d
            .turn_clocked(now, &mut cio, || {
                later += Duration::from_millis(100);
                later
            })
            .unwrap();
        assert_eq!(t.received, 192);
        let h = &d.ep.app().hist.connect;
        assert_eq!(h.len(), 192);
        assert!(h.min() <= 10_000, "the first batch, read at the turn's start: {} µs", h.min());
        assert_eq!(h.count_between(100_000, 300_000), 128, "the second and third batches, read 100 and 200 ms on");
    }

    #[test]
    fn starts_with_less_than_half_their_timeout_left_are_counted_and_never_sent() {
        // 100 k/s with a 5 ms timeout, and a first turn 20 ms late: the 1750 connections intended before 17.5 ms
        // are counted as the generator's own failure without a frame; the rest have time to finish, and do.
        let plan = Plan { request: Request::None, close: CloseBy::Client, timeout: Duration::from_millis(5) };
        let (mut d, mut server, mut cio, mut sio) = build(Setup { plan, ..Setup::default() }, EchoApp);
        let now = START + Duration::from_millis(20);
        let t = d.turn(now, &mut cio).unwrap();
        assert_eq!(t.started, 64, "skipped starts take no room from the ones that can still succeed");
        assert_eq!(counts(&d).failed(Failure::GeneratorBehind), 1750);
        serve(&mut server, &mut sio, now);
        let end = drive(&mut d, &mut server, &mut cio, &mut sio, now + Duration::from_micros(10));
        d.finish(end, &mut cio).unwrap();
        let c = counts(&d);
        assert_eq!((c.started, c.completed, c.failed_total()), (2000, 250, 1750), "{c:?}");
        assert_eq!(server.stats().cookies_sent, 250, "a SYN went out for the others only");
        assert_eq!(d.ep.stats().rsts_sent, 0, "nothing was aborted");
        assert_eq!(d.ep.app().hist.start_lag.len(), 2000, "the lag of every start is on record");
    }
}
