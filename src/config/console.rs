//! `[console]`: the review console's listener, users and single sign-on.

use serde::{Deserialize, Serialize};

use super::yes;

/// The review console: login-protected pages for the people who review, on a listener of their
/// own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// Signs session cookies and CSRF tokens (at least 32 characters). Every replica serving the
    /// console needs the same key; changing it logs everyone out.
    pub session_key: String,
    #[serde(default = "default_session_ttl")]
    pub session_ttl_secs: u64,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Turn off only for a console
    /// reached over plain HTTP on a trusted network.
    #[serde(default = "yes")]
    pub secure_cookie: bool,
    #[serde(default)]
    pub users: Vec<ConsoleUserConfig>,
    /// Single sign-on through a reverse proxy that authenticates people and names them in a
    /// header; off unless set.
    pub proxy: Option<ProxyAuthConfig>,
}

fn default_session_ttl() -> u64 {
    8 * 3600
}

/// One person who may use the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUserConfig {
    pub name: String,
    pub role: Role,
    /// An argon2 PHC string (`earshot hash-password` prints one). Omit for a user who signs in
    /// only through the proxy.
    pub password_hash: Option<String>,
}

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read the queue and history, decide items.
    Reviewer,
    /// Also restore blocked objects.
    Admin,
}

/// A reverse proxy that has authenticated the person already.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuthConfig {
    /// The header naming the user, e.g. `X-Forwarded-User`.
    pub header: String,
    /// The proxy's addresses: the header is believed only on connections from these.
    pub trusted_peers: Vec<std::net::IpAddr>,
    /// The role of a person the proxy names who is not among `users`; omit to refuse them.
    pub default_role: Option<Role>,
}
