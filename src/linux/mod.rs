//! The Linux reference server: kernel TCP sockets with epoll, the baseline `xdptcp bench` compares against.
//!
//! [`server`] runs the threads and sockets, [`http`] the `http` app over byte streams, [`linger`] the deadlines
//! of finished connections that wait for the peer's FIN. Nothing here touches
//! AF_XDP, BPF or the TCP core; it shares only the apps' semantics (and the HTTP responses, byte for byte).

pub mod http;
pub mod linger;
pub mod server;

pub use server::{serve, ServerApp, ServerError, ServerOptions, ServerStats};
