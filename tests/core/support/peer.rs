//! A scripted TCP peer that keeps its own sequence numbers: it opens a connection to (or accepts one from) an
//! endpoint of ours through a [`Rig`], sends data and FINs, and takes in what we send (in order only), so tests
//! of apps and timers can talk to any `App` without writing every number by hand.

use super::frames::{Seg, ACK, FIN, PSH, RST, SYN};
use super::rig::Rig;
use xdptcp::app::App;

#[derive(Clone, Debug)]
pub struct PeerConn {
    /// The peer's next sequence number.
    pub seq: u32,
    /// What the peer acknowledges: the next byte it expects from us.
    pub ack: u32,
    /// Our ISN (the cookie, when we are the server).
    pub iss: u32,
    pub ts: bool,
    pub tsval: u32,
    /// Our latest TSval (the peer echoes it).
    pub tsecr: u32,
    /// The window field the peer announces.
    pub window: u16,
    /// Everything we sent, in order, as the peer took it.
    pub received: Vec<u8>,
    pub fin_received: bool,
    pub rst_received: bool,
    /// Every segment we sent to the peer, in order.
    pub log: Vec<Seg>,
    /// [`PeerConn::converse`] acknowledges our data and FIN.
    pub auto_ack: bool,
}

/// The peer's SYN options.
#[derive(Clone, Copy, Debug)]
pub struct SynOpts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack: bool,
    pub ts: bool,
}

impl SynOpts {
    pub const FULL: SynOpts = SynOpts { mss: Some(1460), wscale: Some(2), sack: true, ts: true };
    pub const NO_TS: SynOpts = SynOpts { mss: Some(1460), wscale: Some(2), sack: true, ts: false };
    pub const BARE: SynOpts = SynOpts { mss: None, wscale: None, sack: false, ts: false };
}

impl PeerConn {
    fn new(isn: u32, ts: bool) -> Self {
        PeerConn {
            seq: isn,
            ack: 0,
            iss: 0,
            ts,
            tsval: 50_000,
            tsecr: 0,
            window: 8192,
            received: Vec::new(),
            fin_received: false,
            rst_received: false,
            log: Vec::new(),
            auto_ack: true,
        }
    }

    /// Opens a connection to a server rig: SYN, our SYN-ACK, the ACK. Panics if the handshake fails.
    pub fn open_to_server<A: App>(rig: &mut Rig<A>, opts: SynOpts) -> PeerConn {
        Self::open_to_server_with(rig, opts, 8192)
    }

    /// [`PeerConn::open_to_server`] with the window field the peer announces after its SYN. What we sent in answer
    /// to the ACK is in `log` after the SYN-ACK.
    pub fn open_to_server_with<A: App>(rig: &mut Rig<A>, opts: SynOpts, window: u16) -> PeerConn {
        let mut p = PeerConn::new(0x0bad_0000, opts.ts);
        p.window = window;
        let mut syn = rig.seg(SYN, p.seq, 0);
        syn.window = 65535;
        syn.mss = opts.mss;
        syn.wscale = opts.wscale;
        syn.sack_perm = opts.sack;
        if opts.ts {
            syn.ts = Some((p.tsval, 0));
        }
        let out = rig.send(&syn);
        p.log.extend(out.iter().cloned());
        assert_eq!(out.len(), 1, "SYN-ACK: {out:?}");
        let sa = &out[0];
        assert_eq!((sa.flags, sa.ack), (SYN | ACK, p.seq.wrapping_add(1)), "{sa:?}");
        p.iss = sa.seq;
        p.seq = p.seq.wrapping_add(1);
        p.ack = sa.seq.wrapping_add(1);
        if let Some((v, _)) = sa.ts {
            p.tsecr = v;
        }
        let ack = p.seg(rig, ACK);
        let out = rig.send(&ack);
        p.take(&out);
        p
    }

    /// Answers the SYN of a client rig with a SYN-ACK; returns the peer after our ACK.
    pub fn accept_from_client<A: App>(rig: &mut Rig<A>, syn: &Seg, opts: SynOpts) -> PeerConn {
        let mut p = PeerConn::new(0x7000_0000, opts.ts && syn.ts.is_some());
        p.iss = syn.seq;
        p.ack = syn.seq.wrapping_add(1);
        if let Some((v, _)) = syn.ts {
            p.tsecr = v;
        }
        let mut sa = rig.seg(SYN | ACK, p.seq, p.ack);
        sa.mss = opts.mss;
        sa.wscale = opts.wscale;
        sa.sack_perm = opts.sack;
        if p.ts {
            sa.ts = Some((p.tsval, p.tsecr));
        }
        p.seq = p.seq.wrapping_add(1);
        let out = rig.send(&sa);
        p.take(&out);
        p
    }

