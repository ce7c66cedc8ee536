//! Flags that name a file to write results to (`load --json`, `load --hgrm`, `serve --stats-json`). The path is
//! tried on the command line, before anything runs: a run of minutes that only learns at its end that its
//! results cannot be written has lost them, and a server would complain once a second for as long as it runs.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// A path this process can write a file at: an existing file it may write to, or a new one in an existing
/// directory it may create files in. An existing file is opened without being changed; for a new one a probe
/// file is created beside it and removed (trying is the only sure test, whatever the privileges).
pub fn parse_output_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("an empty path".to_string());
    }
    let path = PathBuf::from(s);
    check_writable(&path).map(|()| path)
}

fn check_writable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{} is a directory", path.display()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("no directory {} to write {} in", dir.display(), path.display()));
    }
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    match OpenOptions::new().write(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // A file of our own beside it, never the path itself: whoever waits for that file to appear must
            // not find an empty one.
            let probe = dir.join(format!(".xdptcp-probe-{}", std::process::id()));
            OpenOptions::new().write(true).create(true).truncate(true).open(&probe).map_err(cannot)?;
            std::fs::remove_file(&probe).map_err(cannot)
        }
        Err(e) => Err(cannot(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_cannot_be_written_are_refused_and_nothing_is_left_behind() {
        let dir = std::env::temp_dir().join(format!("xdptcp-path-arg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("new.json");
        assert_eq!(parse_output_path(new.to_str().unwrap()), Ok(new.clone()));
        assert!(!new.exists(), "the path itself is not created");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the probe removes the file it created");
        let old = dir.join("old.json");
        std::fs::write(&old, "kept").unwrap();
        assert_eq!(parse_output_path(old.to_str().unwrap()), Ok(old.clone()));
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "kept", "an existing file is not changed");
        for bad in ["", "/nonexistent-xdptcp-dir/x.json", dir.to_str().unwrap(), "/proc/xdptcp-no.json"] {
            assert!(parse_output_path(bad).is_err(), "{bad:?} accepted");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
