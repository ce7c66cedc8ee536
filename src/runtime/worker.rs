//! One worker: a thread that owns one queue's socket, one endpoint and its timers, and nothing shared.
//!
//! The loop: take a batch of frames, hand each to the endpoint with the socket's TX sink, run due timers,
//! flush (submit, kick only if asked, recycle), report counters now and then, and sleep in poll(2) when there is
//! nothing to do (unless busy-polling). The only cross-thread traffic is crossbeam channels: commands in (keys,
//! drain, exit), reports out, and with several workers the rare ICMP "too big" message that quotes a connection
//! of another worker ([`IcmpPeers`]). No lock is taken.

use crate::app::App;
use crate::io::testing::MemIo;
use crate::io::{IoError, PacketIo, XskSocket, XskStats};
use crate::runtime::clock::Clock;
use crate::runtime::fault::{Dice, Loss, LossySink};
use crate::tcp::cookie::KeyRing;
use crate::tcp::{Endpoint, Memory, Stats};
use crossbeam::channel::{Receiver, Sender, TryRecvError};
use std::time::Duration;

/// What the control thread tells a worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// Swap in a new cookie key ring (rotation).
    Keys(KeyRing),
    /// Stop taking new connections; keep serving live ones.
    Drain,
    /// Leave: reset whatever is still live, flush, and return.
    Exit,
}

/// What a worker tells the control thread, periodically and when it leaves.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub worker: usize,
    pub stats: Stats,
    pub io: Option<XskStats>,
    pub memory: Memory,
    /// Set on the last report, after the worker left its loop.
    pub exited: bool,
    /// Frames lost on purpose by fault injection (received, sent).
    pub injected_loss: (u64, u64),
    /// Times the loop came round late, and the longest such gap.
    pub stalls: Stalls,
}

/// How late the loop came round: the time from one turn's start to the next, sleeps in poll(2) left out. A turn
/// takes microseconds, so a gap of milliseconds is time the thread did not run (the hypervisor or a higher
/// priority took the CPU) or a turn that did far too much: either way a peer waited that long for an answer,
/// which is what a kernel client's tail-loss probe (2·SRTT + 2 ticks, 4–8 ms at HZ=250) reacts to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stalls {
    /// Gaps of at least [`Stalls::COUNTED`].
    pub over_1ms: u64,
    pub longest: Duration,
}

impl Stalls {
    pub const COUNTED: Duration = Duration::from_millis(1);

    #[inline]
    fn record(&mut self, gap: Duration) {
        if gap >= Self::COUNTED {
            self.over_1ms += 1;
            self.longest = self.longest.max(gap);
        }
    }
}

/// Counters a packet I/O can add to a report.
pub trait IoCounters {
    fn io_counters(&self) -> Option<XskStats>;
}

impl IoCounters for XskSocket {
    fn io_counters(&self) -> Option<XskStats> {
        self.stats().ok()
    }
}

impl IoCounters for MemIo {
    fn io_counters(&self) -> Option<XskStats> {
        None
    }
}

/// A worker's links to the others for ICMP "too big" messages (`Config::forward_unmatched_icmp`): a NIC's RSS
/// hashes ICMP by its addresses, so a message about a connection of one queue may arrive on any other. What one
/// worker's endpoint cannot match goes to every other worker once; a full inbox loses the copy (the connection then
/// still has RFC 4821 black-hole detection).
#[derive(Debug, Default)]
pub struct IcmpPeers {
    pub inbox: Option<Receiver<Vec<u8>>>,
    pub others: Vec<Sender<Vec<u8>>>,
}

impl IcmpPeers {
    /// Messages waiting in one worker's inbox, at most.
    pub const INBOX: usize = 256;

    /// The links of `n` workers: each has an inbox and a sender to every other's (none for a lone worker).
    pub fn mesh(n: usize) -> Vec<IcmpPeers> {
        if n < 2 {
            return (0..n).map(|_| IcmpPeers::default()).collect();
        }
        super::mesh::mesh(n, Self::INBOX)
            .into_iter()
            .enumerate()
            .map(|(i, end)| IcmpPeers {
                inbox: Some(end.inbox),
                others: end.peers.into_iter().enumerate().filter(|&(j, _)| j != i).map(|(_, t)| t).collect(),
            })
            .collect()
    }

