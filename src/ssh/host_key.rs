//! The node's SSH host key: ed25519, made on the first start and kept in the data
//! directory, so a client that pinned it (known_hosts) still trusts the node after a
//! restart. A key file that does not parse is an error naming the file: replacing it would
//! change the node's identity behind the administrator's back.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;

/// The host key's file in the node's data directory (OpenSSH's name for it).
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// Why the host key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("SSH host key {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("SSH host key {}: not an OpenSSH private key: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("SSH host key {}: cannot make a key: {reason}", path.display())]
    Generate { path: PathBuf, reason: String },
}

/// The host key stored in `data_dir`, made and stored (mode 0600) when there is none.
pub fn load_or_create(data_dir: &Path) -> Result<PrivateKey, HostKeyError> {
    let path = data_dir.join(HOST_KEY_FILE);
    let io = |source| HostKeyError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(text) => PrivateKey::from_openssh(text).map_err(|e| HostKeyError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let key = generate(&path)?;
            let text = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| HostKeyError::Generate {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// A fresh ed25519 key from the system's random source.
fn generate(path: &Path) -> Result<PrivateKey, HostKeyError> {
    let mut seed = [0u8; 32];
    crate::wire::crypto_provider()
        .secure_random
        .fill(&mut seed)
        .map_err(|_| HostKeyError::Generate {
            path: path.to_owned(),
            reason: "the system random source failed".to_owned(),
        })?;
    Ok(PrivateKey::from(Ed25519Keypair::from_seed(&seed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::HashAlg;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_with_mode_0600_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let path = dir.path().join(HOST_KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(
            first.public_key().fingerprint(HashAlg::Sha256),
            again.public_key().fingerprint(HashAlg::Sha256)
        );
        assert_eq!(first.algorithm(), russh::keys::Algorithm::Ed25519);
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_naming_it_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HOST_KEY_FILE);
        std::fs::write(&path, b"not a key").unwrap();
        let error = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(error.contains(HOST_KEY_FILE), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
    }
}
