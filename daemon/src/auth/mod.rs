//! Who is asking: sessions for the UI, HTTP Basic and bearer tokens for the API, and a limit on
//! failed logins.
//!
//! Users come from `[[users]]` of the site in force, so an edit of site.toml adds or removes
//! them at the next reload. On a node that holds the per-site secret, sessions and tokens are
//! site tokens ([`token`]): signed claims that every node of the site accepts, revoked
//! site-wide through [`revoked`]. On a node without a secret they are random 256-bit values
//! kept in memory, and a restart logs everyone out. Either way each is tied to the password
//! hash its user logged in with: a changed password, a changed role or a removed user revokes
//! every session, token and cached Basic login at once. Failed logins are slowed per source and per user ([`throttle`]: the
//! owner of the right password still gets in). argon2 is slow on purpose, so a successful Basic
//! login is remembered for [`BASIC_CACHE`] by a hash of user and password; an unknown user is
//! checked against a dummy hash, so that it costs as much as a known one and its timing tells
//! nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod credentials;
pub mod revoked;
pub mod throttle;
pub mod token;

use argon2::PasswordVerifier as _;

pub use credentials::{COOKIE, Credentials};
pub use revoked::{Revocation, Revoked};
pub use token::TokenKey;

use crate::base::{Error, Kind, random};
use crate::config::site::{User, UserRole};

pub use throttle::{FAILURE_WINDOW, MAX_FAILURES};
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
    /// A fingerprint of the password hash they logged in with.
    pub credential: [u8; 16],
}

