//! What every part of the endpoint shares: configuration, the app, keys, send queues, counters and limiters.
//!
//! The per-family state (tables, timers, TIME-WAIT) lives in [`crate::tcp::flows::Flows`]; processing functions
//! take both so the borrow checker can see they are disjoint.

use crate::app::App;
use crate::tcp::config::Config;
use crate::tcp::cookie::{self, KeyRing};
use crate::tcp::isn::IsnGenerator;
use crate::tcp::next_hops::NextHops;
use crate::tcp::ports::PortSet;
use crate::tcp::ratelimit::{RateLimiter, SecretBudget};
use crate::tcp::reassembly::Reassembly;
use crate::tcp::scoreboard::Scoreboards;
use crate::tcp::sendbuf::SendBufs;
use crate::tcp::seq::SeqNum;
use crate::tcp::stats::Stats;
use crate::time::Instant;

pub struct Ctx<A> {
    pub cfg: Config,
    pub app: A,
    pub keys: KeyRing,
    pub isn: IsnGenerator,
    pub bufs: SendBufs,
    /// Out-of-order data connections hold.
    pub held: Reassembly,
    /// What peers have SACKed of connections repairing a loss.
    pub boards: Scoreboards,
    /// The MAC and VLAN of every live connection's peer.
    pub hops: NextHops,
    pub stats: Stats,
    pub rst_limit: RateLimiter,
    /// The optional endpoint-wide cap on live connections' challenge ACKs (`Config::challenge_acks_per_sec`).
    pub challenge_limit: Option<SecretBudget>,
    /// TIME-WAIT entries' answers, for the whole endpoint.
    pub time_wait_limit: SecretBudget,
    pub listening: PortSet,
    /// Live connections of both families (the bound is shared).
    pub live: usize,
    /// Set at every entry point; all processing of one call sees the same time.
    pub now: Instant,
    /// RFC 2883: data the segment being processed duplicated, for the D-SACK block of the ACK that answers it
    /// (set by `input`; taken by that ACK, a pure one or the first data segment with room for a SACK block; and
    /// cleared when the event ends whether or not it went).
    pub dsack: Option<(SeqNum, SeqNum)>,
}

impl<A: App> Ctx<A> {
    pub fn new(cfg: Config, app: A) -> Self {
        Ctx {
            isn: IsnGenerator::new(cfg.isn_secret),
            rst_limit: RateLimiter::new(cfg.rst_per_sec, (cfg.rst_per_sec / 10).max(1)),
            challenge_limit: cfg.challenge_acks_per_sec.map(|n| SecretBudget::new(n, cfg.hash_secret)),
            time_wait_limit: SecretBudget::new(cfg.time_wait_acks_per_sec, cfg.isn_secret),
            bufs: SendBufs::with_budget(cfg.send_memory),
            held: Reassembly::new(cfg.rcv_wnd, cfg.reassembly_memory),
            boards: Scoreboards::default(),
            hops: NextHops::new({
                // Its own key, derived from the one secret as the flow tables derive theirs.
                let mut k = cfg.hash_secret;
                k[0] ^= 0x08;
                k
            }),
            cfg,
            app,
            keys: KeyRing::new(),
            stats: Stats::default(),
            listening: PortSet::default(),
            live: 0,
            now: Instant::ZERO,
            dsack: None,
        }
    }

    /// Our RFC 7323 timestamp clock: milliseconds plus a secret offset.
    #[inline]
    pub fn ts_clock(&self) -> u32 {
        (self.now.as_millis() as u32).wrapping_add(self.cfg.ts_offset)
    }

    /// The cookie clock slot of `now`.
    #[inline]
    pub fn cookie_slot(&self) -> u64 {
        cookie::slot_at(self.now.as_nanos().wrapping_add(self.cfg.wall_clock_offset))
    }

    /// Microseconds for RTT timing (wraps every 71 minutes; only differences are used).
    #[inline]
    pub fn now_us(&self) -> u32 {
        self.now.as_micros() as u32
    }
}
