//! The expected action for one segment arriving in one state, written from the RFCs (not from the core): RFC 9293
//! §3.10.7 (segment arrives), RFC 5961 (§3.2 RST, §4.2 SYN, §5.2 ACK acceptability), RFC 7323 (§3.2 timestamps
//! required once negotiated, §4.3 TS.Recent, §5.3 PAWS), RFC 1337 and RFC 6191 (TIME-WAIT), and the design's
//! stateless listener. Where an RFC leaves a choice, the core's choice is written here with a note, so the matrix
//! documents it.
//!
//! A case is a kind of segment × a sequence number at or around the receive window's edges × an acknowledgment
//! number around SND.UNA / SND.NXT × a timestamp variant. [`expect`] returns the action as data; [`observe`] reads
//! the actual action off the endpoint; [`compare`] says what differs.

use super::fixtures::{Fx, Role, PEER_MSS, PEER_WSCALE};
use super::frames::{Seg, ACK, FIN, PSH, RST, SYN};
use super::recorder::Event;
use xdptcp::app::CloseReason;
use xdptcp::tcp::{State, Stats};
use xdptcp::wire::ParseError;

/// The payload of data segments.
pub const DATA: &[u8] = b"0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Syn,
    SynAck,
    Ack,
    Rst,
    RstAck,
    FinAck,
    /// FIN without ACK.
    Fin,
    SynFin,
    /// Ten bytes with ACK.
    Data,
    /// Ten bytes with FIN and ACK.
    DataFin,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Syn,
        Kind::SynAck,
        Kind::Ack,
        Kind::Rst,
        Kind::RstAck,
        Kind::FinAck,
        Kind::Fin,
        Kind::SynFin,
        Kind::Data,
        Kind::DataFin,
    ];

    pub fn flags(self) -> u8 {
        match self {
            Kind::Syn => SYN,
            Kind::SynAck => SYN | ACK,
            Kind::Ack => ACK,
            Kind::Rst => RST,
            Kind::RstAck => RST | ACK,
            Kind::FinAck => FIN | ACK,
            Kind::Fin => FIN,
            Kind::SynFin => SYN | FIN,
            Kind::Data => ACK | PSH,
            Kind::DataFin => ACK | PSH | FIN,
        }
    }

    pub fn payload(self) -> &'static [u8] {
        match self {
            Kind::Data | Kind::DataFin => DATA,
            _ => &[],
        }
    }
}

/// Where SEG.SEQ lies relative to the receive window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqPos {
    /// RCV.NXT − 1
    NxtM1,
    /// RCV.NXT
    Nxt,
    /// RCV.NXT + 1
    NxtP1,
    /// RCV.NXT + RCV.WND − 1 (the last byte of the window)
    WndM1,
    /// RCV.NXT + RCV.WND (just past it)
    Wnd,
}

impl SeqPos {
    pub const ALL: [SeqPos; 5] = [SeqPos::NxtM1, SeqPos::Nxt, SeqPos::NxtP1, SeqPos::WndM1, SeqPos::Wnd];
    pub fn name(self) -> &'static str {
        match self {
            SeqPos::NxtM1 => "RCV.NXT-1",
            SeqPos::Nxt => "RCV.NXT",
            SeqPos::NxtP1 => "RCV.NXT+1",
            SeqPos::WndM1 => "RCV.NXT+RCV.WND-1",
            SeqPos::Wnd => "RCV.NXT+RCV.WND",
        }
    }
}

/// Where SEG.ACK lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckPos {
    /// The segment has no ACK flag (SEG.ACK is zero on the wire).
    NoAck,
    /// SND.UNA − MAX.SND.WND − 1: just outside RFC 5961 §5.2's range.
    FarBehind,
    /// SND.UNA − MAX.SND.WND: the oldest acceptable.
    EdgeBehind,
    UnaM1,
    Una,
    Nxt,
    NxtP1,
    /// SND.NXT + 2^30.
    FarAhead,
}

