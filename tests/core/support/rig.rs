//! One endpoint of ours and a scripted peer that we play by hand: every frame the peer sends is built by
//! etherparse from a [`Seg`], every frame the endpoint emits is re-parsed by etherparse (checksums and legality
//! included) and checked to be addressed to the peer.

use super::frames::{self, Seg, CLIENT_IP, CLIENT_MAC, CLIENT_PORT, SERVER_IP, SERVER_MAC, SERVER_PORT};
use super::net::{config, keys_at};
use super::recorder::Recorder;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use xdptcp::app::App;
use xdptcp::sink::VecSink;
use xdptcp::tcp::{Config, ConnId, Endpoint};
use xdptcp::time::Instant;
use xdptcp::wire::MacAddr;

/// Where frames go: the endpoint's side and the scripted peer's side of one tuple.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    pub local_mac: [u8; 6],
    pub peer_mac: [u8; 6],
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// The 802.1Q VLAN id of the peer's frames (and so of our replies).
    pub vlan: Option<u16>,
}

impl Ends {
    /// The endpoint is the server (it listens on [`SERVER_PORT`]); the peer is the client.
    pub fn server_side() -> Ends {
        Ends {
            local_mac: SERVER_MAC,
            peer_mac: CLIENT_MAC,
            local: (SERVER_IP, SERVER_PORT).into(),
            peer: (CLIENT_IP, CLIENT_PORT).into(),
            vlan: None,
        }
    }

    /// The endpoint is the client; the peer is the server.
    pub fn client_side() -> Ends {
        Ends {
            local_mac: CLIENT_MAC,
            peer_mac: SERVER_MAC,
            local: (CLIENT_IP, CLIENT_PORT).into(),
            peer: (SERVER_IP, SERVER_PORT).into(),
            vlan: None,
        }
    }
}

/// Time at which every rig starts (as [`super::net::Net`] does).
pub const T0: Instant = Instant::from_secs(1000);

pub struct Rig<A: App = Recorder> {
    pub ep: Endpoint<A>,
    pub now: Instant,
    pub ends: Ends,
    /// Everything the endpoint emitted, with the time.
    pub log: Vec<(Instant, Seg)>,
}

impl Rig<Recorder> {
    /// A listening server endpoint with a default-scripted recorder.
    pub fn server() -> Self {
        Rig::server_with(config(SERVER_MAC), Recorder::default())
    }

    /// A client endpoint (listening on nothing).
    pub fn client() -> Self {
        Rig::client_with(config(CLIENT_MAC), Recorder::default())
    }
}

impl<A: App> Rig<A> {
    /// A server endpoint with cookie keys valid around [`T0`], listening on [`SERVER_PORT`].
    pub fn server_with(cfg: Config, app: A) -> Self {
        let keys = keys_at(&cfg, T0);
        let mut ep = Endpoint::new(cfg, app, T0);
        ep.set_cookie_keys(keys);
        ep.listen(SERVER_PORT);
        Rig { ep, now: T0, ends: Ends::server_side(), log: Vec::new() }
    }

    pub fn client_with(cfg: Config, app: A) -> Self {
        let ep = Endpoint::new(cfg, app, T0);
        Rig { ep, now: T0, ends: Ends::client_side(), log: Vec::new() }
    }

    /// A segment from the peer to us, with the peer's window (8192) and no options.
    pub fn seg(&self, flags: u8, seq: u32, ack: u32) -> Seg {
        Seg {
            src: Some(self.ends.peer.ip()),
            dst: Some(self.ends.local.ip()),
            sport: self.ends.peer.port(),
            dport: self.ends.local.port(),
            seq,
            ack,
            flags,
            window: 8192,
            vlan: self.ends.vlan,
            ..Seg::default()
        }
    }

    /// Delivers `s` (built by etherparse) now; returns what the endpoint emitted in answer.
    pub fn send(&mut self, s: &Seg) -> Vec<Seg> {
        let frame = frames::build(s, self.ends.peer_mac, self.ends.local_mac);
        self.send_raw(&frame)
    }

    /// Delivers raw frame bytes now.
    pub fn send_raw(&mut self, frame: &[u8]) -> Vec<Seg> {
        let mut sink = VecSink::new();
        self.ep.handle_frame(self.now, frame, &mut sink);
        self.collect(sink)
    }

