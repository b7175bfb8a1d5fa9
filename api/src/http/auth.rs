//! Bearer tokens, roles and station scope.
//!
//! Tokens are high-entropy random strings; the config holds only their SHA-256. A request's
//! token is hashed and compared against every configured hash in constant time, so neither
//! the comparison nor the loop's early exit reveals how much of a hash matched.

use std::fmt;
use std::str::FromStr;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;

/// What a token holder may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The command room: live units, the live stream and events.
    Command,
    /// Analysts: analytics and history.
    Analyst,
    /// Chiefs: every read.
    Chief,
    /// Administrators: every read plus operational data (`/metrics`).
    Admin,
}

impl Role {
    /// Every role, in documentation order.
    pub const ALL: [Role; 4] = [Role::Command, Role::Analyst, Role::Chief, Role::Admin];

    /// The name used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Command => "command",
            Role::Analyst => "analyst",
            Role::Chief => "chief",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}` (expected command, analyst, chief or admin)")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Which class of route a request targets; decides the roles let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (`/health`, the map page and its assets, which carry no data).
    Public,
    /// Any valid token (the OpenAPI document, the fence catalog that every map draws).
    AnyRole,
    /// Live units, the live stream and events: command, chief, admin.
    Live,
    /// Route replay and "who was here": analyst, chief, admin.
    History,
    /// Analytics answers: analyst, chief, admin.
    Analytics,
    /// Operational data across stations: admin with a county-wide token.
    Admin,
}

impl Access {
    /// True if `role` may use routes of this class.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::AnyRole => true,
            Access::Live => matches!(role, Role::Command | Role::Chief | Role::Admin),
            Access::History | Access::Analytics => {
                matches!(role, Role::Analyst | Role::Chief | Role::Admin)
            }
            Access::Admin => role == Role::Admin,
        }
    }

    /// Roles allowed, for the OpenAPI document.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.allows(*r)).collect()
    }
}

/// The authenticated caller, put in the request extensions by [`guard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Role of the token.
    pub role: Role,
    /// Station scope; `None` sees every station.
    pub station: Option<String>,
    /// Label from the config, for logs.
    pub name: String,
}

impl Caller {
    /// Resolves a requested `station` filter against the caller's scope: a station-scoped
    /// caller gets its own station (and 403 for another), a county-wide caller gets what it
    /// asked for.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] when a scoped caller asks for another station.
    pub fn station_filter(&self, requested: Option<&str>) -> Result<Option<String>, ApiError> {
        match (&self.station, requested) {
            (Some(own), Some(req)) if own != req => Err(ApiError::Forbidden(format!(
                "this token is scoped to station {own}, not {req}"
            ))),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, req) => Ok(req.map(str::to_owned)),
        }
    }

    /// True if the caller may see data of `station`.
    pub fn sees(&self, station: &str) -> bool {
        self.station.as_deref().is_none_or(|s| s == station)
    }
}

/// Which configured token a request carries (its entry's position), put in the request
/// extensions by [`guard`] beside the [`Caller`]: limits are counted per token, and two
/// entries may share a role, a station and even a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId(pub usize);

/// One `[[tokens]]` entry: who may call the API. `patrol token new` prints these lines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Lower-case hex SHA-256 of the token (the token itself is never stored).
    pub hash: String,
    /// What the holder may read.
    pub role: Role,
    /// The station whose units, fences and analytics the holder sees; absent means every
    /// station (the county command centre).
    pub station: Option<String>,
    /// A label for logs (who holds it).
    pub name: Option<String>,
}

/// A token entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenConfigError {
    /// `hash` is not 64 hex digits.
    #[error("[[tokens]] entry {index}: hash must be 64 hex digits (a SHA-256)")]
    BadHash {
        /// Position in the file, from 1.
        index: usize,
    },
    /// `station` names no station of the jurisdiction.
    #[error("[[tokens]] entry {index}: unknown station `{station}`")]
    UnknownStation {
        /// Position in the file, from 1.
        index: usize,
        /// The station named.
        station: String,
    },
}

/// The configured tokens, ready to check requests against.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], Caller)>,
}

impl Tokens {
    /// Checks and loads the `[[tokens]]` entries; `stations` are the jurisdiction's ids.
    ///
    /// # Errors
    /// [`TokenConfigError`] naming the entry with a malformed hash or an unknown station.
    pub fn from_config(cfg: &[TokenConfig], stations: &[&str]) -> Result<Tokens, TokenConfigError> {
        let mut entries = Vec::with_capacity(cfg.len());
        for (i, t) in cfg.iter().enumerate() {
            let index = i + 1;
            let hash = parse_hash(&t.hash).ok_or(TokenConfigError::BadHash { index })?;
            if let Some(s) = &t.station
                && !stations.contains(&s.as_str())
            {
                return Err(TokenConfigError::UnknownStation {
                    index,
                    station: s.clone(),
                });
            }
            let name = t.name.clone().unwrap_or_else(|| format!("token {index}"));
            entries.push((
                hash,
                Caller {
                    role: t.role,
                    station: t.station.clone(),
                    name,
                },
            ));
        }
        Ok(Tokens { entries })
    }