impl AckPos {
    pub const ALL: [AckPos; 7] = [
        AckPos::FarBehind,
        AckPos::EdgeBehind,
        AckPos::UnaM1,
        AckPos::Una,
        AckPos::Nxt,
        AckPos::NxtP1,
        AckPos::FarAhead,
    ];
    pub fn name(self) -> &'static str {
        match self {
            AckPos::NoAck => "-",
            AckPos::FarBehind => "SND.UNA-MAX.SND.WND-1",
            AckPos::EdgeBehind => "SND.UNA-MAX.SND.WND",
            AckPos::UnaM1 => "SND.UNA-1",
            AckPos::Una => "SND.UNA",
            AckPos::Nxt => "SND.NXT",
            AckPos::NxtP1 => "SND.NXT+1",
            AckPos::FarAhead => "SND.NXT+2^30",
        }
    }
}

/// The timestamp option on the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tsv {
    /// As negotiated: a TSval newer than TS.Recent when timestamps are on, none otherwise.
    Normal,
    /// A TSval older than TS.Recent (timestamps on).
    Old,
    /// No option although timestamps are on.
    Absent,
}

#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub kind: Kind,
    pub seq: SeqPos,
    pub ack: AckPos,
    pub tsv: Tsv,
}

/// Every case for a fixture.
pub fn cases(fx: &Fx) -> Vec<Case> {
    let mut out = Vec::new();
    let tsvs: &[Tsv] = if fx.ts { &[Tsv::Normal, Tsv::Old, Tsv::Absent] } else { &[Tsv::Normal] };
    for kind in Kind::ALL {
        let acks: &[AckPos] = if kind.flags() & ACK != 0 { &AckPos::ALL } else { &[AckPos::NoAck] };
        for seq in SeqPos::ALL {
            for &ack in acks {
                for &tsv in tsvs {
                    out.push(Case { kind, seq, ack, tsv });
                }
            }
        }
    }
    out
}

impl Case {
    pub fn seq_of(&self, fx: &Fx) -> u32 {
        let n = fx.rcv_nxt;
        match self.seq {
            SeqPos::NxtM1 => n.wrapping_sub(1),
            SeqPos::Nxt => n,
            SeqPos::NxtP1 => n.wrapping_add(1),
            SeqPos::WndM1 => n.wrapping_add(fx.rcv_wnd).wrapping_sub(1),
            SeqPos::Wnd => n.wrapping_add(fx.rcv_wnd),
        }
    }

    pub fn ack_of(&self, fx: &Fx) -> u32 {
        let (una, nxt, max) = (fx.snd_una, fx.snd_nxt, fx.max_snd_wnd);
        match self.ack {
            AckPos::NoAck => 0,
            AckPos::FarBehind => una.wrapping_sub(max).wrapping_sub(1),
            AckPos::EdgeBehind => una.wrapping_sub(max),
            AckPos::UnaM1 => una.wrapping_sub(1),
            AckPos::Una => una,
            AckPos::Nxt => nxt,
            AckPos::NxtP1 => nxt.wrapping_add(1),
            AckPos::FarAhead => nxt.wrapping_add(1 << 30),
        }
    }

    /// The segment the peer sends for this case.
    pub fn seg(&self, fx: &Fx) -> Seg {
        let tsval = match (self.tsv, fx.ts) {
            (Tsv::Normal, true) => Some(fx.peer_tsval.wrapping_add(1)),
            (Tsv::Old, true) => Some(fx.peer_tsval.wrapping_sub(1)),
            _ => None,
        };
        let mut s = fx.seg_ts(self.kind.flags(), self.seq_of(fx), self.ack_of(fx), tsval);
        s.payload = self.kind.payload().to_vec();
        if s.flags & SYN != 0 {
            s.mss = Some(PEER_MSS);
            s.wscale = Some(PEER_WSCALE);
            s.sack_perm = true;
        }
        s
    }

