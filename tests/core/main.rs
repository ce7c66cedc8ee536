//! The sans-IO TCP core's tests, in virtual time and in memory (no root, no AF_XDP: `cargo test
//! --no-default-features` runs them alone), and the SYN cookie's. One test binary rather than one per file: each
//! binary links the whole crate and compiles its own copy of the endpoint's generic code, which made eighteen of
//! them the largest part of the test build.

#[path = "../icmp_frames/mod.rs"]
mod icmp_frames;
#[path = "../regressions/mod.rs"]
mod regressions;
mod support;

mod admission;
mod congestion;
mod cookie_bound;
mod cookie_props;
mod dsack;
mod http;
mod lifecycles;
mod loss_recovery;
mod matrix;
mod path_mtu;
mod presence;
mod props;
mod scenarios;
mod states;
mod tail_loss;
mod time_wait;
mod timers;
mod window;
