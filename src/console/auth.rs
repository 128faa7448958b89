//! Who is using the console: argon2 passwords from config, or a trusted reverse proxy's header
//! (off unless configured); sessions in a signed cookie (HMAC-SHA256 with `console.session_key`,
//! `HttpOnly`, `SameSite=Strict`, `Secure` unless turned off); a CSRF token bound to the session
//! on every form that changes anything.
//!
//! A session names its user; the user's role is read from the config on every request, so
//! removing a user from the config ends their sessions.

use std::net::IpAddr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::config::{ConsoleConfig, Role};

pub const COOKIE: &str = "earshot_session";

/// A person signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Binds the CSRF token to this session.
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// User name.
    u: String,
    /// Expiry, Unix seconds.
    e: u64,
    /// Random per session.
    n: String,
}

/// Failed logins for one user name within the last [`LOCKOUT_SECS`] before its logins are
/// refused (counted in the bucket by [`crate::state::logins`], across replicas).
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT_SECS: u64 = 900;

/// Signs and checks sessions and CSRF tokens; checks passwords.
pub struct Auth {
    config: ConsoleConfig,
    key: hmac::Key,
}

impl Auth {
    pub fn new(config: ConsoleConfig) -> Auth {
        let key = hmac::Key::new(hmac::HMAC_SHA256, config.session_key.as_bytes());
        Auth { config, key }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.config.session_ttl_secs
    }

    /// The user a name and password sign in as, if they match (argon2, in constant time per
    /// hash). Unknown users are checked against a dummy hash, so timing does not tell them apart.
    pub fn check_password(&self, name: &str, password: &str) -> Option<Role> {
        let user = self.config.users.iter().find(|u| u.name == name);
        let hash = user.and_then(|u| u.password_hash.as_deref());
        let verified = match hash.map(PasswordHash::new) {
            Some(Ok(parsed)) => argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            _ => {
                let _ = argon2::Argon2::default().verify_password(
                    password.as_bytes(),
                    &PasswordHash::new(DUMMY_HASH).expect("the dummy hash parses"),
                );
                false
            }
        };
        verified.then(|| user.map(|u| u.role)).flatten()
    }

    /// A new session cookie's value for `name`.
    pub fn issue(&self, name: &str, now: u64) -> String {
        let claims = Claims {
            u: name.to_owned(),
            e: now + self.config.session_ttl_secs,
            n: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        };
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{payload}.{}", hex::encode(tag.as_ref()))
    }

    /// The `Set-Cookie` value carrying a session (or, with `None`, ending it).
    pub fn cookie(&self, value: Option<&str>) -> String {
        let secure = if self.config.secure_cookie {
            "; Secure"
        } else {
            ""
        };
        match value {
            Some(value) => format!(
                "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                self.config.session_ttl_secs
            ),
            None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
        }
    }

    /// Who is asking: a valid session cookie, or the trusted proxy's header on a connection
    /// from the proxy.
    pub fn user(&self, headers: &HeaderMap, peer: IpAddr, now: u64) -> Option<User> {
        if let Some(user) = self.proxy_user(headers, peer) {
            return Some(user);
        }
        let value = cookie_value(headers, COOKIE)?;
        let (payload, tag) = value.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        hmac::verify(&self.key, payload.as_bytes(), &tag).ok()?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let claims: Claims = serde_json::from_slice(&bytes).ok()?;
        if claims.e <= now {
            return None;
        }
        let role = self.config.users.iter().find(|u| u.name == claims.u)?.role;
        Some(User {
            name: claims.u,
            role,
            nonce: claims.n,
        })
    }

    /// Whether `peer` is one of `[console.proxy] trusted_peers`: its forwarded headers are
    /// believed.
    pub fn trusted_proxy(&self, peer: IpAddr) -> bool {
        self.config
            .proxy
            .as_ref()
            .is_some_and(|proxy| proxy.trusted_peers.contains(&peer))
    }

    fn proxy_user(&self, headers: &HeaderMap, peer: IpAddr) -> Option<User> {
        let proxy = self.config.proxy.as_ref()?;
        if !proxy.trusted_peers.contains(&peer) {
            return None;
        }
        let name = headers.get(proxy.header.as_str())?.to_str().ok()?.trim();
        if name.is_empty() {
            return None;
        }
        let role = match self.config.users.iter().find(|u| u.name == name) {
            Some(user) => user.role,
            None => proxy.default_role?,
        };
        Some(User {
            name: name.to_owned(),
            role,
            nonce: format!("proxy:{name}"),
        })
    }

