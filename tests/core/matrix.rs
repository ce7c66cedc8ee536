//! The full matrix: {SYN, SYN+ACK, ACK, RST, RST+ACK, FIN+ACK, FIN, SYN+FIN, data, data+FIN} × every RFC 9293
//! state × SEG.SEQ at and around the receive window's edges × SEG.ACK around SND.UNA and SND.NXT (and beyond
//! RFC 5961's MAX.SND.WND) × timestamps (as negotiated, old, missing), for both roles and for two peers (with
//! timestamps; without, and with a receive window that wraps around 2^32).
//!
//! Each case runs on a fresh fixture (tests/core/support/fixtures.rs) and is checked against the action the RFCs
//! prescribe (tests/core/support/model.rs): the reply (none, ACK with exact numbers, challenge ACK, RST with exact
//! numbers, SYN-ACK), the state afterwards, the app events and the counters that tell a challenge ACK from an
//! ordinary one. Every frame the core emits is re-parsed by etherparse with its checksums. A failing case prints
//! the state, the segment and expected vs actual.

use crate::support;

use support::fixtures::{fixture, roles_of, Flavour};
use support::model::{cases, compare, expect, observe};
use xdptcp::tcp::State;

/// Runs every case for `state` in both roles and both flavours; returns the number of cases.
fn run(state: State) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for flavour in Flavour::ALL {
        for &role in roles_of(state) {
            let proto = fixture(role, state, flavour).expect("fixture");
            for case in cases(&proto) {
                let mut fx = fixture(role, state, flavour).expect("fixture");
                let seg = case.seg(&fx);
                let want = expect(&fx, &case, &seg);
                let before = fx.rig.ep.stats();
                let replies = fx.rig.send(&seg);
                let got = observe(&fx, replies, &before);
                n += 1;
                if let Err(diff) = compare(&want, &got) {
                    let what: Vec<&str> = diff.split("; ").map(|d| d.split(':').next().unwrap_or("")).collect();
                    let key = format!("{:?} {:?} | {} | differs in: {}", role, case.kind, want.why, what.join(", "));
                    failures.push((key, format!(
                        "{}\n    rule: {}\n    expected: {:?} → {} {:?}\n    actual:   {:?} → {} {:?}\n    diff: {diff}",
                        case.describe(&fx, &seg),
                        want.why,
                        want.reply,
                        want.state.name(),
                        want.events,
                        got.reply,
                        got.state.name(),
                        got.events,
                    )));
                }
            }
        }
    }
    if !failures.is_empty() {
        // One example per rule and kind of difference, then the count: the first lines tell the story.
        let mut groups: Vec<(String, usize, String)> = Vec::new();
        for (key, text) in &failures {
            match groups.iter_mut().find(|g| &g.0 == key) {
                Some(g) => g.1 += 1,
                None => groups.push((key.clone(), 1, text.clone())),
            }
        }
        let shown: Vec<String> =
            groups.iter().take(30).map(|(k, c, t)| format!("[{c} cases like this] {k}\n  e.g. {t}")).collect();
        panic!("{} of {n} cases failed in {}:\n{}", failures.len(), state.name(), shown.join("\n"));
    }
    n
}

#[test]
fn rfc9293_3_10_7_1_closed_answers_with_the_prescribed_rst() {
    assert!(run(State::Closed) > 0);
}

#[test]
fn rfc9293_3_10_7_2_listen_is_stateless_and_only_the_exact_cookie_ack_opens() {
    assert!(run(State::Listen) > 0);
}

#[test]
fn rfc9293_3_10_7_3_syn_sent() {
    assert!(run(State::SynSent) > 0);
}

#[test]
fn rfc9293_3_10_7_4_syn_received_after_simultaneous_open() {
    assert!(run(State::SynReceived) > 0);
}

#[test]
fn rfc9293_3_10_7_4_established_with_rfc5961_and_rfc7323() {
    assert!(run(State::Established) > 0);
}

#[test]
fn rfc9293_3_10_7_4_fin_wait_1() {
    assert!(run(State::FinWait1) > 0);
}

#[test]
fn rfc9293_3_10_7_4_fin_wait_2() {
    assert!(run(State::FinWait2) > 0);
}

#[test]
fn rfc9293_3_10_7_4_close_wait() {
    assert!(run(State::CloseWait) > 0);
}

#[test]
fn rfc9293_3_10_7_4_closing() {
    assert!(run(State::Closing) > 0);
}

#[test]
fn rfc9293_3_10_7_4_last_ack() {
    assert!(run(State::LastAck) > 0);
}

#[test]
fn rfc1337_rfc6191_time_wait() {
    assert!(run(State::TimeWait) > 0);
}

/// Every fixture reaches its state in both roles and both flavours (the matrix depends on it).
#[test]
fn fixtures_reach_every_state_of_rfc9293_3_3_2() {
    for state in State::ALL {
        for flavour in Flavour::ALL {
            for &role in roles_of(state) {
                let fx = fixture(role, state, flavour).expect("fixture");
                assert_eq!(fx.observed_state(), state, "{role:?} {flavour:?}");
            }
        }
    }
}
