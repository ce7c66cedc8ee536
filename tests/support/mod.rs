//! Test support for the sans-IO core: frames built and checked by an independent parser (etherparse), a
//! recording app, and a two-endpoint network in virtual time.
#![allow(dead_code)]

pub mod frames;
pub mod net;
pub mod recorder;
