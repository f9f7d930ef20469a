//! Who may log in to this node: its administrators (`config system admin`) and REST API
//! users (`config system api-user`), kept in the node's own tables, and the lockout that
//! throttles wrong passwords. The REST API and the SSH CLI both ask here, so one rule and
//! one counter hold for both (`docs/fortios.md`, "Accounts").
//!
//! The topology's `[admin]` and `[[api_user]]` are written into the node's tables at every
//! start ([`seed_command`]), as a factory configuration the topology owns. Passwords and
//! keys are stored only as hashes ([`crate::config::hash_secret`]).
//!
//! FortiOS locks out the address a client logs in from after `admin-lockout-threshold`
//! failed attempts (default 3) for `admin-lockout-duration` seconds (default 60) [doc];
//! [`LoginThrottle`] does the same, per source IP.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::schema::{SYSTEM_ADMIN, SYSTEM_API_USER};
use crate::config::{ConfigCommand, ConfigDb, hash_secret, secret_matches};
use crate::topology::{AdminSpec, ApiUserSpec};

use super::Node;

/// Failed logins from one address before it is locked out: FortiOS's
/// `admin-lockout-threshold` default [doc].
pub const ADMIN_LOCKOUT_THRESHOLD: u32 = 3;
/// How long a locked-out address stays locked: FortiOS's `admin-lockout-duration`
/// default, 60 seconds [doc].
pub const ADMIN_LOCKOUT_DURATION: Duration = Duration::from_secs(60);
/// The access profile of the topology's administrator: FortiOS's factory `admin` has it.
const SUPER_ADMIN: &str = "super_admin";

/// Who logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The administrator or API user name.
    pub user: String,
    /// Its access profile.
    pub accprofile: String,
    /// The virtual domain it may reach.
    pub vdom: String,
}

/// Why a login was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// No such account, or the wrong password or key.
    #[error("Permission denied")]
    BadCredentials,
    /// Too many failures from this address; `remaining` until it may try again.
    #[error("Too many bad login attempts. Try again in {} seconds.", remaining.as_secs().max(1))]
    LockedOut { remaining: Duration },
}

/// Failed logins per source address. A std Mutex around it: nothing awaits while it is held.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: HashMap<IpAddr, Failures>,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