    /// Parses and checks what the endpoint put in `sink`, and logs it.
    pub fn collect(&mut self, mut sink: VecSink) -> Vec<Seg> {
        let mut out = Vec::new();
        for f in sink.take() {
            let (s, src_mac, dst_mac) = frames::parse_macs(&f);
            assert_eq!(src_mac, self.ends.local_mac, "our frames carry our MAC: {s:?}");
            assert_eq!(dst_mac, self.ends.peer_mac, "our frames go to the peer's MAC: {s:?}");
            assert_eq!(s.vlan, self.ends.vlan, "our frames carry the peer's VLAN tag: {s:?}");
            assert_eq!(s.src, Some(self.ends.local.ip()), "source address: {s:?}");
            assert_eq!(s.dst.map(|d| d.is_ipv4()), Some(self.ends.peer.is_ipv4()), "family: {s:?}");
            self.log.push((self.now, s.clone()));
            out.push(s);
        }
        out
    }

    /// Runs the endpoint's timers up to `t` (each at its own deadline) and returns what they emitted, with when.
    pub fn run_until(&mut self, t: Instant) -> Vec<(Instant, Seg)> {
        let mut out = Vec::new();
        for _ in 0..100_000 {
            match self.ep.poll_timeout() {
                Some(d) if d <= t => {
                    self.now = self.now.max(d);
                    let mut sink = VecSink::new();
                    self.ep.handle_timeout(self.now, &mut sink);
                    let now = self.now;
                    out.extend(self.collect(sink).into_iter().map(|s| (now, s)));
                    if d < self.now {
                        // A bound below a time already handled: step on by the timer tick so we cannot spin.
                        self.now += Duration::from_millis(1);
                    }
                }
                _ => {
                    self.now = self.now.max(t);
                    let mut sink = VecSink::new();
                    self.ep.handle_timeout(self.now, &mut sink);
                    let now = self.now;
                    out.extend(self.collect(sink).into_iter().map(|s| (now, s)));
                    return out;
                }
            }
        }
        panic!("timers never settle before {t:?}");
    }

    /// [`Rig::run_until`] `now + d`.
    pub fn advance(&mut self, d: Duration) -> Vec<(Instant, Seg)> {
        let t = self.now + d;
        self.run_until(t)
    }

    /// Opens a connection to the peer (client role); returns its id and the SYN.
    pub fn connect(&mut self) -> (ConnId, Seg) {
        let mut sink = VecSink::new();
        let id = self
            .ep
            .connect(self.now, self.ends.local, self.ends.peer, MacAddr(self.ends.peer_mac), 0, &mut sink)
            .expect("connect");
        let mut out = self.collect(sink);
        assert_eq!(out.len(), 1, "connect sends one SYN: {out:?}");
        (id, out.remove(0))
    }

    /// Lets the app act on a connection (send, close, abort) and returns what went out.
    pub fn act<R>(&mut self, id: ConnId, f: impl FnOnce(&mut xdptcp::app::Conn<'_>) -> R) -> (Option<R>, Vec<Seg>) {
        let mut sink = VecSink::new();
        let r = self.ep.with_conn(self.now, id, &mut sink, f);
        (r, self.collect(sink))
    }

    /// Whether the tuple of [`Rig::ends`] is in TIME-WAIT.
    pub fn in_time_wait(&self) -> bool {
        self.ep.in_time_wait(self.ends.local, self.ends.peer)
    }

    /// Moves the scripted peer to another source port (a second connection from the same host).
    pub fn peer_port(&mut self, port: u16) {
        self.ends.peer.set_port(port);
    }

    /// Makes the rig IPv6: both addresses from the test's fd77::/64.
    pub fn use_ipv6(&mut self) {
        let (l, p): (IpAddr, IpAddr) = if self.ends.local.ip() == IpAddr::from(SERVER_IP) {
            (frames::SERVER_IP6.into(), frames::CLIENT_IP6.into())
        } else {
            (frames::CLIENT_IP6.into(), frames::SERVER_IP6.into())
        };
        self.ends.local.set_ip(l);
        self.ends.peer.set_ip(p);
    }
}