    pub fn describe(&self, fx: &Fx, s: &Seg) -> String {
        format!(
            "{:?} {} {:?} ts={} | {} seq={}({}) ack={}({}) len={} tsv={:?} | RCV.NXT={} RCV.WND={} SND.UNA={} \
             SND.NXT={} MAX.SND.WND={} TS.Recent={}",
            fx.role,
            fx.state.name(),
            fx.flavour.irs,
            fx.ts,
            s.flag_names(),
            self.seq.name(),
            s.seq,
            self.ack.name(),
            s.ack,
            s.payload.len(),
            self.tsv,
            fx.rcv_nxt,
            fx.rcv_wnd,
            fx.snd_una,
            fx.snd_nxt,
            fx.max_snd_wnd,
            fx.ts_recent,
        )
    }
}

/// What goes back to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Nothing,
    /// `<SEQ><ACK><CTL=ACK>` (a duplicate or ordinary acknowledgment).
    Ack {
        seq: u32,
        ack: u32,
    },
    /// The same bytes as an ACK, counted as an RFC 5961 challenge ACK.
    ChallengeAck {
        seq: u32,
        ack: u32,
    },
    /// `<SEQ><CTL=RST>`
    Rst {
        seq: u32,
    },
    /// `<SEQ=0><ACK><CTL=RST,ACK>`
    RstAck {
        ack: u32,
    },
    /// SYN-ACK; `seq: None` for a cookie ISN (any value).
    SynAck {
        seq: Option<u32>,
        ack: u32,
    },
    /// Something that is none of the above (or several segments).
    Other(Vec<Seg>),
}

/// An app event without the connection id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Open,
    Data(Vec<u8>),
    PeerClose,
    Closed(CloseReason),
}

#[derive(Clone, Debug)]
pub struct Expected {
    pub reply: Reply,
    pub state: State,
    pub events: Vec<Ev>,
    /// For replies other than RST: `Some(tsecr)` when a timestamp option must be there, `None` when none may.
    pub tsecr: Option<u32>,
    /// The window field of an ACK reply.
    pub window: u16,
    pub malformed: bool,
    /// The rule applied (RFC clause), for failure messages.
    pub why: &'static str,
}

#[derive(Clone, Debug)]
pub struct Actual {
    pub reply: Reply,
    pub replies: Vec<Seg>,
    pub state: State,
    pub events: Vec<Ev>,
    pub challenge_acks: u64,
    pub malformed: u64,
}

fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn le(a: u32, b: u32) -> bool {
    !lt(b, a)
}

/// RFC 9293 §3.10.7.4, first check: the table of acceptability tests.
pub fn acceptable(seq: u32, seg_len: u32, rcv_nxt: u32, rcv_wnd: u32) -> bool {
    let in_wnd = |x: u32| x.wrapping_sub(rcv_nxt) < rcv_wnd;
    match (seg_len, rcv_wnd) {
        (0, 0) => seq == rcv_nxt,
        (0, _) => in_wnd(seq),
        (_, 0) => false,
        _ => in_wnd(seq) || in_wnd(seq.wrapping_add(seg_len - 1)),
    }
}

/// The expected action for `s` (built from `case`) arriving at `fx`.
pub fn expect(fx: &Fx, case: &Case, s: &Seg) -> Expected {
    let e = Expected {
        reply: Reply::Nothing,
        state: fx.state,
        events: Vec::new(),
        tsecr: None,
        window: fx.wnd_field,
        malformed: false,
        why: "",
    };
    if s.has(SYN) && s.flags & FIN != 0 {
        return Expected { malformed: true, why: "wire: SYN with FIN is malformed, dropped and counted", ..e };
    }
    match fx.state {
        State::Closed => closed(s, e),
        State::Listen => listen(fx, case, s, e),
        State::SynSent => syn_sent(fx, s, e),
        State::TimeWait => time_wait(fx, s, e),
        _ => synchronized(fx, case, s, e),
    }
}

fn seg_len(s: &Seg) -> u32 {
    s.len()
}

