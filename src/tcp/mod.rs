//! The sans-IO TCP core: bytes and `now` in, frames and the next deadline out.
//!
//! It never touches sockets, clocks, threads or randomness: keys and seeds arrive through [`Config`] and
//! [`cookie::KeyRing`]. It must never import `io`, `runtime` or anything else that touches the OS.

pub mod api;
pub mod cookie;
pub mod flow;
pub mod isn;
pub mod seq;
pub mod table;
pub mod time_wait;
pub mod timer;
