//! A fixture per RFC 9293 state, in the manner of smoltcp's `socket_established()`: an endpoint of ours with one
//! connection (or none) in the asked state, reached by hand-crafted frames from a scripted peer, and every number
//! of the connection known exactly (SND.UNA, SND.NXT, RCV.NXT, RCV.WND, MAX.SND.WND, TS.Recent).
//!
//! Both roles: `Server` (our endpoint listens; passive opens go through a SYN cookie) and `Client` (our endpoint
//! connects; the peer is a scripted server). LISTEN exists only for the server, SYN-SENT and SYN-RECEIVED (the
//! latter reached by simultaneous open) only for the client. CLOSED is an endpoint with no connection and no
//! listener on the port.
//!
//! Shapes chosen so that SND.UNA ≠ SND.NXT wherever the state allows it: in ESTABLISHED and CLOSE-WAIT the app has
//! 100 bytes in flight, unacknowledged; in FIN-WAIT-1, CLOSING and LAST-ACK our FIN is in flight (data acked).

use super::frames::{Seg, ACK, FIN, SYN};
use super::recorder::{Event, Recorder};
use super::rig::Rig;
use xdptcp::tcp::{ConnId, State};

/// Our side of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// The peer's choices that change the numbers: timestamps offered or not, and its ISN.
#[derive(Clone, Copy, Debug)]
pub struct Flavour {
    pub ts: bool,
    pub irs: u32,
}

impl Flavour {
    /// Timestamps on, ISN far from the wrap.
    pub const TS: Flavour = Flavour { ts: true, irs: 0x1000_0000 };
    /// No timestamps, and an ISN so close to 2^32 that the receive window wraps around zero.
    pub const NO_TS_WRAP: Flavour = Flavour { ts: false, irs: u32::MAX - 50 };
    pub const ALL: [Flavour; 2] = [Flavour::TS, Flavour::NO_TS_WRAP];
}

/// The scripted peer's SYN options: MSS 1460, window scale 2, SACK-permitted, timestamps when the flavour has them.
pub const PEER_MSS: u16 = 1460;
pub const PEER_WSCALE: u8 = 2;
/// The window field of every segment the peer sends.
pub const PEER_WINDOW: u16 = 8192;
/// Bytes the app has in flight in ESTABLISHED and CLOSE-WAIT.
pub const IN_FLIGHT: usize = 100;
/// The first TSval of the peer.
pub const PEER_TS0: u32 = 7_000;

pub struct Fx {
    pub rig: Rig,
    pub role: Role,
    pub state: State,
    pub flavour: Flavour,
    /// The connection, when the state has one (not LISTEN, TIME-WAIT, CLOSED).
    pub id: Option<ConnId>,
    /// Timestamps in use on the connection (or, in LISTEN, in the cookie handshake).
    pub ts: bool,
    pub iss: u32,
    pub snd_una: u32,
    pub snd_nxt: u32,
    /// RCV.NXT (in SYN-SENT: the peer ISN + 1 the matrix aims at; in LISTEN: the client ISN + 1 of the cookie).
    pub rcv_nxt: u32,
    /// The window field of our non-SYN segments, and what it means in bytes to the peer (RCV.WND).
    pub wnd_field: u16,
    pub rcv_wnd: u32,
    /// MAX.SND.WND: the largest window (scaled) the peer offered.
    pub max_snd_wnd: u32,
    /// TS.Recent held by the endpoint, the peer's last TSval, and our last TSval.
    pub ts_recent: u32,
    pub peer_tsval: u32,
    pub our_tsval: u32,
    /// Our FIN is sent and not yet acknowledged.
    pub fin_in_flight: bool,
    /// Recorder events that happened while building the fixture.
    pub events_before: usize,
}

impl Fx {
    /// A segment from the peer with the flavour's timestamps: TSval `tsval`, TSecr our last TSval.
    pub fn seg_ts(&self, flags: u8, seq: u32, ack: u32, tsval: Option<u32>) -> Seg {
        let mut s = self.rig.seg(flags, seq, ack);
        s.window = PEER_WINDOW;
        if let Some(v) = tsval {
            s.ts = Some((v, self.our_tsval));
        }
        s
    }

