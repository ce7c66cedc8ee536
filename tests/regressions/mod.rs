//! Where proptest keeps the seeds of failing cases: beside each test file (`tests/core/props.rs` →
//! `tests/core/props.proptest-regressions`), as when every file was its own test binary. Proptest's default
//! walks up to the nearest `main.rs` and keeps them in one directory by file name alone, where
//! `tests/core/props.rs` and `tests/wire/props.rs` would share one file, and the committed seeds went unread.

use proptest::test_runner::{Config, FileFailurePersistence};

/// Proptest's defaults with `cases` cases and the seeds kept beside the test file.
pub fn config(cases: u32) -> Config {
    let beside = FileFailurePersistence::WithSource("proptest-regressions");
    Config { cases, failure_persistence: Some(Box::new(beside)), ..Config::default() }
}