    /// A segment from the peer with its current numbers and timestamps.
    pub fn seg<A: App>(&mut self, rig: &Rig<A>, flags: u8) -> Seg {
        let mut s = rig.seg(flags, self.seq, if flags & ACK != 0 { self.ack } else { 0 });
        s.window = self.window;
        if self.ts {
            self.tsval = self.tsval.wrapping_add(1);
            s.ts = Some((self.tsval, self.tsecr));
        }
        s
    }

    /// Sends `s` as it is and takes in the replies (without answering them).
    pub fn send_seg<A: App>(&mut self, rig: &mut Rig<A>, s: &Seg) -> Vec<Seg> {
        let out = rig.send(s);
        self.take(&out);
        out
    }

    /// Sends `data` (one segment per call, PSH|ACK) and takes in the replies.
    pub fn send<A: App>(&mut self, rig: &mut Rig<A>, data: &[u8]) -> Vec<Seg> {
        let mut s = self.seg(rig, ACK | PSH);
        s.payload = data.to_vec();
        self.seq = self.seq.wrapping_add(data.len() as u32);
        self.send_seg(rig, &s)
    }

    /// Sends our FIN (with ACK).
    pub fn fin<A: App>(&mut self, rig: &mut Rig<A>) -> Vec<Seg> {
        let s = self.seg(rig, FIN | ACK);
        self.seq = self.seq.wrapping_add(1);
        self.send_seg(rig, &s)
    }

    /// Sends a bare ACK of everything taken so far.
    pub fn ack_now<A: App>(&mut self, rig: &mut Rig<A>) -> Vec<Seg> {
        let s = self.seg(rig, ACK);
        self.send_seg(rig, &s)
    }

    /// Takes in segments without answering (see [`PeerConn::converse`] for a peer that answers).
    pub fn take(&mut self, out: &[Seg]) {
        for s in out {
            self.take_one(s);
        }
    }

    /// Takes in `s`; returns whether it brought anything new (data or FIN) that deserves an ACK.
    pub fn take_one(&mut self, s: &Seg) -> bool {
        self.log.push(s.clone());
        if let Some((v, _)) = s.ts {
            self.tsecr = v;
        }
        if s.flags & RST != 0 {
            self.rst_received = true;
            return false;
        }
        let mut fresh = false;
        if !s.payload.is_empty() && s.seq == self.ack {
            self.received.extend_from_slice(&s.payload);
            self.ack = self.ack.wrapping_add(s.payload.len() as u32);
            fresh = true;
        }
        if s.flags & FIN != 0 && s.seq.wrapping_add(s.payload.len() as u32) == self.ack && !self.fin_received {
            self.ack = self.ack.wrapping_add(1);
            self.fin_received = true;
            fresh = true;
        }
        fresh
    }

    /// Acknowledges each of `segs` (ours, already taken in) by its own ACK, as a receiver without delayed ACKs
    /// does; returns, for each ACK, the number it acknowledged and what we sent in reply.
    pub fn ack_each<A: App>(&mut self, rig: &mut Rig<A>, segs: &[Seg]) -> Vec<(u32, Vec<Seg>)> {
        let mut all = Vec::new();
        for s in segs.iter().filter(|s| s.len() > 0) {
            let mut a = self.seg(rig, ACK);
            a.ack = s.seq.wrapping_add(s.len());
            let out = rig.send(&a);
            self.take(&out);
            all.push((a.ack, out));
        }
        all
    }

    /// Sends `data` and keeps acknowledging what comes back until we are quiet; returns every reply.
    pub fn talk<A: App>(&mut self, rig: &mut Rig<A>, data: &[u8]) -> Vec<Seg> {
        let mut s = self.seg(rig, ACK | PSH);
        s.payload = data.to_vec();
        self.seq = self.seq.wrapping_add(data.len() as u32);
        self.converse(rig, s)
    }

    /// Sends `s`, then acknowledges whatever new arrives, until nothing new does.
    pub fn converse<A: App>(&mut self, rig: &mut Rig<A>, s: Seg) -> Vec<Seg> {
        let mut all = Vec::new();
        let mut next = Some(s);
        for _ in 0..10_000 {
            let Some(s) = next.take() else { break };
            let out = rig.send(&s);
            let mut fresh = false;
            for r in &out {
                fresh |= self.take_one(r);
            }
            all.extend(out);
            if fresh && self.auto_ack {
                next = Some(self.seg(rig, ACK));
            }
        }
        all
    }

    /// Sends our FIN and keeps acknowledging until quiet.
    pub fn close<A: App>(&mut self, rig: &mut Rig<A>) -> Vec<Seg> {
        let s = self.seg(rig, FIN | ACK);
        self.seq = self.seq.wrapping_add(1);
        self.converse(rig, s)
    }
}
