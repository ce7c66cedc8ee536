//! The load generator: the client role of this stack on AF_XDP, driving connection storms against a server and
//! measuring them honestly.
//!
//! Map: [`schedule`] says when each connection is due (open or closed loop), [`tuples`] which source tuple it
//! uses, [`app`] what it does and records, [`histograms`] and [`report`] how results are kept and shown,
//! [`neigh`] finds the next hop's MAC, [`runner`] drives one endpoint per queue over AF_XDP, [`handoff`] carries
//! segments that arrive on another worker's queue to the worker that owns their tuple, [`flood`] crafts
//! stateless SYN/ACK floods.
//!
//! Latency is always measured from a connection's intended start (no coordinated omission). Nothing here
//! allocates per connection or per packet once a run is warm.

pub mod app;
pub mod driver;
pub mod flood;
pub mod handoff;
pub mod histograms;
pub mod neigh;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod tuples;

pub use runner::{run, LoadError, LoadOptions, Outcome, RequestKind};