    /// Adds a token in memory (the demo's ready-made one).
    pub fn add(&mut self, token: &str, caller: Caller) {
        self.entries.push((sha256(token), caller));
    }

    /// Number of configured tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no token is configured (every protected request is refused).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller holding `token`, if any. Compares against every entry in constant time.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        self.identify(token).map(|(_, caller)| caller)
    }

    /// The entry of `token` and its caller, if any; constant time like
    /// [`Tokens::authenticate`].
    pub fn identify(&self, token: &str) -> Option<(TokenId, Caller)> {
        let presented = sha256(token);
        let mut found = None;
        for (i, (hash, caller)) in self.entries.iter().enumerate() {
            if ct_eq(hash, &presented) && found.is_none() {
                found = Some((TokenId(i), caller));
            }
        }
        found.map(|(id, caller)| (id, caller.clone()))
    }
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equality that looks at every byte whatever the first difference.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A new random token (256 bits from the OS-seeded CSPRNG, hex, prefixed `ptk_`) and the
/// lower-case hex SHA-256 to put in the config.
pub fn new_token() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = format!("ptk_{}", to_hex(&raw));
    let hash = to_hex(&sha256(&token));
    (token, hash)
}

/// The config lines for a token with this hash, role and station.
pub fn config_lines(hash: &str, role: Role, station: Option<&str>, name: Option<&str>) -> String {
    let mut out = format!("[[tokens]]\nhash = \"{hash}\"\nrole = \"{role}\"\n");
    match station {
        Some(s) => out.push_str(&format!("station = \"{s}\"\n")),
        None => out.push_str("# no station: this token sees the whole county\n"),
    }
    if let Some(n) = name {
        out.push_str(&format!("name = {n:?}\n"));
    }
    out
}

/// State of [`guard`]: the tokens and the class of the route it protects.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Configured tokens.
    pub tokens: std::sync::Arc<Tokens>,
    /// The route's class.
    pub access: Access,
}

/// Middleware: 401 without a valid bearer token, 403 when the role may not use this route (or
/// a station token calls a county-wide route); otherwise the [`Caller`] goes into the request
/// extensions for the handler's scope checks, with its [`TokenId`] for per-token limits.
pub async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    if g.access == Access::Public {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some((id, caller)) = token.and_then(|t| g.tokens.identify(t)) else {
        return ApiError::Unauthorized.into_response();
    };
    if !g.access.allows(caller.role) {
        return ApiError::Forbidden(format!(
            "role {} may not use this endpoint (allowed: {})",
            caller.role,
            g.access
                .roles()
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into_response();
    }
    if g.access == Access::Admin && caller.station.is_some() {
        return ApiError::Forbidden("this endpoint needs a county-wide token".into())
            .into_response();
    }
    req.extensions_mut().insert(caller);
    req.extensions_mut().insert(id);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(hash: &str, role: Role, station: Option<&str>) -> TokenConfig {
        TokenConfig {
            hash: hash.into(),
            role,
            station: station.map(Into::into),
            name: None,
        }
    }

    #[test]
    fn new_tokens_authenticate_by_hash_only() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 4 + 64);
        assert_ne!(new_token().0, token, "tokens are random");
        let tokens =
            Tokens::from_config(&[cfg(&hash, Role::Analyst, Some("ST2"))], &["ST1", "ST2"])
                .unwrap();
        let c = tokens.authenticate(&token).unwrap();
        assert_eq!((c.role, c.station.as_deref()), (Role::Analyst, Some("ST2")));
        assert!(
            tokens.authenticate(&hash).is_none(),
            "the hash is not a token"
        );
        assert!(tokens.authenticate(&token[..60]).is_none());
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Tokens::from_config(&[cfg("xyz", Role::Chief, None)], &[]).unwrap_err();
        assert!(e.to_string().contains("entry 1"), "{e}");
        let (_, hash) = new_token();
        let e = Tokens::from_config(&[cfg(&hash, Role::Chief, Some("ST9"))], &["ST1"]).unwrap_err();
        assert!(e.to_string().contains("ST9"), "{e}");
    }

    #[test]
    fn roles_and_scope() {
        assert!(Access::Live.allows(Role::Command) && !Access::Live.allows(Role::Analyst));
        assert!(Access::History.allows(Role::Analyst) && !Access::History.allows(Role::Command));
        assert_eq!(Access::Admin.roles(), vec![Role::Admin]);
        let c = Caller {
            role: Role::Chief,
            station: Some("ST2".into()),
            name: "x".into(),
        };
        assert_eq!(c.station_filter(None).unwrap().as_deref(), Some("ST2"));
        assert!(c.station_filter(Some("ST1")).is_err());
        assert!(c.sees("ST2") && !c.sees("ST1"));
        assert_eq!("chief".parse::<Role>().unwrap(), Role::Chief);
        assert!("boss".parse::<Role>().is_err());
    }
}