    /// Sends what `ep` kept for the others, and hands `ep` what the others sent here.
    fn exchange<A: App, S: crate::sink::FrameSink>(
        &self,
        ep: &mut Endpoint<A>,
        now: crate::time::Instant,
        sink: &mut S,
    ) {
        for frame in ep.forwarded_icmp() {
            for tx in &self.others {
                let _ = tx.try_send(frame.clone());
            }
        }
        if let Some(inbox) = &self.inbox {
            while let Ok(frame) = inbox.try_recv() {
                ep.handle_forwarded_icmp(now, &frame, sink);
            }
        }
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub id: usize,
    /// Frames per receive batch.
    pub batch: usize,
    /// Never sleep: spin on the rings (lowest latency, one core at 100%).
    pub busy_poll: bool,
    /// After the last frame, keep polling the rings this long before sleeping in poll(2): under steady load the
    /// next frame usually comes sooner, and a sleeping worker costs a scheduler wake-up per frame.
    pub spin: Duration,
    pub report_every: Duration,
    /// Longest sleep in poll(2), so that commands are seen promptly.
    pub max_sleep: Duration,
    /// Fault injection: lose frames on the way in and out (loss tests only).
    pub loss: Option<Loss>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            id: 0,
            batch: 64,
            busy_poll: false,
            spin: Duration::ZERO,
            report_every: Duration::from_millis(100),
            max_sleep: Duration::from_millis(20),
            loss: None,
        }
    }
}

/// Runs a worker until it is told to exit (or the command channel closes). Returns its endpoint and I/O.
pub fn run<P: PacketIo + IoCounters, A: App>(
    mut io: P,
    mut ep: Endpoint<A>,
    clock: Clock,
    opts: WorkerOptions,
    commands: Receiver<Command>,
    reports: Sender<Report>,
    peers: IcmpPeers,
) -> Result<(Endpoint<A>, P), IoError> {
    let mut next_report = clock.now();
    let mut dice = Dice::new(opts.loss.map_or(1, |l| l.seed));
    let mut lost = (0u64, 0u64);
    let mut last_frame = clock.now();
    let mut stalls = Stalls::default();
    let mut turn_start = clock.now();
    loop {
        let now = clock.now();
        stalls.record(now.saturating_since(turn_start));
        turn_start = now;
        // Frames are stamped when the batch is read, not with the turn's `now`: a worker that stalls between the
        // two (this VM's vCPUs vanish for milliseconds) would otherwise handle an ACK whose cookie the XDP program
        // minted after a slot boundary with a time before it, and refuse it. One clock read per batch.
        let mut read_at = None;
        let mut stamp = || *read_at.get_or_insert_with(|| clock.now().max(now));
        let received = match opts.loss {
            None => io.recv(opts.batch, |frame, sink| ep.handle_frame(stamp(), frame, sink)),
            Some(loss) => io.recv(opts.batch, |frame, sink| {
                if dice.roll(loss.rx_ppm) {
                    lost.0 += 1;
                    return;
                }
                let mut lossy = LossySink { inner: sink, dice: &mut dice, ppm: loss.tx_ppm, lost: &mut lost.1 };
                ep.handle_frame(stamp(), frame, &mut lossy)
            }),
        };
        peers.exchange(&mut ep, now, io.sink());
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            match opts.loss {
                None => ep.handle_timeout(now, io.sink()),
                Some(loss) => ep.handle_timeout(
                    now,
                    &mut LossySink { inner: io.sink(), dice: &mut dice, ppm: loss.tx_ppm, lost: &mut lost.1 },
                ),
            }
        }
        io.flush()?;
        if now >= next_report {
            let _ = reports.try_send(report(&opts, &ep, &io, false, lost, stalls));
            next_report = now + opts.report_every;
        }
        match commands.try_recv() {
            Ok(Command::Keys(k)) => ep.set_cookie_keys(k),
            Ok(Command::Drain) => ep.stop_listening(),
            Ok(Command::Exit) | Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        if received > 0 {
            last_frame = now;
        }
        if received == 0 && !opts.busy_poll && now.saturating_since(last_frame) >= opts.spin {
            let until = [ep.poll_timeout(), Some(next_report)].into_iter().flatten().min().unwrap_or(next_report);
            let sleep = until.saturating_since(clock.now()).min(opts.max_sleep);
            if !sleep.is_zero() {
                io.wait(Some(sleep))?;
                turn_start = clock.now();
            }
        }
    }
    let now = clock.now();
    ep.abort_all(now, io.sink());
    io.flush()?;
    let _ = reports.send(report(&opts, &ep, &io, true, lost, stalls));
    Ok((ep, io))
}

