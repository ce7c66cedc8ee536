//! The wire formats' tests: parsing and emission of whole frames and of TCP options, round trips through an
//! independent parser (etherparse) as properties, and the fuzz seed corpora. One binary for the four (see
//! tests/core/main.rs for why).

#[path = "../regressions/mod.rs"]
mod regressions;
mod support;

mod frames;
mod options;
mod props;
mod seeds;
