//! The steering program's per-CPU counters, summed over CPUs.
//!
//! Slot numbers mirror `enum steer_counter` in bpf/steer.bpf.c; the two lists must change together. Every frame
//! the program sees ends in exactly one outcome (redirected, passed, dropped, answered), and every frame passed or
//! dropped also counts exactly one reason, so `passed + dropped == sum of reasons` holds for any traffic.
//! `syn_held` and `icmp_too_big` are neither: the first says why a SYN took the ordinary path, the second that a
//! redirected frame was an ICMP "too big" message about one of our segments.

use core::ops::Sub;

/// Number of counter slots in the BPF map.
pub const SLOTS: usize = 15;

/// Totals of the steering program's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerCounters {
    /// Frames handed to an AF_XDP socket.
    pub redirected: u64,
    /// Frames given to the kernel.
    pub passed: u64,
    /// Frames dropped (only when the program was loaded with `NoXskAction::Drop`).
    pub dropped: u64,
    /// Reason: the frame ends inside a header it announces.
    pub truncated: u64,
    /// Reason: IPv4 fragment or IPv6 fragment header.
    pub fragment: u64,
    /// Reason: impossible header fields (IP version, IHL, data offset, lengths).
    pub bad_header: u64,
    /// Reason: neither IPv4 nor IPv6 (ARP, stacked VLAN tags, ...).
    pub not_ip: u64,
    /// Reason: IP but not TCP (UDP, ICMP, IPv6 extension headers).
    pub not_tcp: u64,
    /// Reason: TCP that is neither to a listened port nor from a target.
    pub not_ours: u64,
    /// Reason: ours by port, but to an address outside the allowed local addresses.
    pub not_local: u64,
    /// Reason: ours, but no AF_XDP socket is bound to the queue it arrived on.
    pub no_xsk: u64,
    /// Reason: one VLAN tag whose ID was not allowed (VID 0, a priority tag, always is).
    pub vlan_not_allowed: u64,
    /// SYNs answered by the program itself with a cookie SYN-ACK (XDP_TX): an outcome, like `redirected`.
    pub answered: u64,
    /// Informational: SYNs left to the worker because their tuple's presence cell was nonzero (each is also
    /// counted by the ordinary path, usually as `redirected`).
    pub syn_held: u64,
    /// Informational: ICMP "too big" messages quoting a segment of ours (each also counted as its outcome,
    /// usually `redirected`).
    pub icmp_too_big: u64,
}

impl SteerCounters {
    /// Builds the totals from the slots in map order.
    pub fn from_slots(s: [u64; SLOTS]) -> Self {
        let [redirected, passed, dropped, truncated, fragment, bad_header, not_ip, not_tcp, not_ours, not_local, no_xsk, vlan_not_allowed, answered, syn_held, icmp_too_big] =
            s;
        SteerCounters {
            redirected,
            passed,
            dropped,
            truncated,
            fragment,
            bad_header,
            not_ip,
            not_tcp,
            not_ours,
            not_local,
            no_xsk,
            vlan_not_allowed,
            answered,
            syn_held,
            icmp_too_big,
        }
    }

    /// Name and value of every counter, in map order.
    pub fn named(&self) -> [(&'static str, u64); SLOTS] {
        [
            ("redirected", self.redirected),
            ("passed", self.passed),
            ("dropped", self.dropped),
            ("truncated", self.truncated),
            ("fragment", self.fragment),
            ("bad_header", self.bad_header),
            ("not_ip", self.not_ip),
            ("not_tcp", self.not_tcp),
            ("not_ours", self.not_ours),
            ("not_local", self.not_local),
            ("no_xsk", self.no_xsk),
            ("vlan_not_allowed", self.vlan_not_allowed),
            ("answered", self.answered),
            ("syn_held", self.syn_held),
            ("icmp_too_big", self.icmp_too_big),
        ]
    }

    /// Sum of the reason counters (every frame passed or dropped counts one).
    pub fn reasons(&self) -> u64 {
        self.truncated
            + self.fragment
            + self.bad_header
            + self.not_ip
            + self.not_tcp
            + self.not_ours
            + self.not_local
            + self.no_xsk
            + self.vlan_not_allowed
    }

    /// Frames the program has seen (the sum of the outcomes).
    pub fn total(&self) -> u64 {
        self.redirected + self.passed + self.dropped + self.answered
    }
}

impl Sub for SteerCounters {
    type Output = SteerCounters;
    /// Counter deltas, saturating (per-CPU counters never go down, but a reload starts them again at zero).
    fn sub(self, rhs: SteerCounters) -> SteerCounters {
        let a = self.named();
        let b = rhs.named();
        let mut out = [0u64; SLOTS];
        for (o, ((_, x), (_, y))) in out.iter_mut().zip(a.iter().zip(b.iter())) {
            *o = x.saturating_sub(*y);
        }
        SteerCounters::from_slots(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_in_map_order() {
        let slots: [u64; SLOTS] = core::array::from_fn(|i| i as u64 * 10);
        let c = SteerCounters::from_slots(slots);
        let named = c.named();
        for (i, (_, v)) in named.iter().enumerate() {
            assert_eq!(*v, slots[i]);
        }
        assert_eq!(named[0].0, "redirected");
        assert_eq!(named[11].0, "vlan_not_allowed");
        assert_eq!(named[12].0, "answered");
        assert_eq!(named[13].0, "syn_held");
        assert_eq!(named[SLOTS - 1].0, "icmp_too_big");
        assert_eq!(c.total(), c.redirected + c.passed + c.dropped + c.answered);
    }

    #[test]
    fn deltas_saturate() {
        let a = SteerCounters { passed: 5, ..Default::default() };
        let b = SteerCounters { passed: 7, redirected: 1, ..Default::default() };
        assert_eq!((b - a).passed, 2);
        assert_eq!((a - b).passed, 0);
        assert_eq!((b - a).redirected, 1);
    }
}