fn report<P: IoCounters, A: App>(
    opts: &WorkerOptions,
    ep: &Endpoint<A>,
    io: &P,
    exited: bool,
    injected_loss: (u64, u64),
    stalls: Stalls,
) -> Report {
    Report {
        worker: opts.id,
        stats: ep.stats(),
        io: io.io_counters(),
        memory: ep.memory(),
        exited,
        injected_loss,
        stalls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::EchoApp;
    use crate::io::testing::pair;
    use crate::tcp::Config;
    use crossbeam::channel::unbounded;

    /// A worker serving on one end of an in-memory pair answers a SYN from the other end, and leaves when told.
    #[test]
    fn worker_answers_a_syn_and_exits_on_command() {
        let (mut server_io, mut peer) = pair(256);
        let clock = Clock::new();
        let cfg = Config { wall_clock_offset: clock.wall_clock_offset(), ..Config::default() };
        let slot = crate::tcp::cookie::slot_at(clock.wall_nanos(clock.now()));
        let mut ep = Endpoint::new(cfg, EchoApp, clock.now());
        ep.set_cookie_keys(KeyRing::from_seed(1, slot - 1..=slot + 1));
        ep.listen(80);
        let (ctx, crx) = unbounded();
        let (rtx, rrx) = unbounded();
        server_io.inject(&syn_frame());
        // The in-memory pair is single-threaded: queue the exit first; the worker serves one round, then leaves.
        ctx.send(Command::Exit).unwrap();
        let (ep, _) = run(server_io, ep, clock, WorkerOptions::default(), crx, rtx, IcmpPeers::default()).unwrap();
        let mut got = Vec::new();
        peer.recv(8, |f, _| got.push(f.to_vec()));
        assert_eq!(got.len(), 1, "one SYN-ACK came back");
        let parsed = crate::wire::parse_frame(&got[0]).unwrap();
        assert!(parsed.tcp.flags.syn() && parsed.tcp.flags.ack());
        assert_eq!(parsed.tcp.ack, 1001);
        // And as an independent parser reads it, checksums verified.
        let e = crate::wire::reparse::tcp(&got[0]);
        assert!(e.syn && e.ack && e.ack_number == 1001);
        assert_eq!(ep.stats().cookies_sent, 1);
        assert!(rrx.try_iter().any(|r| r.exited));
    }

    /// A receive side that stalls once before it hands over its frames, as a descheduled worker does.
    struct StallOnce {
        inner: crate::io::testing::MemIo,
        stall: Option<Duration>,
    }

    impl PacketIo for StallOnce {
        type Sink = <crate::io::testing::MemIo as PacketIo>::Sink;
        fn recv<F: FnMut(&[u8], &mut Self::Sink)>(&mut self, max: usize, f: F) -> usize {
            if let Some(d) = self.stall.take() {
                std::thread::sleep(d);
            }
            self.inner.recv(max, f)
        }
        fn sink(&mut self) -> &mut Self::Sink {
            self.inner.sink()
        }
        fn flush(&mut self) -> Result<(), IoError> {
            self.inner.flush()
        }
        fn wait(&mut self, timeout: Option<Duration>) -> Result<(), IoError> {
            self.inner.wait(timeout)
        }
    }

    impl IoCounters for StallOnce {
        fn io_counters(&self) -> Option<XskStats> {
            None
        }
    }

    /// Found by a review: the worker read its clock at the top of its turn and stamped every frame of the batch
    /// with it. One that stalls there across a cookie slot boundary then handles an ACK whose cookie the XDP
    /// program minted just after the boundary at a time before it, reads the cookie's parity as the slot before
    /// (RFC 4987's two-slot window) and refuses it. Frames are now stamped when their batch is read.
    #[test]
    fn an_ack_whose_cookie_was_minted_after_a_slot_boundary_is_accepted_by_a_worker_that_stalled_across_it() {
        use crate::tcp::cookie::{slot_at, PERIOD};
        use crate::time::Instant;
        use crate::wire::*;
        // A wall clock 500 ms before a slot boundary (room for building two endpoints on a busy machine).
        let period = PERIOD.as_nanos() as i64;
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        let clock = Clock::with_wall_skew(period - 500_000_000 - wall % period);
        let cfg = Config { wall_clock_offset: clock.wall_clock_offset(), ..Config::default() };
        let slot = slot_at(clock.wall_nanos(clock.now()));
        let keys = KeyRing::from_seed(1, slot - 1..=slot + 2);
        // The SYN-ACK the XDP program would have sent 1 ms after the boundary (the core mints the same cookie).
        let after = Instant::from_nanos((slot + 1) * PERIOD.as_nanos() as u64 - clock.wall_clock_offset() + 1_000_000);
        let mut minter = Endpoint::new(cfg.clone(), EchoApp, after);
        minter.set_cookie_keys(keys.clone());
        minter.listen(80);
        let (mut mio, mut mpeer) = pair(16);
        minter.handle_frame(after, &syn_frame(), mio.sink());
        mio.flush().unwrap();
        let mut syn_ack = Vec::new();
        mpeer.recv(4, |f, _| syn_ack = f.to_vec());
        let cookie = parse_frame(&syn_ack).unwrap().tcp.seq;
        let syn = syn_frame();
        let mut ack = parse_frame(&syn).unwrap();
        ack.tcp = TcpRepr { seq: 1001, ack: cookie.wrapping_add(1), flags: TcpFlags::ACK, ..ack.tcp };
        let mut ack_frame = vec![0; ack.frame_len()];
        ack.emit(&mut ack_frame).unwrap();

        let (mut server_io, _peer) = pair(256);
        let mut ep = Endpoint::new(cfg, EchoApp, clock.now());
        ep.set_cookie_keys(keys);
        ep.listen(80);
        server_io.inject(&ack_frame);
        let io = StallOnce { inner: server_io, stall: Some(Duration::from_millis(1000)) };
        let (ctx, crx) = unbounded();
        let (rtx, _rrx) = unbounded();
        ctx.send(Command::Exit).unwrap();
        assert_eq!(slot_at(clock.wall_nanos(clock.now())), slot, "the worker starts before the boundary");
        let (ep, _) = run(io, ep, clock, WorkerOptions::default(), crx, rtx, IcmpPeers::default()).unwrap();
        let s = ep.stats();
        assert_eq!((s.cookies_accepted, s.cookies_rejected), (1, 0), "{s:?}");
    }

    fn syn_frame() -> Vec<u8> {
        use crate::wire::*;
        let f = FrameRepr {
            eth: EthernetRepr {
                dst: MacAddr([2, 0, 0, 0, 0, 1]),
                src: MacAddr([2, 0, 0, 0, 0, 2]),
                vlan: None,
                ethertype: EtherType::IPV4,
            },
            ip: IpRepr::V4(Ipv4Repr {
                src: [10, 0, 0, 2].into(),
                dst: [10, 0, 0, 1].into(),
                protocol: 6,
                ttl: 64,
                tos: 0,
                payload_len: 0,
            }),
            tcp: TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq: 1000,
                ack: 0,
                flags: TcpFlags::SYN,
                window: 65535,
                urgent: 0,
                options: TcpOptions::default(),
                payload: &[],
            },
        };
        let mut buf = vec![0; f.frame_len()];
        f.emit(&mut buf).unwrap();
        buf
    }

    /// An ICMP "too big" from a router about a segment 10.0.0.1:80 → 10.0.0.2:40000 sent, to 10.0.0.1.
    fn too_big_frame() -> Vec<u8> {
        use etherparse::{icmpv4::DestUnreachableHeader, Icmpv4Type, PacketBuilder};
        let mut quoted = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(80, 40000, 5, 1000)
            .write(&mut quoted, &[7; 64])
            .unwrap();
        let kind =
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1000 });
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([10, 0, 0, 254], [10, 0, 0, 1], 64)
            .icmpv4(kind)
            .write(&mut out, &quoted[..28])
            .unwrap();
        out
    }

    /// A worker whose endpoint holds no connection for a "too big" message passes it to every other worker, and
    /// hands its endpoint what the others sent it.
    #[test]
    fn icmp_too_big_for_another_workers_connection_goes_to_every_other_worker() {
        let mut links = IcmpPeers::mesh(3).into_iter();
        let (me, second, third) = (links.next().unwrap(), links.next().unwrap(), links.next().unwrap());
        assert_eq!((me.others.len(), second.others.len()), (2, 2));
        assert!(IcmpPeers::mesh(1)[0].inbox.is_none() && IcmpPeers::mesh(1)[0].others.is_empty());
        let (mut io, _peer) = pair(256);
        let clock = Clock::new();
        let cfg = Config { forward_unmatched_icmp: true, ..Config::default() };
        let ep = Endpoint::new(cfg, EchoApp, clock.now());
        io.inject(&too_big_frame());
        // Another worker forwarded one here before this one ran.
        second.others[0].send(too_big_frame()).unwrap();
        let (ctx, crx) = unbounded();
        let (rtx, _rrx) = unbounded();
        ctx.send(Command::Exit).unwrap();
        let (ep, _) = run(io, ep, clock, WorkerOptions::default(), crx, rtx, me).unwrap();
        for other in [&second, &third] {
            let got: Vec<Vec<u8>> = other.inbox.as_ref().unwrap().try_iter().collect();
            assert_eq!(got, vec![too_big_frame()], "one copy each");
        }
        let s = ep.stats();
        assert_eq!((s.icmp_too_big, s.icmp_forwarded, s.icmp_forwarded_in), (1, 1, 1));
    }

    #[test]
    fn stalls_count_gaps_of_a_millisecond_or_more_and_keep_the_longest() {
        let mut s = Stalls::default();
        for us in [20, 999, 1_000, 4_500, 2_000] {
            s.record(Duration::from_micros(us));
        }
        assert_eq!(s, Stalls { over_1ms: 3, longest: Duration::from_micros(4_500) });
    }
}