    /// The CSRF token of a session: forms carry it, and every state change must return it.
    pub fn csrf_token(&self, user: &User) -> String {
        let tag = hmac::sign(&self.key, format!("csrf:{}", user.nonce).as_bytes());
        hex::encode(tag.as_ref())
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, user: &User, token: &str) -> bool {
        let Ok(tag) = hex::decode(token) else {
            return false;
        };
        hmac::verify(&self.key, format!("csrf:{}", user.nonce).as_bytes(), &tag).is_ok()
    }
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Hashes a password for `[[console.users]] password_hash` (argon2id, random salt).
///
/// # Errors
/// The hasher failed (it does not with default parameters).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&fastrand_salt()).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn fastrand_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .expect("the system's random source works");
    salt
}

/// An argon2id hash of a random password nobody knows: unknown users are checked against it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9g0tJ2PmA9cLwq0XGnfC3y0kYhqk8iAWRmBoVwS1oQ0";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleUserConfig;

    fn auth() -> Auth {
        Auth::new(ConsoleConfig {
            listen: "127.0.0.1:0".into(),
            session_key: "k".repeat(32),
            session_ttl_secs: 60,
            secure_cookie: true,
            users: vec![ConsoleUserConfig {
                name: "ana".into(),
                role: Role::Reviewer,
                password_hash: Some(hash_password("correct horse").expect("hashes")),
            }],
            proxy: None,
        })
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("other=1; {COOKIE}={value}")
                .parse()
                .expect("header"),
        );
        headers
    }

    #[test]
    fn passwords_sessions_and_csrf_tokens() {
        let auth = auth();
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(
            auth.check_password("ana", "correct horse"),
            Some(Role::Reviewer)
        );
        assert_eq!(auth.check_password("ana", "wrong"), None);
        assert_eq!(auth.check_password("bob", "correct horse"), None);
        let session = auth.issue("ana", 1000);
        let user = auth
            .user(&with_cookie(&session), peer, 1001)
            .expect("valid");
        assert_eq!(user.name, "ana");
        // Expired, tampered, or naming a user not in the config: no session.
        assert!(auth.user(&with_cookie(&session), peer, 1060).is_none());
        let forged = session.replacen('e', "f", 1);
        assert!(auth.user(&with_cookie(&forged), peer, 1001).is_none());
        let ghost = auth.issue("bob", 1000);
        assert!(auth.user(&with_cookie(&ghost), peer, 1001).is_none());
        let token = auth.csrf_token(&user);
        assert!(auth.csrf_ok(&user, &token));
        assert!(!auth.csrf_ok(&user, "00"));
        let other = auth.user(&with_cookie(&auth.issue("ana", 1000)), peer, 1001);
        assert!(
            !auth.csrf_ok(&other.expect("valid"), &token),
            "bound to its session"
        );
        assert!(auth.cookie(Some("v")).contains("HttpOnly; SameSite=Strict"));
        assert!(auth.cookie(Some("v")).ends_with("; Secure"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn the_proxy_header_counts_only_from_the_proxy() {
        let mut config = auth().config;
        config.proxy = Some(crate::config::ProxyAuthConfig {
            header: "X-Forwarded-User".into(),
            trusted_peers: vec!["10.0.0.5".parse().expect("ip")],
            default_role: None,
        });
        let auth = Auth::new(config);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-user", "ana".parse().expect("header"));
        let proxy: IpAddr = "10.0.0.5".parse().expect("ip");
        let elsewhere: IpAddr = "10.0.0.6".parse().expect("ip");
        let user = auth.user(&headers, proxy, 0).expect("the proxy names ana");
        assert_eq!((user.name.as_str(), user.role), ("ana", Role::Reviewer));
        assert!(
            auth.user(&headers, elsewhere, 0).is_none(),
            "anyone else may send the header"
        );
        headers.insert("x-forwarded-user", "mallory".parse().expect("header"));
        assert!(
            auth.user(&headers, proxy, 0).is_none(),
            "not a user, no default role"
        );
        let token = auth.csrf_token(&user);
        assert!(auth.csrf_ok(&user, &token));
    }
}
