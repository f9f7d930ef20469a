//! The state directory `.fabricsim/<fabric>/`: one data directory per node, the admin
//! token, the addresses the running nodes listen on, and the locks that keep two
//! processes from running the same node.
//!
//! ```text
//! .fabricsim/default/
//!     admin.token        bearer token of the admin service (mode 0600)
//!     root.lock          held while a process runs node `root`; holds that process's id
//!     root/raft-log/     the node's Raft log and vote: segments of records (`raft::wal`)
//!     root/raft.redb     the node's latest Raft snapshot
//!     root/listen        the address node `root` listens on while it runs
//!     root/fabricsim.log what node `root` logged (appended to by every run)
//!     fabricsim.log      what the rest of `up` logged: start-up, simulators, stopping
//!     bootstrap.applied  the root's revision once the topology's `[bootstrap]` was applied
//!                        (`running` while it runs)
//!     pki/               the simulated CAs and EMS certificates (PEM), made on first use
//!     sim.listen         the address of the simulators' control service while `up` or `sim` runs
//! ```
//!
//! A lock file exists only while its node runs: the process removes it when it lets go
//! (a killed process leaves it, unlocked, and the next one takes it).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::topology::Topology;

const TOKEN_FILE: &str = "admin.token";
const LISTEN_FILE: &str = "listen";
const SIM_LISTEN_FILE: &str = "sim.listen";
const BOOTSTRAP_FILE: &str = "bootstrap.applied";
/// What the bootstrap file holds while the bootstrap runs.
const BOOTSTRAP_RUNNING: &str = "running";
/// The log file of each node (in its directory) and of the rest of the process (in the
/// state directory).
pub const LOG_FILE: &str = "fabricsim.log";
/// How many times taking a lock is tried when the file is removed under it.
const LOCK_ATTEMPTS: usize = 5;
/// Bytes of randomness in a fresh admin token.
const TOKEN_BYTES: usize = 24;

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "node {node} is already running in another fabricsim process{holder} (lock {path}); \
         stop that process first, or use another state directory"
    )]
    Locked {
        node: String,
        path: PathBuf,
        holder: String,
    },
    #[error(
        "no admin token at {path}: the fabric has not been started here (run `fabricsim up` \
         in this directory first)"
    )]
    NoToken { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The state directory of one fabric.
#[derive(Clone, Debug)]
pub struct StateDir {
    path: PathBuf,
}

/// Held while a process runs a node; dropping it removes the lock file and releases the
/// node.
#[derive(Debug)]
pub struct NodeLock {
    file: File,
    path: PathBuf,
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        // Removed while still locked, so that a process waiting on this file finds, once it
        // has the lock, that the path is no longer its file and takes a new one.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

impl StateDir {
    /// `.fabricsim/<fabric>/` below `base`.
    pub fn new(base: &Path, topology: &Topology) -> StateDir {
        StateDir {
            path: base.join(".fabricsim").join(&topology.fabric.name),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data directory of one node.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.path.join(node)
    }

    fn create(&self) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))
    }

    /// Takes the node's lock, or says which process holds it.
    pub fn lock_node(&self, node: &str) -> Result<NodeLock, StateError> {
        self.create()?;
        let path = self.path.join(format!("{node}.lock"));
        for _ in 1..LOCK_ATTEMPTS {
            let lock = self.try_lock_file(node, &path)?;
            if same_file(&lock.file, &path) {
                return Ok(lock);
            }
            // The holder removed the file between our open and our lock: take a new one.
            drop(lock);
        }
        self.try_lock_file(node, &path)
    }

    fn try_lock_file(&self, node: &str, path: &Path) -> Result<NodeLock, StateError> {
        let path = path.to_owned();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(StateError::Locked {
                    node: node.to_owned(),
                    holder: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (process {pid})")
                    },
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.set_len(0).map_err(io(&path))?;
        write!(file, "{}", std::process::id()).map_err(io(&path))?;
        Ok(NodeLock { file, path })
    }

    /// Removes a node's data; only with its lock held.
    pub fn clear_node(&self, node: &str, _lock: &NodeLock) -> Result<(), StateError> {
        let dir = self.node_dir(node);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&dir)(e)),
            _ => Ok(()),
        }
    }

    /// Reads the admin token, creating it (mode 0600) if there is none yet.
    pub fn ensure_token(&self) -> Result<String, StateError> {
        self.create()?;
        let path = self.path.join(TOKEN_FILE);
        if let Ok(token) = std::fs::read_to_string(&path) {
            return Ok(token.trim().to_owned());
        }
        let token = random_token(&path)?;
        // Written whole under a temporary name, then linked into place: a `status --wait`
        // polling for the file never reads it half written, and of two `up`s racing to
        // make it, the second finds the first one's.
        let partial = self.path.join(format!("{TOKEN_FILE}.{}", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&partial)
            .and_then(|mut file| file.write_all(token.as_bytes()))
            .and_then(|()| std::fs::hard_link(&partial, &path));
        let _ = std::fs::remove_file(&partial);
        match written {
            Ok(()) => Ok(token),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.token(),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Removes the admin token: `up` does when it made the token and then could not start.
    pub fn remove_token(&self) {
        let _ = std::fs::remove_file(self.path.join(TOKEN_FILE));
    }

    /// Reads the admin token of a fabric started in this directory.
    pub fn token(&self) -> Result<String, StateError> {
        let path = self.path.join(TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(token) => Ok(token.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StateError::NoToken { path }),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Where the simulated CAs and EMS certificates are kept.
    pub fn pki_dir(&self) -> PathBuf {
        self.path.join("pki")
    }

    /// Records the address of the simulators' control service.
    pub fn write_sim_listen(&self, addr: SocketAddr) -> Result<(), StateError> {
        write_addr(&self.path.join(SIM_LISTEN_FILE), addr)
    }

    /// Forgets the simulators' control address when `up` stops.
    pub fn clear_sim_listen(&self) {
        let _ = std::fs::remove_file(self.path.join(SIM_LISTEN_FILE));
    }

    /// The address of the simulators' control service, if `up` recorded one.
    pub fn read_sim_listen(&self) -> Option<SocketAddr> {
        read_addr(&self.path.join(SIM_LISTEN_FILE))
    }

    /// Records that the topology's bootstrap is running: until it has been applied, an
    /// interrupted bootstrap is run again by the next `up`.
    pub fn mark_bootstrap_started(&self) -> Result<(), StateError> {
        self.create()?;
        let path = self.path.join(BOOTSTRAP_FILE);
        std::fs::write(&path, BOOTSTRAP_RUNNING).map_err(io(&path))
    }

    /// Whether a bootstrap was started and never finished.
    pub fn bootstrap_interrupted(&self) -> bool {
        std::fs::read_to_string(self.path.join(BOOTSTRAP_FILE))
            .is_ok_and(|text| text.trim() == BOOTSTRAP_RUNNING)
    }

    /// Records that the topology's bootstrap has been applied, at the root's `revision`.
    pub fn write_bootstrapped(&self, revision: u64) -> Result<(), StateError> {
        let path = self.path.join(BOOTSTRAP_FILE);
        std::fs::write(&path, revision.to_string()).map_err(io(&path))
    }

    /// The root's revision once the bootstrap was applied, if `up` recorded it.
    pub fn read_bootstrapped(&self) -> Option<u64> {
        std::fs::read_to_string(self.path.join(BOOTSTRAP_FILE))
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }

    /// Forgets the bootstrap's revision: the bootstrap is about to run (again).
    pub fn clear_bootstrapped(&self) {
        let _ = std::fs::remove_file(self.path.join(BOOTSTRAP_FILE));
    }

    /// Where node `node` logs, or (`None`) the rest of the process.
    pub fn log_file(&self, node: Option<&str>) -> PathBuf {
        match node {
            Some(node) => self.node_dir(node).join(LOG_FILE),
            None => self.path.join(LOG_FILE),
        }
    }

    /// Records the address a running node listens on.
    pub fn write_listen(&self, node: &str, addr: SocketAddr) -> Result<(), StateError> {
        write_addr(&self.node_dir(node).join(LISTEN_FILE), addr)
    }

    /// The address a node listens on, if a process recorded one.
    pub fn read_listen(&self, node: &str) -> Option<SocketAddr> {
        read_addr(&self.node_dir(node).join(LISTEN_FILE))
    }
}

/// Writes an address file, creating its directory.
fn write_addr(path: &Path, addr: SocketAddr) -> Result<(), StateError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, addr.to_string()).map_err(io(path))
}

/// The address in an address file, if there is a readable one.
fn read_addr(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

fn random_token(context: &Path) -> Result<String, StateError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io(context))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_dir() -> (tempfile::TempDir, StateDir) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir {
            path: dir.path().join(".fabricsim/test"),
        };
        (dir, state)
    }

    #[test]
    fn a_lock_file_exists_only_while_its_node_is_held() {
        let (_dir, state) = state_dir();
        let lock = state.lock_node("root").unwrap();
        let path = state.path().join("root.lock");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        let refused = state.lock_node("root").unwrap_err();
        assert!(matches!(refused, StateError::Locked { .. }), "{refused}");
        assert!(path.exists(), "a refused lock removed the holder's file");
        drop(lock);
        assert!(!path.exists(), "the lock file outlived its lock");
        // Taken again, and a file left by a killed process (unlocked) is taken over.
        std::fs::write(&path, "12345").unwrap();
        let again = state.lock_node("root").unwrap();
        drop(again);
        assert!(!path.exists());
    }

    #[test]
    fn the_bootstrap_record_says_running_then_the_revision() {
        let (_dir, state) = state_dir();
        assert_eq!(state.read_bootstrapped(), None);
        assert!(!state.bootstrap_interrupted());
        state.mark_bootstrap_started().unwrap();
        assert!(state.bootstrap_interrupted());
        assert_eq!(state.read_bootstrapped(), None);
        state.write_bootstrapped(7).unwrap();
        assert!(!state.bootstrap_interrupted());
        assert_eq!(state.read_bootstrapped(), Some(7));
        state.clear_bootstrapped();
        assert_eq!(state.read_bootstrapped(), None);
    }

    /// A reader polling for the token (`status --wait` before `up`) finds it whole or not
    /// at all; a second `up` gets the first one's; nothing else is left in the directory.
    #[test]
    fn the_admin_token_appears_whole_and_once() {
        for _ in 0..50 {
            let (_dir, state) = state_dir();
            state.create().unwrap();
            let reader = {
                let state = StateDir {
                    path: state.path.clone(),
                };
                std::thread::spawn(move || {
                    loop {
                        match state.token() {
                            Ok(token) => return token,
                            Err(StateError::NoToken { .. }) => std::hint::spin_loop(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            };
            let token = state.ensure_token().unwrap();
            assert_eq!(reader.join().unwrap(), token, "the reader saw a partial token");
            assert_eq!(state.ensure_token().unwrap(), token);
            let names: Vec<_> = std::fs::read_dir(&state.path)
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            assert_eq!(names, [std::ffi::OsString::from(TOKEN_FILE)]);
        }
    }
}
