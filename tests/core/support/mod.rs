//! Test support for the sans-IO core: frames built and checked by an independent parser (etherparse), a
//! recording app, a two-endpoint network in virtual time, a scripted peer ([`rig`]), a fixture per TCP state
//! ([`fixtures`]) and the RFC model of what each segment should do in each state ([`model`]).
#![allow(dead_code)]

pub mod fixtures;
pub mod frames;
pub mod model;
pub mod net;
pub mod peer;
pub mod recorder;
pub mod rig;
