//! The runtime: pinned workers that drive endpoints over AF_XDP, and the control plane around them (cookie key
//! rotation, stats, shutdown).

pub mod answer_watch;
pub mod clock;
pub mod fault;
pub mod keys;
pub mod mesh;
pub mod metric_help;
pub mod metrics;
pub mod pin;
pub mod report;
pub mod serve;
pub mod worker;