impl LoginThrottle {
    /// `Err` while `peer` is locked out at `now`.
    fn check(&mut self, peer: IpAddr, now: Instant) -> Result<(), LoginError> {
        let Some(failures) = self.failures.get_mut(&peer) else {
            return Ok(());
        };
        match failures.locked_until {
            Some(until) if until > now => Err(LoginError::LockedOut {
                remaining: until - now,
            }),
            Some(_) => {
                self.failures.remove(&peer);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failure from `peer`; the one that reaches the threshold locks it out.
    fn fail(&mut self, peer: IpAddr, now: Instant) {
        let failures = self.failures.entry(peer).or_default();
        failures.count += 1;
        if failures.count >= ADMIN_LOCKOUT_THRESHOLD {
            failures.locked_until = Some(now + ADMIN_LOCKOUT_DURATION);
        }
    }

    /// A success forgets the address's earlier failures.
    fn succeed(&mut self, peer: IpAddr) {
        self.failures.remove(&peer);
    }
}

impl Node {
    /// Checks an administrator's password, as the REST API's `/logincheck` and the SSH
    /// server's password authentication do. Every failure from `peer` counts towards its
    /// lockout; while locked out even the right password is refused.
    pub fn check_password(&self, user: &str, password: &str, peer: IpAddr) -> Result<Login, LoginError> {
        let now = Instant::now();
        let mut throttle = self.shared.throttle.lock().expect("login throttle lock");
        throttle.check(peer, now)?;
        let db = crate::cli::Backend::config(self);
        match admin_login(&db, user, password) {
            Some(login) => {
                throttle.succeed(peer);
                Ok(login)
            }
            None => {
                throttle.fail(peer, now);
                Err(LoginError::BadCredentials)
            }
        }
    }

    /// The API user whose key is `key`, for a REST request's bearer token. Keys are long
    /// and random, so they are not throttled.
    pub fn check_api_key(&self, key: &str) -> Option<Login> {
        if key.is_empty() {
            return None;
        }
        let db = crate::cli::Backend::config(self);
        db.entries(SYSTEM_API_USER.path).find_map(|(name, entry)| {
            let stored = entry.get("api-key").unwrap_or_default();
            (!stored.is_empty() && secret_matches(stored, key)).then(|| Login {
                user: name.to_owned(),
                accprofile: value(entry, &SYSTEM_API_USER, "accprofile"),
                vdom: value(entry, &SYSTEM_API_USER, "vdom"),
            })
        })
    }
}

/// The administrator `user` of `db` when `password` is its password.
fn admin_login(db: &ConfigDb, user: &str, password: &str) -> Option<Login> {
    let entry = db.entry(SYSTEM_ADMIN.path, user)?;
    secret_matches(entry.get("password").unwrap_or_default(), password).then(|| Login {
        user: user.to_owned(),
        accprofile: value(entry, &SYSTEM_ADMIN, "accprofile"),
        vdom: value(entry, &SYSTEM_ADMIN, "vdom"),
    })
}

/// `field` of `entry`, or its default.
fn value(entry: &crate::config::Entry, table: &crate::config::TableSchema, field: &str) -> String {
    entry
        .get(field)
        .or_else(|| table.field(field).map(|spec| spec.default))
        .unwrap_or_default()
        .to_owned()
}

/// The change that writes the topology's accounts into the node's tables `db`: the
/// administrator with `super_admin` and its password, each API user with its profile and
/// its fixed key (a user without one keeps the key it has).
pub fn seed_command(db: &ConfigDb, admin: &AdminSpec, api_users: &[ApiUserSpec]) -> ConfigCommand {
    let mut commands = vec![ConfigCommand::SetEntry {
        table: SYSTEM_ADMIN.path.to_owned(),
        key: admin.user.clone(),
        values: BTreeMap::from([
            ("accprofile".to_owned(), SUPER_ADMIN.to_owned()),
            ("password".to_owned(), hash_secret_or_empty(&admin.password)),
        ]),
    }];
    for user in api_users {
        let mut values = BTreeMap::from([("accprofile".to_owned(), user.accprofile.clone())]);
        let key = match &user.key {
            Some(key) => Some(hash_secret(key)),
            None => db
                .entry(SYSTEM_API_USER.path, &user.name)
                .and_then(|entry| entry.get("api-key"))
                .map(str::to_owned),
        };
        if let Some(key) = key {
            values.insert("api-key".to_owned(), key);
        }
        commands.push(ConfigCommand::SetEntry {
            table: SYSTEM_API_USER.path.to_owned(),
            key: user.name.clone(),
            values,
        });
    }
    ConfigCommand::Batch(commands)
}

/// The stored form of a password: empty stays empty (no password, FortiOS's default).
fn hash_secret_or_empty(password: &str) -> String {
    if password.is_empty() {
        String::new()
    } else {
        hash_secret(password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_failure_locks_the_address_out_for_the_duration() {
        let mut throttle = LoginThrottle::default();
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let start = Instant::now();
        for _ in 1..ADMIN_LOCKOUT_THRESHOLD {
            throttle.fail(peer, start);
            assert_eq!(throttle.check(peer, start), Ok(()));
        }
        throttle.fail(peer, start);
        assert!(matches!(
            throttle.check(peer, start),
            Err(LoginError::LockedOut { .. })
        ));
        assert_eq!(throttle.check(other, start), Ok(()));
        let later = start + ADMIN_LOCKOUT_DURATION;
        assert_eq!(throttle.check(peer, later), Ok(()));
        throttle.fail(peer, later);
        assert_eq!(throttle.check(peer, later), Ok(()), "the count starts again");
    }

    #[test]
    fn seeded_accounts_log_in_with_their_secrets_only() {
        let admin = AdminSpec {
            user: "admin".to_owned(),
            password: "s3cret".to_owned(),
        };
        let users = [ApiUserSpec {
            name: "automation".to_owned(),
            key: Some("r7Qm2vXk9sLp4tWz8nBc3hJd6fGy1a".to_owned()),
            accprofile: "super_admin".to_owned(),
        }];
        let mut db = ConfigDb::new();
        db.apply(&seed_command(&ConfigDb::new(), &admin, &users)).unwrap();
        assert!(admin_login(&db, "admin", "s3cret").is_some());
        assert!(admin_login(&db, "admin", "wrong").is_none());
        assert!(admin_login(&db, "nobody", "s3cret").is_none());
        let stored = db.value(SYSTEM_API_USER.path, "automation", "api-key");
        assert!(
            stored.starts_with("ENC SH2") && !stored.contains("r7Qm2"),
            "{stored}"
        );
        assert!(
            !db.value(SYSTEM_ADMIN.path, "admin", "password")
                .contains("s3cret")
        );
    }
}