fn closed(s: &Seg, e: Expected) -> Expected {
    if s.has(RST) {
        Expected { why: "RFC 9293 §3.10.7.1: an incoming RST is discarded", ..e }
    } else if s.has(ACK) {
        Expected { reply: Reply::Rst { seq: s.ack }, why: "RFC 9293 §3.10.7.1: ACK → <SEQ=SEG.ACK><CTL=RST>", ..e }
    } else {
        Expected {
            reply: Reply::RstAck { ack: s.seq.wrapping_add(seg_len(s)) },
            why: "RFC 9293 §3.10.7.1: no ACK → <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>",
            ..e
        }
    }
}

fn listen(fx: &Fx, case: &Case, s: &Seg, e: Expected) -> Expected {
    if s.has(RST) {
        return Expected { why: "RFC 9293 §3.10.7.2 first: an RST is ignored", ..e };
    }
    if s.has(ACK) {
        if s.has(SYN) {
            return Expected {
                reply: Reply::Rst { seq: s.ack },
                why: "RFC 9293 §3.10.7.2 second: any ACK → <SEQ=SEG.ACK><CTL=RST>",
                ..e
            };
        }
        // The cookie MACs the exact pair (client ISN = SEG.SEQ − 1, cookie = SEG.ACK − 1) and the echoed
        // timestamp bits: only the very ACK of the handshake validates.
        let ts_ok = !fx.ts || s.ts.is_some();
        if !(s.seq == fx.rcv_nxt && s.ack == fx.snd_nxt && ts_ok) {
            return Expected {
                reply: Reply::Rst { seq: s.ack },
                why: "design (stateless LISTEN): an ACK whose cookie fails → <SEQ=SEG.ACK><CTL=RST>",
                ..e
            };
        }
        let _ = case;
        let mut ev = vec![Ev::Open];
        let mut rcv = fx.rcv_nxt;
        let mut state = State::Established;
        let mut ack_now = false;
        if !s.payload.is_empty() {
            ev.push(Ev::Data(s.payload.clone()));
            rcv = rcv.wrapping_add(s.payload.len() as u32);
            ack_now = true;
        }
        if s.flags & FIN != 0 {
            rcv = rcv.wrapping_add(1);
            ev.push(Ev::PeerClose);
            state = State::CloseWait;
            ack_now = true;
        }
        return Expected {
            reply: if ack_now { Reply::Ack { seq: fx.snd_nxt, ack: rcv } } else { Reply::Nothing },
            state,
            events: ev,
            tsecr: s.ts.map(|t| t.0),
            why: "design: ACK, ACK+data, ACK+FIN with a valid cookie complete the handshake (then as ESTABLISHED)",
            ..e
        };
    }
    if s.has(SYN) {
        return Expected {
            reply: Reply::SynAck { seq: None, ack: s.seq.wrapping_add(1) },
            tsecr: s.ts.map(|t| t.0),
            window: SYN_WINDOW,
            why: "RFC 9293 §3.10.7.2 third: SYN → SYN-ACK (its ISN a cookie; no state kept)",
            ..e
        };
    }
    Expected { why: "RFC 9293 §3.10.7.2 fourth: other text or control is dropped", ..e }
}

/// The window field of our SYN and SYN-ACK: never scaled, 65535 rounded down to the granule of our scale (7)
/// so that the first scaled window field says the same.
const SYN_WINDOW: u16 = 65408;