    /// A segment from the peer carrying its next TSval (when the flavour has timestamps).
    pub fn seg(&mut self, flags: u8, seq: u32, ack: u32) -> Seg {
        let tsval = self.flavour.ts.then(|| {
            self.peer_tsval += 1;
            self.peer_tsval
        });
        self.seg_ts(flags, seq, ack, tsval)
    }

    /// Sends `s` and notes our TSval from the replies.
    pub fn exchange(&mut self, s: &Seg) -> Vec<Seg> {
        let out = self.rig.send(s);
        self.note(&out);
        out
    }

    fn note(&mut self, out: &[Seg]) {
        for r in out {
            if let Some((v, _)) = r.ts {
                self.our_tsval = v;
            }
        }
    }

    pub fn app(&self) -> &Recorder {
        self.rig.ep.app()
    }

    /// Recorder events since the fixture was built.
    pub fn new_events(&self) -> &[Event] {
        &self.app().events[self.events_before..]
    }

    /// What the peer sees as the state of the tuple now (the connection's, or TIME-WAIT / LISTEN / CLOSED).
    pub fn observed_state(&self) -> State {
        if let Some(s) = self.id.and_then(|id| self.rig.ep.state(id)) {
            return s;
        }
        if self.rig.in_time_wait() {
            return State::TimeWait;
        }
        // A connection the segment itself created (a valid cookie in LISTEN).
        let opened: Vec<ConnId> = self
            .new_events()
            .iter()
            .filter_map(|e| match e {
                Event::Open(i) => Some(*i),
                _ => None,
            })
            .collect();
        if let Some(s) = opened.last().and_then(|id| self.rig.ep.state(*id)) {
            return s;
        }
        if self.id.is_none() && self.state == State::Listen {
            State::Listen
        } else {
            State::Closed
        }
    }
}

/// The roles that have `state`.
pub fn roles_of(state: State) -> &'static [Role] {
    match state {
        State::Listen => &[Role::Server],
        State::SynSent | State::SynReceived => &[Role::Client],
        _ => &[Role::Server, Role::Client],
    }
}

/// Builds the fixture; `None` when the role has no such state.
pub fn fixture(role: Role, state: State, flavour: Flavour) -> Option<Fx> {
    if !roles_of(state).contains(&role) {
        return None;
    }
    let mut rig = match role {
        Role::Server => Rig::server(),
        Role::Client => Rig::client(),
    };
    let irs = flavour.irs;
    let mut fx = Fx {
        role,
        state,
        flavour,
        id: None,
        ts: flavour.ts,
        iss: 0,
        snd_una: 0,
        snd_nxt: 0,
        rcv_nxt: irs.wrapping_add(1),
        wnd_field: 0,
        rcv_wnd: 0,
        max_snd_wnd: u32::from(PEER_WINDOW),
        ts_recent: 0,
        peer_tsval: PEER_TS0,
        our_tsval: 0,
        fin_in_flight: false,
        events_before: 0,
        rig: Rig::client(), // replaced below
    };
    if state == State::Closed {
        if role == Role::Server {
            rig.ep.unlisten(rig.ends.local.port());
        }
        fx.rig = rig;
        fx.ts = false;
        // Numbers for the matrix to aim at: anything will do, nothing is there.
        fx.iss = 0x2000_0000;
        fx.snd_una = fx.iss;
        fx.snd_nxt = fx.iss;
        fx.wnd_field = 0;
        fx.rcv_wnd = 65535;
        return Some(fx);
    }
    fx.rig = rig;
    match role {
        Role::Server => server_open(&mut fx),
        Role::Client => client_open(&mut fx),
    }
    if matches!(state, State::Listen | State::SynSent | State::SynReceived | State::Established) {
        finish(&mut fx);
        if state == State::Established {
            send_in_flight(&mut fx);
            finish(&mut fx);
        }
        return Some(fx);
    }
    send_in_flight(&mut fx);
    match state {
        State::CloseWait => peer_fin(&mut fx, false),
        State::LastAck => {
            peer_fin(&mut fx, false);
            peer_ack_all(&mut fx);
            app_close(&mut fx);
        }
        State::FinWait1 => {
            peer_ack_all(&mut fx);
            app_close(&mut fx);
        }
        State::FinWait2 => {
            peer_ack_all(&mut fx);
            app_close(&mut fx);
            peer_ack_all(&mut fx);
        }
        State::Closing => {
            peer_ack_all(&mut fx);
            app_close(&mut fx);
            peer_fin(&mut fx, false);
        }
        State::TimeWait => {
            peer_ack_all(&mut fx);
            app_close(&mut fx);
            peer_ack_all(&mut fx);
            peer_fin(&mut fx, true);
        }
        s => unreachable!("{s:?}"),
    }
    finish(&mut fx);
    Some(fx)
}

