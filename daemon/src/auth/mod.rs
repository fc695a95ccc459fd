//! Who is asking: sessions for the UI, HTTP Basic and bearer tokens for the API, and a limit on
//! failed logins.
//!
//! Users come from `[[users]]` of the site in force, so an edit of site.toml adds or removes
//! them at the next reload. Sessions and tokens are random 256-bit values kept in memory; a
//! restart logs everyone out. A source address that fails [`MAX_FAILURES`] logins within
//! [`FAILURE_WINDOW`] is refused (429) until the window ends. argon2 is slow on purpose, so a
//! successful Basic login is remembered for [`BASIC_CACHE`] by a hash of user and password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod credentials;

use argon2::PasswordVerifier as _;

pub use credentials::{COOKIE, Credentials};

use crate::base::{Error, Kind, random};
use crate::config::site::{User, UserRole};

/// Failed logins allowed per source address and window.
pub const MAX_FAILURES: u32 = 5;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a UI session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long an API token lasts.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long a verified Basic login is remembered.
pub const BASIC_CACHE: Duration = Duration::from_secs(300);

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The login name.
    pub name: String,
    /// What they may do.
    pub role: UserRole,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong name or password.
    Invalid,
    /// Too many failures from this address; retry after this long.
    Throttled(Duration),
}

struct Grant {
    principal: Principal,
    expires: Instant,
}

/// The authentication state of the web service.
#[derive(Default)]
pub struct Auth {
    grants: Mutex<HashMap<String, Grant>>,
    basic: Mutex<HashMap<Vec<u8>, Grant>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Hashes a password with argon2id and a random salt: a `password_hash` of `[[users]]`.
pub fn hash_password(password: &str) -> Result<String, Error> {
    use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::new(Kind::Internal, format!("cannot hash the password: {e}")))
}

impl Auth {
    fn throttled(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let (since, count) = failures.get(&ip)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed())?;
        (*count >= MAX_FAILURES).then_some(left)
    }

    fn failed(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures.entry(ip).or_insert((Instant::now(), 0));
            if entry.0.elapsed() > FAILURE_WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
            tracing::warn!(source = %ip, failures = entry.1, "failed login");
        }
    }

    /// Checks a name and password against the users.
    pub fn login(
        &self,
        users: &[User],
        ip: IpAddr,
        name: &str,
        password: &str,
    ) -> Result<Principal, Refusal> {
        if let Some(left) = self.throttled(ip) {
            return Err(Refusal::Throttled(left));
        }
        let key = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{name}\0{password}").as_bytes(),
        )
        .as_ref()
        .to_vec();
        if let Some(g) = self.basic.lock().ok().and_then(|b| {
            b.get(&key)
                .filter(|g| g.expires > Instant::now())
                .map(|g| g.principal.clone())
        }) && users.iter().any(|u| u.name == g.name && u.role == g.role)
        {
            return Ok(g);
        }
        let user = users.iter().find(|u| u.name == name);
        let ok = user.is_some_and(|u| {
            argon2::PasswordHash::new(&u.password_hash).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        });
        match user.filter(|_| ok) {
            Some(u) => {
                let principal = Principal {
                    name: u.name.clone(),
                    role: u.role,
                };
                if let Ok(mut b) = self.basic.lock() {
                    b.retain(|_, g| g.expires > Instant::now());
                    b.insert(
                        key,
                        Grant {
                            principal: principal.clone(),
                            expires: Instant::now() + BASIC_CACHE,
                        },
                    );
                }
                Ok(principal)
            }
            None => {
                self.failed(ip);
                Err(Refusal::Invalid)
            }
        }
    }

    /// Who a request's credentials name: a session, then a token, then HTTP Basic (checked
    /// against `users`, throttled per address). `Ok(None)` when it carries none.
    pub fn principal(
        &self,
        users: &[User],
        credentials: &Credentials,
        ip: IpAddr,
    ) -> Result<Option<Principal>, Refusal> {
        let granted = [&credentials.session, &credentials.token]
            .into_iter()
            .flatten()
            .find_map(|t| self.lookup(users, t));
        if let Some(p) = granted {
            return Ok(Some(p));
        }
        match &credentials.basic {
            Some((user, password)) => self.login(users, ip, user, password).map(Some),
            None => Ok(None),
        }
    }

    /// Issues a session or token for a principal; fails only when no random token can be made.
    pub fn grant(&self, principal: Principal, ttl: Duration) -> Result<(String, Instant), Error> {
        let token = random::token()?;
        let expires = Instant::now() + ttl;
        if let Ok(mut grants) = self.grants.lock() {
            grants.retain(|_, g| g.expires > Instant::now());
            grants.insert(token.clone(), Grant { principal, expires });
        }
        Ok((token, expires))
    }

    /// The principal of a session or token, if it is valid and its user still exists.
    pub fn lookup(&self, users: &[User], token: &str) -> Option<Principal> {
        let grants = self.grants.lock().ok()?;
        let g = grants.get(token).filter(|g| g.expires > Instant::now())?;
        users
            .iter()
            .any(|u| u.name == g.principal.name && u.role == g.principal.role)
            .then(|| g.principal.clone())
    }

    /// Ends a session.
    pub fn revoke(&self, token: &str) {
        if let Ok(mut grants) = self.grants.lock() {
            grants.remove(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<User> {
        let hash = hash_password("right").unwrap();
        vec![User {
            name: "ann".into(),
            role: UserRole::Admin,
            password_hash: hash,
        }]
    }

    #[test]
    fn logins_are_checked_and_failures_throttled() {
        let auth = Auth::default();
        let users = users();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(auth.login(&users, ip, "ann", "right").unwrap().name, "ann");
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                auth.login(&users, ip, "ann", "wrong"),
                Err(Refusal::Invalid)
            );
        }
        assert!(matches!(
            auth.login(&users, ip, "ann", "right"),
            Err(Refusal::Throttled(_))
        ));
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(
            auth.login(&users, other, "ann", "right").is_ok(),
            "throttling is per address"
        );
    }

    #[test]
    fn grants_expire_with_their_user() {
        let auth = Auth::default();
        let users = users();
        let (token, _) = auth
            .grant(
                Principal {
                    name: "ann".into(),
                    role: UserRole::Admin,
                },
                SESSION_TTL,
            )
            .unwrap();
        assert!(auth.lookup(&users, &token).is_some());
        assert!(
            auth.lookup(&[], &token).is_none(),
            "a removed user loses their sessions"
        );
        auth.revoke(&token);
        assert!(auth.lookup(&users, &token).is_none());
    }
}