/// A fingerprint of a password hash: what grants are tied to.
fn fingerprint(password_hash: &str) -> [u8; 16] {
    let d = ring::digest::digest(&ring::digest::SHA256, password_hash.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
}

/// Whether a principal's user still exists, with the same role and password.
fn current(users: &[User], p: &Principal) -> bool {
    users.iter().any(|u| {
        u.name == p.name && u.role == p.role && fingerprint(&u.password_hash) == p.credential
    })
}

/// The hash an unknown user's password is checked against, made once.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no such user").unwrap_or_default())
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
    throttle: Mutex<throttle::Throttle>,
    key: std::sync::RwLock<Option<TokenKey>>,
    revoked: Revoked,
    /// The users of the site in force: the auth service's own configuration, set by each
    /// reconcile (none while unconfigured).
    users: std::sync::RwLock<std::sync::Arc<[User]>>,
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
    fn throttle(&self) -> std::sync::MutexGuard<'_, throttle::Throttle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a name and password against the users.
    pub fn login(
        &self,
        users: &[User],
        ip: IpAddr,
        name: &str,
        password: &str,
    ) -> Result<Principal, Refusal> {
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
        }) && current(users, &g)
        {
            return Ok(g);
        }
        if let Err(wait) = self.throttle().admit(ip, name, Instant::now()) {
            return Err(Refusal::Throttled(wait));
        }
        let user = users.iter().find(|u| u.name == name);
        let hash = user.map_or(dummy_hash(), |u| u.password_hash.as_str());
        let verified = argon2::PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        match user.filter(|_| verified) {
            Some(u) => {
                let principal = Principal {
                    name: u.name.clone(),
                    role: u.role,
                    credential: fingerprint(&u.password_hash),
                };
                self.throttle().succeeded(ip, name, Instant::now());
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
                if self.throttle().failed(ip, name, Instant::now()) {
                    tracing::warn!(source = %ip, "failed login");
                }
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

    /// Sets the users of the site in force.
    pub fn set_users(&self, users: &[User]) {
        if let Ok(mut u) = self.users.write() {
            *u = users.into();
        }
    }

    /// The users of the site in force.
    pub fn users(&self) -> std::sync::Arc<[User]> {
        self.users
            .read()
            .map(|u| u.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Sets the site's token key (from the per-site secret), or none: then sessions and tokens
    /// are local random ones. Site tokens issued before stay valid while the key is the same.
    pub fn set_site_key(&self, key: Option<TokenKey>) {
        if let Ok(mut k) = self.key.write() {
            *k = key;
        }
    }

    fn site_key(&self) -> Option<TokenKey> {
        self.key.read().ok().and_then(|k| k.clone())
    }

    /// The site's revoked tokens, which the node link shares.
    pub fn revoked(&self) -> &Revoked {
        &self.revoked
    }

    /// Issues a session or token for a principal: a site token when this node holds the site
    /// secret, else a local one. Fails only when no random id can be made.
    pub fn grant(&self, principal: Principal, ttl: Duration) -> Result<(String, Instant), Error> {
        let expires = Instant::now() + ttl;
        if let Some(key) = self.site_key() {
            let claims = token::Claims::new(
                &principal.name,
                principal.role,
                principal.credential,
                token::unix_now() + ttl.as_secs(),
            )?;
            return Ok((token::sign(&key, &claims), expires));
        }
        let token = random::token()?;
        if let Ok(mut grants) = self.grants.lock() {
            grants.retain(|_, g| g.expires > Instant::now());
            grants.insert(token.clone(), Grant { principal, expires });
        }
        Ok((token, expires))
    }

    /// The principal of a session or token, if it is valid and its user still exists with the
    /// role and password it was granted with: a site token signed with this site's key,
    /// unexpired and not revoked, or a local one this node issued.
    pub fn lookup(&self, users: &[User], token: &str) -> Option<Principal> {
        if token.starts_with(token::PREFIX) {
            let claims = self.site_claims(token)?;
            let p = Principal {
                name: claims.name,
                role: claims.role,
                credential: claims.credential,
            };
            return current(users, &p).then_some(p);
        }
        let grants = self.grants.lock().ok()?;
        let g = grants.get(token).filter(|g| g.expires > Instant::now())?;
        current(users, &g.principal).then(|| g.principal.clone())
    }

    /// The claims of a valid, unrevoked site token.
    fn site_claims(&self, token: &str) -> Option<token::Claims> {
        let key = self.site_key()?;
        match token::verify(&key, token, token::unix_now()) {
            Ok(c) if !self.revoked.contains(&c.id) => Some(c),
            Ok(_) => None,
            Err(why) => {
                if why == token::Invalid::Forged {
                    tracing::debug!(
                        "a site token failed its MAC: forged, altered or from another site"
                    );
                }
                None
            }
        }
    }

    /// The user a valid session or token names, whatever its user's state: who may revoke it.
    pub fn owner(&self, token: &str) -> Option<String> {
        if token.starts_with(token::PREFIX) {
            return self.site_claims(token).map(|c| c.name);
        }
        let grants = self.grants.lock().ok()?;
        grants
            .get(token)
            .filter(|g| g.expires > Instant::now())
            .map(|g| g.principal.name.clone())
    }

    /// Ends a session or token: a site token is revoked on every node of the site (the node
    /// link carries the list); a forged one changes nothing.
    pub fn revoke(&self, token: &str) {
        if token.starts_with(token::PREFIX) {
            if let Some(c) = self.site_claims(token) {
                self.revoked.add(c.id, c.expires, token::unix_now());
            }
            return;
        }
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
    fn logins_are_checked_and_guessing_is_slowed_per_user() {
        let auth = Auth::default();
        let users = users();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                auth.login(&users, ip, "ann", "wrong"),
                Err(Refusal::Invalid)
            );
        }
        // Slowed, not locked out: the wait is one slot, not the window.
        let Err(Refusal::Throttled(wait)) = auth.login(&users, ip, "ann", "right") else {
            panic!("not slowed");
        };
        assert!(wait <= throttle::SLOW);
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(
            matches!(
                auth.login(&users, other, "ann", "right"),
                Err(Refusal::Throttled(_))
            ),
            "another network guessing the same user is slowed too"
        );
        assert_eq!(auth.login(&users, other, "bob", "x"), Err(Refusal::Invalid));
    }

    /// Issue 16 §2: the Basic cache kept an old password valid for 5 minutes, and sessions and
    /// tokens survived a password change or a user's removal.
    #[test]
    fn a_changed_password_or_role_revokes_sessions_tokens_and_cached_logins() {
        let auth = Auth::default();
        let users = users();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let p = auth.login(&users, ip, "ann", "right").unwrap();
        let (token, _) = auth.grant(p, SESSION_TTL).unwrap();
        assert!(auth.lookup(&users, &token).is_some());
        let mut changed = users.clone();
        changed[0].password_hash = hash_password("new").unwrap();
        assert!(auth.lookup(&changed, &token).is_none());
        assert_eq!(
            auth.login(&changed, ip, "ann", "right"),
            Err(Refusal::Invalid),
            "the cached login of the old password is gone"
        );
        let mut demoted = users.clone();
        demoted[0].role = UserRole::Viewer;
        assert!(auth.lookup(&demoted, &token).is_none());
        assert!(auth.lookup(&[], &token).is_none(), "a removed user");
        assert!(auth.lookup(&users, &token).is_some(), "the same password");
        auth.revoke(&token);
        assert!(auth.lookup(&users, &token).is_none());
    }

    fn site_auth(secret: u8) -> Auth {
        let auth = Auth::default();
        auth.set_site_key(Some(TokenKey::derive(&[secret; 32]).unwrap()));
        auth
    }

    /// Issue 12 §3: a token of the application node is accepted by every node of the site;
    /// one of another site, a forged one, an expired or a revoked one by none.
    #[test]
    fn site_tokens_hold_on_every_node_of_the_site_and_nowhere_else() {
        let users = users();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let (app, media) = (site_auth(1), site_auth(1));
        let p = app.login(&users, ip, "ann", "right").unwrap();
        let (token, _) = app.grant(p.clone(), TOKEN_TTL).unwrap();
        assert!(token.starts_with(token::PREFIX));
        assert_eq!(
            media.lookup(&users, &token),
            Some(p.clone()),
            "another node"
        );
        assert_eq!(media.owner(&token).as_deref(), Some("ann"));

        let other_site = site_auth(2);
        assert_eq!(other_site.lookup(&users, &token), None, "another site");
        let no_secret = Auth::default();
        assert_eq!(
            no_secret.lookup(&users, &token),
            None,
            "a node without the secret"
        );
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(media.lookup(&users, &forged), None, "forged");

        let (expired, _) = app.grant(p.clone(), Duration::ZERO).unwrap();
        assert_eq!(media.lookup(&users, &expired), None, "expired");

        // The site file decides: a removed user or a changed role is refused on every node.
        assert_eq!(media.lookup(&[], &token), None, "a removed user");
        let mut demoted = users.clone();
        demoted[0].role = UserRole::Viewer;
        assert_eq!(media.lookup(&demoted, &token), None, "a changed role");

        // Revoked on the application node; the list (which the node link carries) reaches the
        // media node, and then it refuses the token too.
        let (kept, _) = app.grant(p.clone(), TOKEN_TTL).unwrap();
        app.revoke(&token);
        app.revoke(&forged);
        assert_eq!(
            app.lookup(&users, &token),
            None,
            "revoked where it was revoked"
        );
        assert_eq!(
            app.revoked().list(token::unix_now()).len(),
            1,
            "the forged one adds nothing"
        );
        media
            .revoked()
            .merge(&app.revoked().list(token::unix_now()), token::unix_now());
        assert_eq!(
            media.lookup(&users, &token),
            None,
            "revoked on the media node"
        );
        assert!(
            media.lookup(&users, &kept).is_some(),
            "another token of ann still holds"
        );
    }

    #[test]
    fn without_a_site_secret_tokens_stay_local() {
        let users = users();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let (a, b) = (Auth::default(), Auth::default());
        let p = a.login(&users, ip, "ann", "right").unwrap();
        let (token, _) = a.grant(p, TOKEN_TTL).unwrap();
        assert!(!token.starts_with(token::PREFIX));
        assert!(a.lookup(&users, &token).is_some());
        assert!(b.lookup(&users, &token).is_none());
    }

    /// Issue 16 §2: an unknown user skipped argon2 (0.6 ms against 30 ms): names could be told
    /// apart by timing, and tried for nothing.
    #[test]
    fn an_unknown_user_costs_as_much_as_a_wrong_password() {
        let auth = Auth::default();
        let users = users();
        let _ = dummy_hash();
        let time = |name: &str, n: u8| {
            let started = Instant::now();
            let ip = IpAddr::from([192, 0, 2, n]);
            assert_eq!(auth.login(&users, ip, name, "guess"), Err(Refusal::Invalid));
            started.elapsed()
        };
        // The fastest of a few tries of each, taken in turn: a busy machine only slows a try
        // down, so the minima compare the work itself (the throttle allows 5 failures a user).
        let (mut known, mut unknown) = (Duration::MAX, Duration::MAX);
        for n in 0..4u8 {
            known = known.min(time("ann", 1 + n));
            unknown = unknown.min(time("zed", 101 + n));
        }
        let ratio = unknown.as_secs_f64() / known.as_secs_f64();
        assert!((0.5..2.0).contains(&ratio), "{unknown:?} against {known:?}");
    }
}
