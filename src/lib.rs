//! xdptcp: a kernel-bypass TCP stack for Linux on AF_XDP.
//!
//! Layers, bottom to top: [`wire`] (formats, no state), [`tcp`] (the sans-IO core: cookies, state machine,
//! tables, timers), [`app`] (what runs on a connection), [`io`] (AF_XDP and the BPF program: the only `unsafe`),
//! [`runtime`] (pinned workers), [`load`] (the load generator), [`linux`] (the kernel-TCP reference server).
//! `wire`, `tcp` and `app` never touch the OS. `io`, `runtime`, `load` and `linux` need the `af-xdp` feature (on
//! by default); without it the crate is the sans-IO core alone.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod app;
#[cfg(feature = "af-xdp")]
pub mod io;
#[cfg(feature = "af-xdp")]
pub mod linux;
#[cfg(feature = "af-xdp")]
pub mod load;
#[cfg(feature = "af-xdp")]
pub mod runtime;
pub mod sink;
pub mod tcp;
pub mod time;
pub mod wire;