fn syn_options(fx: &mut Fx, s: &mut Seg) {
    s.mss = Some(PEER_MSS);
    s.wscale = Some(PEER_WSCALE);
    s.sack_perm = true;
    if fx.flavour.ts {
        fx.peer_tsval += 1;
        s.ts = Some((fx.peer_tsval, if s.flags & ACK != 0 { fx.our_tsval } else { 0 }));
    }
}

/// SYN → cookie SYN-ACK; then (unless LISTEN is wanted) the ACK that completes the handshake.
fn server_open(fx: &mut Fx) {
    let irs = fx.flavour.irs;
    let mut syn = fx.rig.seg(SYN, irs, 0);
    syn.window = 65535;
    syn_options(fx, &mut syn);
    let out = fx.exchange(&syn);
    assert_eq!(out.len(), 1, "one SYN-ACK: {out:?}");
    let sa = &out[0];
    assert_eq!((sa.flags, sa.ack), (SYN | ACK, irs.wrapping_add(1)), "{sa:?}");
    // Without timestamps the cookie cannot carry window scale (nor SACK): the SYN-ACK offers neither.
    assert_eq!(sa.wscale.is_some(), fx.flavour.ts, "{sa:?}");
    assert_eq!(sa.ts.is_some(), fx.flavour.ts, "{sa:?}");
    fx.iss = sa.seq;
    fx.snd_una = fx.iss;
    fx.snd_nxt = fx.iss.wrapping_add(1);
    let our_shift = sa.wscale.unwrap_or(0);
    set_window(fx, our_shift);
    if fx.state == State::Listen {
        return;
    }
    let ack = fx.seg(ACK, irs.wrapping_add(1), fx.iss.wrapping_add(1));
    let out = fx.exchange(&ack);
    assert!(out.is_empty(), "the handshake's ACK needs no answer: {out:?}");
    let opened = fx.app().opened();
    assert_eq!(opened.len(), 1, "cookie accepted");
    fx.id = Some(opened[0]);
    fx.snd_una = fx.iss.wrapping_add(1);
    let peer_shift = if fx.flavour.ts { PEER_WSCALE } else { 0 };
    fx.max_snd_wnd = u32::from(PEER_WINDOW) << peer_shift;
    fx.ts_recent = fx.peer_tsval;
    expect_state(fx, State::Established);
}

/// connect → SYN; then the peer's SYN (simultaneous open) or SYN-ACK.
fn client_open(fx: &mut Fx) {
    let (id, syn) = fx.rig.connect();
    fx.note(std::slice::from_ref(&syn));
    fx.id = Some(id);
    fx.iss = syn.seq;
    fx.snd_una = fx.iss;
    fx.snd_nxt = fx.iss.wrapping_add(1);
    assert!(syn.wscale.is_some() && syn.ts.is_some() && syn.sack_perm && syn.mss.is_some(), "{syn:?}");
    set_window(fx, syn.wscale.unwrap_or(0));
    expect_state(fx, State::SynSent);
    if fx.state == State::SynSent {
        return;
    }
    let irs = fx.flavour.irs;
    if fx.state == State::SynReceived {
        let mut s = fx.rig.seg(SYN, irs, 0);
        s.window = PEER_WINDOW;
        syn_options(fx, &mut s);
        let out = fx.exchange(&s);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].flags, out[0].seq, out[0].ack), (SYN | ACK, fx.iss, irs.wrapping_add(1)), "{out:?}");
        fx.ts_recent = fx.peer_tsval;
        // The SYN's window is never scaled (RFC 7323 §2.2).
        fx.max_snd_wnd = u32::from(PEER_WINDOW);
        expect_state(fx, State::SynReceived);
        return;
    }
    let mut s = fx.rig.seg(SYN | ACK, irs, fx.iss.wrapping_add(1));
    s.window = PEER_WINDOW;
    syn_options(fx, &mut s);
    let out = fx.exchange(&s);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (ACK, fx.iss.wrapping_add(1), irs.wrapping_add(1)), "{out:?}");
    fx.snd_una = fx.snd_nxt;
    // A window update with the scaled window, so MAX.SND.WND is the scaled one.
    let upd = fx.seg(ACK, irs.wrapping_add(1), fx.snd_nxt);
    let out = fx.exchange(&upd);
    assert!(out.is_empty(), "{out:?}");
    fx.max_snd_wnd = u32::from(PEER_WINDOW) << PEER_WSCALE;
    fx.ts_recent = fx.peer_tsval;
    expect_state(fx, State::Established);
}

