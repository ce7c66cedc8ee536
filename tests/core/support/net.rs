//! Two endpoints joined by a virtual wire in virtual time, in the manner of quinn-proto's `Pair`.
//!
//! Every frame either endpoint emits is re-parsed by etherparse (checksums included) before delivery, and logged.
//! Tests can drop, duplicate or delay frames by direction and index.

use super::frames::{self, Seg, CLIENT_MAC, SERVER_MAC};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use xdptcp::app::App;
use xdptcp::sink::VecSink;
use xdptcp::tcp::cookie::KeyRing;
use xdptcp::tcp::{Config, Endpoint};
use xdptcp::time::Instant;
use xdptcp::wire::MacAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

/// What the wire does with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    /// Deliver after this extra delay (reordering).
    Delay(Duration),
    /// Deliver twice: now, and again after this extra delay.
    Duplicate(Duration),
}

type Filter = Box<dyn FnMut(Dir, usize, &Seg) -> Fate>;

pub struct Net<C: App, S: App> {
    pub now: Instant,
    pub client: Endpoint<C>,
    pub server: Endpoint<S>,
    pub latency: Duration,
    pub log: Vec<(Instant, Dir, Seg)>,
    in_flight: VecDeque<(Instant, Dir, Vec<u8>)>,
    sent: [usize; 2],
    filter: Option<Filter>,
}

/// Cookie keys valid around `now` for a test endpoint.
pub fn keys_at(cfg: &Config, now: Instant) -> KeyRing {
    let slot = xdptcp::tcp::cookie::slot_at(now.as_nanos() + cfg.wall_clock_offset);
    KeyRing::from_seed(7, slot.saturating_sub(1)..=slot + 1)
}

/// A configuration for a test endpoint with the given MAC.
///
/// The cookie replay filter holds 2^12 records instead of the default 2^20 (4 MiB per family): the tests build
/// endpoints by the thousand, and glibc hands a freed block of that size back from its heap, where `calloc` must
/// clear it, so zeroing 8 MiB per endpoint was about 80 % of the property tests' time. 4096 records outlast every
/// handshake a test makes; the filter's behaviour does not depend on its size (its own tests pick theirs).
pub fn config(mac: [u8; 6]) -> Config {
    Config { local_mac: MacAddr(mac), cookie_replay_entries: 1 << 12, ..Config::default() }
}

impl<C: App, S: App> Net<C, S> {
    /// A client and a server listening on [`frames::SERVER_PORT`], 50 µs apart, at t = 1000 s.
    pub fn new(client: C, server: S) -> Self {
        Self::with_configs(config(CLIENT_MAC), client, config(SERVER_MAC), server)
    }

    pub fn with_configs(ccfg: Config, client: C, scfg: Config, server: S) -> Self {
        let now = Instant::from_secs(1000);
        let skeys = keys_at(&scfg, now);
        let mut server = Endpoint::new(scfg, server, now);
        server.set_cookie_keys(skeys);
        server.listen(frames::SERVER_PORT);
        let client = Endpoint::new(ccfg, client, now);
        Net {
            now,
            client,
            server,
            latency: Duration::from_micros(50),
            log: Vec::new(),
            in_flight: VecDeque::new(),
            sent: [0, 0],
            filter: None,
        }
    }

    /// Decides the fate of each frame by direction, per-direction index (0-based) and content.
    pub fn set_filter(&mut self, f: impl FnMut(Dir, usize, &Seg) -> Fate + 'static) {
        self.filter = Some(Box::new(f));
    }

    /// Opens a connection from the client (IPv4, default addresses and ports).
    pub fn connect(&mut self) -> xdptcp::tcp::ConnId {
        self.connect_from(frames::CLIENT_PORT)
    }

    pub fn connect_from(&mut self, port: u16) -> xdptcp::tcp::ConnId {
        self.connect_addrs((frames::CLIENT_IP, port).into(), (frames::SERVER_IP, frames::SERVER_PORT).into())
    }

    /// Opens a connection between any two addresses (IPv6 included).
    pub fn connect_addrs(&mut self, local: SocketAddr, remote: SocketAddr) -> xdptcp::tcp::ConnId {
        let mut sink = VecSink::new();
        let id = self.client.connect(self.now, local, remote, MacAddr(SERVER_MAC), 0, &mut sink).expect("connect");
        self.put(Dir::ClientToServer, sink.take());
        id
    }