fn syn_sent(fx: &Fx, s: &Seg, e: Expected) -> Expected {
    let ack_ok = s.has(ACK) && s.ack == fx.snd_nxt;
    if s.has(ACK) && !ack_ok {
        if s.has(RST) {
            return Expected { why: "RFC 9293 §3.10.7.3: unacceptable ACK on an RST: dropped", ..e };
        }
        return Expected {
            reply: Reply::Rst { seq: s.ack },
            why: "RFC 9293 §3.10.7.3: unacceptable ACK → <SEQ=SEG.ACK><CTL=RST>",
            ..e
        };
    }
    if s.has(RST) {
        if ack_ok {
            return Expected {
                state: State::Closed,
                events: vec![Ev::Closed(CloseReason::Refused)],
                why: "RFC 9293 §3.10.7.3: RST acknowledging our SYN: connection refused",
                ..e
            };
        }
        return Expected { why: "RFC 9293 §3.10.7.3 / RFC 5961 §3.2: RST without an acceptable ACK: dropped", ..e };
    }
    if !s.has(SYN) {
        return Expected { why: "RFC 9293 §3.10.7.3 fifth: neither SYN nor RST: dropped", ..e };
    }
    let tsecr = if fx.flavour.ts { s.ts.map(|t| t.0) } else { None };
    if ack_ok {
        return Expected {
            reply: Reply::Ack { seq: fx.snd_nxt, ack: s.seq.wrapping_add(1) },
            state: State::Established,
            events: vec![Ev::Open],
            tsecr,
            why: "RFC 9293 §3.10.7.3 fourth: SYN-ACK acknowledging our SYN → ESTABLISHED, <SEQ=SND.NXT><ACK=RCV.NXT>",
            ..e
        };
    }
    Expected {
        reply: Reply::SynAck { seq: Some(fx.iss), ack: s.seq.wrapping_add(1) },
        state: State::SynReceived,
        // RFC 7323 §3.2: a <SYN,ACK> carries TSopt only if the <SYN> it answers did.
        tsecr,
        window: SYN_WINDOW,
        why: "RFC 9293 §3.10.7.3 fourth: SYN without ACK (simultaneous open) → SYN-RECEIVED, <SEQ=ISS><CTL=SYN,ACK>",
        ..e
    }
}

fn time_wait(fx: &Fx, s: &Seg, e: Expected) -> Expected {
    let listening = fx.role == Role::Server;
    let tw_ack = Reply::Ack { seq: fx.snd_nxt, ack: fx.rcv_nxt };
    let tsecr = fx.ts.then_some(fx.ts_recent);
    // The TIME-WAIT entry keeps the connection's window shift: its ACKs say what the connection's said (RFC 7323
    // §2.2: unscaled when the handshake did not negotiate scaling).
    let e = Expected { tsecr, ..e };
    if s.has(RST) {
        return Expected { why: "RFC 1337: an RST in TIME-WAIT is ignored", ..e };
    }
    if s.has(SYN) {
        let newer = match (fx.ts, s.ts) {
            (true, Some((v, _))) => lt(fx.ts_recent, v),
            _ => lt(fx.rcv_nxt, s.seq),
        };
        if !s.has(ACK) && newer && listening {
            return Expected {
                reply: Reply::SynAck { seq: None, ack: s.seq.wrapping_add(1) },
                tsecr: s.ts.map(|t| t.0),
                window: SYN_WINDOW,
                why: "RFC 6191 / RFC 9293 §3.10.7.4: a SYN with a higher sequence (or newer timestamp) may reopen \
                      TIME-WAIT: answered with a cookie SYN-ACK",
                ..e
            };
        }
        return Expected {
            reply: Reply::ChallengeAck { seq: fx.snd_nxt, ack: fx.rcv_nxt },
            why: "RFC 5961 §4.2 / RFC 9293 §3.10.7.4: any other SYN in TIME-WAIT gets a challenge ACK",
            ..e
        };
    }
    if let (true, Some((v, _))) = (fx.ts, s.ts) {
        if lt(v, fx.ts_recent) {
            return Expected {
                reply: tw_ack, why: "RFC 7323 §5.3 PAWS (TIME-WAIT too): old TSval → ACK, drop", ..e
            };
        }
    }
    let end = s.seq.wrapping_add(s.payload.len() as u32);
    if s.flags & FIN != 0 && end.wrapping_add(1) == fx.rcv_nxt {
        return Expected {
            reply: tw_ack,
            tsecr: if fx.ts { Some(s.ts.map_or(fx.ts_recent, |t| t.0)) } else { None },
            why: "RFC 9293 §3.10.7.4 TIME-WAIT: a retransmitted FIN is acknowledged again and 2MSL restarts",
            ..e
        };
    }
    if !s.payload.is_empty() || s.flags & FIN != 0 || s.seq != fx.rcv_nxt {
        return Expected {
            reply: tw_ack,
            why: "core's choice: TIME-WAIT keeps no window; anything but a bare ACK at RCV.NXT gets <SEQ=SND.NXT>\
                  <ACK=RCV.NXT><CTL=ACK> (rate-limited)",
            ..e
        };
    }
    Expected { why: "TIME-WAIT: a duplicate of the last ACK needs no answer", ..e }
}