/// Our window as announced in non-SYN segments: the field and what it means to the peer.
fn set_window(fx: &mut Fx, shift: u8) {
    let cfg = fx.rig.ep.config();
    fx.wnd_field = (cfg.rcv_wnd >> shift).min(0xffff) as u16;
    fx.rcv_wnd = u32::from(fx.wnd_field) << shift;
}

/// The app queues [`IN_FLIGHT`] bytes; they go out at once (the peer's window is open).
fn send_in_flight(fx: &mut Fx) {
    let id = fx.id.expect("a connection");
    let data: Vec<u8> = (0..IN_FLIGHT as u8).collect();
    let (taken, out) = fx.rig.act(id, |c| c.send(&data));
    assert_eq!(taken, Some(IN_FLIGHT));
    fx.note(&out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].seq, out[0].ack, out[0].payload.len()), (fx.snd_nxt, fx.rcv_nxt, IN_FLIGHT), "{out:?}");
    assert_eq!(out[0].window, fx.wnd_field, "{out:?}");
    fx.snd_nxt = fx.snd_nxt.wrapping_add(IN_FLIGHT as u32);
}

/// The peer acknowledges everything we sent.
fn peer_ack_all(fx: &mut Fx) {
    let s = fx.seg(ACK, fx.rcv_nxt, fx.snd_nxt);
    let out = fx.exchange(&s);
    assert!(out.is_empty(), "{out:?}");
    fx.snd_una = fx.snd_nxt;
    fx.fin_in_flight = false;
    fx.ts_recent = fx.peer_tsval;
}

/// The peer sends FIN; with `ack_all` it acknowledges everything, otherwise only SND.UNA.
fn peer_fin(fx: &mut Fx, ack_all: bool) {
    let ack = if ack_all { fx.snd_nxt } else { fx.snd_una };
    let s = fx.seg(FIN | ACK, fx.rcv_nxt, ack);
    let out = fx.exchange(&s);
    fx.rcv_nxt = fx.rcv_nxt.wrapping_add(1);
    assert_eq!(out.len(), 1, "the FIN is acknowledged: {out:?}");
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (ACK, fx.snd_nxt, fx.rcv_nxt), "{out:?}");
    if ack_all {
        fx.snd_una = fx.snd_nxt;
        fx.fin_in_flight = false;
    }
    fx.ts_recent = fx.peer_tsval;
}

/// The app closes: our FIN goes out (the queue is empty by then).
fn app_close(fx: &mut Fx) {
    let id = fx.id.expect("a connection");
    let (_, out) = fx.rig.act(id, |c| c.close());
    fx.note(&out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (FIN | ACK, fx.snd_nxt, fx.rcv_nxt), "{out:?}");
    fx.snd_nxt = fx.snd_nxt.wrapping_add(1);
    fx.fin_in_flight = true;
}

fn expect_state(fx: &Fx, want: State) {
    let got = fx.id.and_then(|id| fx.rig.ep.state(id));
    assert_eq!(got, Some(want), "fixture {:?}/{:?}", fx.role, fx.state);
}

/// Checks that the fixture reached its state, and records where its events end.
fn finish(fx: &mut Fx) {
    let got = fx.observed_state();
    assert_eq!(got, fx.state, "fixture {:?} {:?} {:?} reached {got:?}", fx.role, fx.state, fx.flavour);
    if !fx.ts {
        fx.ts_recent = 0;
    }
    fx.events_before = fx.app().events.len();
}
