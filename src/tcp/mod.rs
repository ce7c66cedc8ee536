//! The sans-IO TCP core: bytes and `now` in, frames and the next deadline out.
//!
//! It never touches sockets, clocks, threads or randomness: keys and seeds arrive through [`Config`] and
//! [`cookie::KeyRing`]. It must never import `io`, `runtime` or anything else that touches the OS.
//!
//! Map: [`endpoint`] is the public face and routes each segment to [`input`] (live connections), [`tw_input`]
//! (TIME-WAIT), [`listen`] (stateless SYN cookies, with [`replay`] refusing a second use of one) or a reset; [`lifecycle`] finishes every event (send, arm
//! the timer, retire); [`output`] builds what goes out; [`timers`] handles expiry.

pub mod api;
pub mod config;
pub mod conn;
pub mod cookie;
mod ctx;
pub mod endpoint;
pub mod flow;
mod flows;
mod input;
pub mod isn;
mod keyed_index;
mod lifecycle;
mod listen;
pub mod next_hops;
mod output;
mod path_mtu;
pub mod ports;
pub mod presence;
pub mod ratelimit;
pub mod reassembly;
pub mod replay;
pub mod scoreboard;
pub mod sendbuf;
pub mod seq;
pub mod stats;
pub mod table;
pub mod time_wait;
pub mod timer;
mod timers;
mod tw_input;

pub use api::{CloseReason, Conn, ConnId};
pub use config::Config;
pub use conn::State;
pub use endpoint::{ConnectError, Endpoint, Memory};
pub use stats::Stats;