fn synchronized(fx: &Fx, case: &Case, s: &Seg, e: Expected) -> Expected {
    let syn = s.has(SYN);
    let rst = s.has(RST);
    let fin = s.flags & FIN != 0;
    let l = s.payload.len() as u32;
    let dup_ack = Reply::Ack { seq: fx.snd_nxt, ack: fx.rcv_nxt };
    let challenge = Reply::ChallengeAck { seq: fx.snd_nxt, ack: fx.rcv_nxt };
    let e = Expected { tsecr: fx.ts.then_some(fx.ts_recent), ..e };

    // RFC 7323 §3.2 and §5.3 (R1): timestamps are checked before anything else; RSTs are exempt, and a SYN
    // without them goes on to RFC 5961 §4's challenge ACK (so that a peer restarted without timestamps can
    // learn that this connection is still open), as in Linux.
    if fx.ts && !rst {
        match case.tsv {
            Tsv::Absent if syn => {}
            Tsv::Absent => {
                return Expected {
                    why: "RFC 7323 §3.2: a non-RST segment without TSopt SHOULD be dropped (silently)",
                    ..e
                }
            }
            Tsv::Old => {
                return Expected {
                    reply: dup_ack,
                    why: "RFC 7323 §5.3 R1 PAWS: SEG.TSval < TS.Recent → ACK, drop",
                    ..e
                }
            }
            Tsv::Normal => {}
        }
    }
    let new_tsecr = fx.ts.then(|| s.ts.map_or(fx.ts_recent, |t| t.0));

    // Simultaneous open: the peer's SYN-ACK repeats its SYN (at RCV.NXT − 1) and acknowledges ours. RFC 9293 would
    // drop it as unacceptable and answer with an ACK, after which the peer's own ACK completes the handshake; the
    // core (like Linux) takes it as the ACK it carries. Either way the wire shows our ACK.
    if fx.state == State::SynReceived
        && syn
        && s.has(ACK)
        && !rst
        && l == 0
        && s.seq.wrapping_add(1) == fx.rcv_nxt
        && s.ack == fx.snd_nxt
    {
        return Expected {
            reply: dup_ack,
            state: State::Established,
            events: vec![Ev::Open],
            tsecr: new_tsecr,
            why: "RFC 9293 §3.5 simultaneous open: the peer's SYN-ACK completes SYN-RECEIVED → ESTABLISHED",
            ..e
        };
    }

    // First: sequence acceptability, with RFC 9293's allowance for valid ACKs extended to a bare ACK at the
    // right edge of the window (where a peer that sent all the window offered sends its ACKs from).
    let edge_ack = seg_len(s) == 0 && s.has(ACK) && !rst && !s.has(SYN) && s.seq == fx.rcv_nxt.wrapping_add(fx.rcv_wnd);
    if !acceptable(s.seq, seg_len(s), fx.rcv_nxt, fx.rcv_wnd) && !edge_ack {
        if rst {
            return Expected {
                why: "RFC 5961 §3.2 / RFC 9293 first check: RST outside the window: silently dropped",
                ..e
            };
        }
        if s.has(SYN) {
            return Expected {
                reply: Reply::ChallengeAck { seq: fx.snd_nxt, ack: fx.rcv_nxt },
                why: "RFC 5961 §4.2: a SYN gets a challenge ACK whatever its sequence number (outside the window \
                      too; the same bytes as the first check's ACK, counted as a challenge ACK)",
                ..e
            };
        }
        return Expected {
            reply: dup_ack,
            why: "RFC 9293 §3.10.7.4 first check: unacceptable → <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>",
            ..e
        };
    }
    // Second: RST.
    if rst {
        if s.seq == fx.rcv_nxt {
            let reason = if fx.state == State::SynReceived { CloseReason::Refused } else { CloseReason::Reset };
            return Expected {
                state: State::Closed,
                events: vec![Ev::Closed(reason)],
                why: "RFC 5961 §3.2: RST with SEG.SEQ = RCV.NXT resets the connection",
                ..e
            };
        }
        return Expected {
            reply: challenge,
            why: "RFC 5961 §3.2: RST in the window but not at RCV.NXT → challenge ACK",
            ..e
        };
    }
    // Fourth: SYN.
    if syn {
        return Expected {
            reply: challenge, why: "RFC 5961 §4.2: SYN in a synchronized state → challenge ACK", ..e
        };
    }
    // Fifth: ACK.
    if !s.has(ACK) {
        return Expected { why: "RFC 9293 §3.10.7.4 fifth: no ACK bit → drop", ..e };
    }
    let mut state = fx.state;
    let mut events = Vec::new();
    let mut snd_una = fx.snd_una;
    if state == State::SynReceived {
        if !(lt(fx.snd_una, s.ack) && le(s.ack, fx.snd_nxt)) {
            return Expected {
                reply: Reply::Rst { seq: s.ack },
                why: "RFC 9293 §3.10.7.4 fifth (SYN-RECEIVED): unacceptable ACK → <SEQ=SEG.ACK><CTL=RST>",
                ..e
            };
        }
        state = State::Established;
        events.push(Ev::Open);
        snd_una = s.ack;
    }
    let lowest = snd_una.wrapping_sub(fx.max_snd_wnd);
    if lt(fx.snd_nxt, s.ack) || lt(s.ack, lowest) {
        return Expected {
            reply: challenge,
            why: "RFC 5961 §5.2: SEG.ACK outside [SND.UNA − MAX.SND.WND, SND.NXT] → challenge ACK, drop",
            ..e
        };
    }
    // RFC 7323 §4.3: TS.Recent takes SEG.TSval when SEG.SEQ <= Last.ACK.sent.
    let tsecr = if le(s.seq, fx.rcv_nxt) { new_tsecr } else { e.tsecr };
    if lt(snd_una, s.ack) && fx.fin_in_flight && s.ack == fx.snd_nxt {
        match state {
            State::FinWait1 => state = State::FinWait2,
            State::Closing => {
                return Expected {
                    state: State::TimeWait,
                    events: vec![Ev::Closed(CloseReason::Normal)],
                    tsecr,
                    why: "RFC 9293 §3.10.7.4 CLOSING: our FIN acknowledged → TIME-WAIT",
                    ..e
                }
            }
            State::LastAck => {
                return Expected {
                    state: State::Closed,
                    events: vec![Ev::Closed(CloseReason::Normal)],
                    tsecr,
                    why: "RFC 9293 §3.10.7.4 LAST-ACK: our FIN acknowledged → CLOSED",
                    ..e
                }
            }
            _ => {}
        }
    }
    // Seventh: text (in order only; nothing out of order is kept).
    let mut rcv = fx.rcv_nxt;
    let mut ack_now = false;
    let mut fin_in_order = fin;
    let accepts_data = matches!(state, State::Established | State::FinWait1 | State::FinWait2);
    if l > 0 && accepts_data {
        if lt(rcv, s.seq) {
            ack_now = true;
            fin_in_order = false;
        } else {
            let skip = rcv.wrapping_sub(s.seq);
            let fresh = &s.payload[(skip as usize).min(s.payload.len())..];
            if !fresh.is_empty() {
                events.push(Ev::Data(fresh.to_vec()));
                rcv = rcv.wrapping_add(fresh.len() as u32);
            }
            ack_now = true;
        }
    }
    // Eighth: FIN.
    let peer_fin_received = matches!(state, State::CloseWait | State::Closing | State::LastAck);
    if fin && accepts_data && !peer_fin_received {
        if fin_in_order && s.seq.wrapping_add(l) == rcv {
            rcv = rcv.wrapping_add(1);
            ack_now = true;
            events.push(Ev::PeerClose);
            state = match state {
                State::Established => State::CloseWait,
                State::FinWait1 => State::Closing,
                State::FinWait2 => {
                    events.push(Ev::Closed(CloseReason::Normal));
                    State::TimeWait
                }
                s => s,
            };
        } else {
            // A FIN beyond RCV.NXT is out of order: dropped, and (RFC 5681 §4.2) answered with a duplicate ACK.
            ack_now = true;
        }
    }
    Expected {
        reply: if ack_now { Reply::Ack { seq: fx.snd_nxt, ack: rcv } } else { Reply::Nothing },
        state,
        events,
        tsecr,
        why: "RFC 9293 §3.10.7.4 fifth to eighth: ACK processed, in-order text delivered, FIN taken in order",
        ..e
    }
}

