//! Cookie keys on the control plane: fresh secrets from the OS, rotated every period, optionally persisted.
//!
//! Workers never share a lock with this: the control thread builds a new [`KeyRing`] and sends each worker its
//! own copy over a channel; a worker swaps it in between batches. At any moment the ring holds the keys of the
//! previous, current and next slot, so a slot boundary never finds a worker without a key, and a cookie minted
//! just before a boundary still validates after it.

use crate::tcp::cookie::{self, CookieKey, KeyRing};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why keys could not be made, loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the OS random generator failed: {0}")]
    Random(String),
    #[error("cookie key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cookie key file {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// Owns the key ring of a server and its optional file.
#[derive(Debug)]
pub struct KeyManager {
    ring: KeyRing,
    file: Option<PathBuf>,
}

fn random_key(slot: u64) -> Result<CookieKey, KeyError> {
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(CookieKey::new(slot, secret))
}

/// A key file holds a header and a few keys; past this it is not one (and a path like `/dev/zero` would
/// otherwise be read until memory ran out).
const MAX_KEY_FILE: u64 = 1 << 20;

/// The bytes of the file at `path`, refused as malformed past [`MAX_KEY_FILE`].
fn read_capped(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        let msg = format!("longer than {} KiB: not a key file", MAX_KEY_FILE >> 10);
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
    }
    Ok(bytes)
}

/// 16 random bytes from the OS (for the table hash and ISN secrets).
pub fn random_secret() -> Result<[u8; 16], KeyError> {
    let mut s = [0u8; 16];
    getrandom::fill(&mut s).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(s)
}

impl KeyManager {
    /// Keys for the slots around `slot`: loaded from `file` when it exists (keys of slots still useful are
    /// kept, so handshakes in flight survive a restart), fresh from the OS otherwise. Saves the file.
    pub fn new(slot: u64, file: Option<&Path>) -> Result<Self, KeyError> {
        let mut ring = KeyRing::new();
        if let Some(path) = file {
            match read_capped(path) {
                Ok(bytes) => {
                    let loaded = KeyRing::from_bytes(&bytes)
                        .map_err(|e| KeyError::Malformed { path: path.to_owned(), reason: e.to_string() })?;
                    for k in loaded.iter() {
                        // Saturating: a file may name any slot below 2^64.
                        if k.slot.saturating_add(1) >= slot && k.slot <= slot.saturating_add(1) {
                            ring.insert(*k);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(KeyError::Io { path: path.to_owned(), source }),
            }
        }
        let mut m = KeyManager { ring, file: file.map(Path::to_owned) };
        m.ensure(slot)?;
        // At start a file that cannot be written is an error; later a failed save is only reported (`save`).
        m.save()?;
        Ok(m)
    }

    /// Makes sure the keys of `slot - 1` (if it was ever ours), `slot` and `slot + 1` exist; returns true when the
    /// ring changed (the caller then [`save`](Self::save)s it).
    pub fn ensure(&mut self, slot: u64) -> Result<bool, KeyError> {
        let mut changed = false;
        for s in [slot, slot + 1] {
            if self.ring.get(s).is_none() {
                self.ring.insert(random_key(s)?);
                changed = true;
            }
        }
        Ok(changed)
    }

    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Writes the ring to the key file (mode 0600, atomically by rename); nothing without a file.
    ///
    /// The temporary copy has a fresh random name and is created, never opened if it exists (`create_new`:
    /// O_EXCL, which also refuses a symlink): a file someone else put at a fixed name would otherwise receive the
    /// secrets with its own owner and mode, and two servers rotating together would write into each other.
    pub fn save(&self) -> Result<(), KeyError> {
        let Some(path) = &self.file else { return Ok(()) };
        let io = |source| KeyError::Io { path: path.clone(), source };
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|e| KeyError::Random(e.to_string()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", u64::from_le_bytes(tag)));
        let written = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(&self.ring.to_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }
}

/// The cookie slot of a wall-clock time.
pub fn slot_now(wall_nanos: u64) -> u64 {
    cookie::slot_at(wall_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rotation_keeps_previous_current_and_next() {
        let mut m = KeyManager::new(100, None).unwrap();
        assert!(m.ring().get(100).is_some() && m.ring().get(101).is_some());
        assert!(m.ensure(101).unwrap());
        assert!(m.ring().get(100).is_some(), "previous slot stays valid for one period");
        assert!(m.ring().get(101).is_some() && m.ring().get(102).is_some());
        assert!(!m.ensure(101).unwrap());
    }

    #[test]
    fn key_file_survives_a_restart_and_is_private() {
        let dir = std::env::temp_dir().join(format!("xdptcp-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let _ = std::fs::remove_file(&path);
        let a = KeyManager::new(500, Some(&path)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = KeyManager::new(500, Some(&path)).unwrap();
        assert_eq!(a.ring().get(500), b.ring().get(500), "a restart reuses the saved key");
        // Much later the old keys are useless and fresh ones are made.
        let c = KeyManager::new(900, Some(&path)).unwrap();
        assert!(c.ring().get(500).is_none());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(KeyManager::new(900, Some(&path)), Err(KeyError::Malformed { .. })));
        // Found by an audit: the largest slot overflowed `slot + 1`, and an endless file was read to the end.
        let last = format!("{}\n{} {}\n", crate::tcp::cookie::KEY_FILE_HEADER, u64::MAX, "ab".repeat(16));
        std::fs::write(&path, last).unwrap();
        let d = KeyManager::new(900, Some(&path)).unwrap();
        assert!(d.ring().get(u64::MAX).is_none(), "a slot far from now is not kept");
        let endless = KeyManager::new(900, Some(Path::new("/dev/zero")));
        assert!(matches!(endless, Err(KeyError::Io { .. })), "{endless:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_save_never_writes_into_a_file_it_did_not_create() {
        // A world-readable file at the old fixed temporary name, and an old key file that is world-readable:
        // the secrets go into a fresh private file, the one in the way is left alone, and nothing is left over.
        let dir = std::env::temp_dir().join(format!("xdptcp-keys-tmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let decoy = path.with_extension("tmp");
        std::fs::write(&decoy, b"someone else's").unwrap();
        std::fs::set_permissions(&decoy, std::fs::Permissions::from_mode(0o644)).unwrap();
        KeyManager::new(700, Some(&path)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        KeyManager::new(800, Some(&path)).unwrap(); // new keys: saved again
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&decoy).unwrap(), b"someone else's");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "the key file and the decoy only: {names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