    /// Puts frames an endpoint emitted outside `step` (e.g. from `close`) on the wire.
    pub fn inject(&mut self, dir: Dir, frames_out: Vec<Vec<u8>>) {
        self.put(dir, frames_out);
    }

    fn put(&mut self, dir: Dir, frames_out: Vec<Vec<u8>>) {
        for f in frames_out {
            let (seg, dst_mac) = frames::parse(&f);
            let expected = match dir {
                Dir::ClientToServer => SERVER_MAC,
                Dir::ServerToClient => CLIENT_MAC,
            };
            assert_eq!(dst_mac, expected, "frame addressed to the peer's MAC");
            self.log.push((self.now, dir, seg.clone()));
            let i = &mut self.sent[dir as usize];
            let fate = match self.filter.as_mut() {
                Some(f) => f(dir, *i, &seg),
                None => Fate::Deliver,
            };
            *i += 1;
            let at = match fate {
                Fate::Deliver | Fate::Duplicate(_) => self.now + self.latency,
                Fate::Drop => continue,
                Fate::Delay(d) => self.now + self.latency + d,
            };
            if let Fate::Duplicate(d) = fate {
                self.schedule(at + d, dir, f.clone());
            }
            self.schedule(at, dir, f);
        }
    }

    fn schedule(&mut self, at: Instant, dir: Dir, f: Vec<u8>) {
        let pos = self.in_flight.iter().position(|(t, _, _)| *t > at).unwrap_or(self.in_flight.len());
        self.in_flight.insert(pos, (at, dir, f));
    }

    /// The next instant something happens: a delivery or a timer.
    fn next_event(&self) -> Option<Instant> {
        [self.in_flight.front().map(|(t, _, _)| *t), self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Advances to the next event and processes it. Returns false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_event() else { return false };
        self.now = self.now.max(t);
        let mut cs = VecSink::new();
        let mut ss = VecSink::new();
        while let Some((at, _, _)) = self.in_flight.front() {
            if *at > self.now {
                break;
            }
            let (_, dir, f) = self.in_flight.pop_front().unwrap();
            match dir {
                Dir::ClientToServer => self.server.handle_frame(self.now, &f, &mut ss),
                Dir::ServerToClient => self.client.handle_frame(self.now, &f, &mut cs),
            }
        }
        if self.client.poll_timeout().is_some_and(|d| d <= self.now) {
            self.client.handle_timeout(self.now, &mut cs);
        }
        if self.server.poll_timeout().is_some_and(|d| d <= self.now) {
            self.server.handle_timeout(self.now, &mut ss);
        }
        self.put(Dir::ClientToServer, cs.take());
        self.put(Dir::ServerToClient, ss.take());
        true
    }

    /// Runs until no frame is in flight and no timer is due before `limit` from now. Panics on livelock.
    pub fn drive_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..1_000_000 {
            match self.next_event() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(end);
                    return;
                }
            }
        }
        panic!("livelock: a million events without settling");
    }

    /// Runs until the wire is idle (timers further than 10 ms away are left pending).
    pub fn drive(&mut self) {
        for _ in 0..1_000_000 {
            if self.in_flight.is_empty() {
                return;
            }
            self.step();
        }
        panic!("livelock");
    }

    /// Segments sent in one direction, in order.
    pub fn segs(&self, dir: Dir) -> Vec<Seg> {
        self.log.iter().filter(|(_, d, _)| *d == dir).map(|(_, _, s)| s.clone()).collect()
    }

    /// A compact trace for failure messages: "C>S SYN seq=.. ack=.. len=..".
    pub fn trace(&self) -> String {
        self.log
            .iter()
            .map(|(t, d, s)| {
                format!(
                    "{:>10}us {} {} seq={} ack={} len={} win={}",
                    t.as_micros() - 1_000_000_000,
                    if *d == Dir::ClientToServer { "C>S" } else { "S>C" },
                    s.flag_names(),
                    s.seq,
                    s.ack,
                    s.payload.len(),
                    s.window
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