/// Reads the actual action off the fixture after `replies` came back.
pub fn observe(fx: &Fx, replies: Vec<Seg>, before: &Stats) -> Actual {
    let after = fx.rig.ep.stats();
    let events = fx
        .new_events()
        .iter()
        .map(|e| match e {
            Event::Open(_) => Ev::Open,
            Event::Data(_, d) => Ev::Data(d.clone()),
            Event::PeerClose(_) => Ev::PeerClose,
            Event::Closed(_, r) => Ev::Closed(*r),
        })
        .collect();
    let challenge_acks = after.challenge_acks - before.challenge_acks;
    let bad_flags = ParseError::BadFlags.index();
    let malformed = after.malformed[bad_flags] - before.malformed[bad_flags];
    let reply = match replies.as_slice() {
        [] => Reply::Nothing,
        [r] if r.flags == ACK && r.payload.is_empty() => {
            if challenge_acks > 0 {
                Reply::ChallengeAck { seq: r.seq, ack: r.ack }
            } else {
                Reply::Ack { seq: r.seq, ack: r.ack }
            }
        }
        [r] if r.flags == RST => Reply::Rst { seq: r.seq },
        [r] if r.flags == RST | ACK && r.seq == 0 => Reply::RstAck { ack: r.ack },
        [r] if r.flags == SYN | ACK => Reply::SynAck { seq: Some(r.seq), ack: r.ack },
        other => Reply::Other(other.to_vec()),
    };
    Actual { reply, replies, state: fx.observed_state(), events, challenge_acks, malformed }
}

/// What differs between `e` and `a`, if anything.
pub fn compare(e: &Expected, a: &Actual) -> Result<(), String> {
    let mut diffs = Vec::new();
    let reply_ok = match (&e.reply, &a.reply) {
        (Reply::SynAck { seq: None, ack }, Reply::SynAck { ack: got, .. }) => ack == got,
        (x, y) => x == y,
    };
    if !reply_ok {
        diffs.push(format!("reply: expected {:?}, got {:?}", e.reply, a.reply));
    }
    if let [r] = a.replies.as_slice() {
        if reply_ok && r.flags & RST == 0 {
            let ts = r.ts.map(|t| t.1);
            if ts != e.tsecr {
                diffs.push(format!("timestamps: expected TSecr {:?}, got option {:?}", e.tsecr, r.ts));
            }
            if r.window != e.window {
                diffs.push(format!("window field: expected {}, got {}", e.window, r.window));
            }
        }
        if r.flags & RST != 0 && r.window != 0 {
            diffs.push(format!("RST window: expected 0, got {}", r.window));
        }
    }
    if e.state != a.state {
        diffs.push(format!("state: expected {}, got {}", e.state.name(), a.state.name()));
    }
    if e.events != a.events {
        diffs.push(format!("app events: expected {:?}, got {:?}", e.events, a.events));
    }
    let challenge = matches!(e.reply, Reply::ChallengeAck { .. });
    if reply_ok && u64::from(challenge) != a.challenge_acks {
        diffs.push(format!("challenge_acks counter: expected +{}, got +{}", u64::from(challenge), a.challenge_acks));
    }
    if u64::from(e.malformed) != a.malformed {
        diffs.push(format!("malformed(bad_flags) counter: expected +{}, got +{}", u64::from(e.malformed), a.malformed));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}
