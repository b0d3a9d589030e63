//! `general_settings.litellm_jwtauth`: how JWTs map to LiteLLM's admins, teams and users.
//!
//! - Implemented: `admin_jwt_scope`, `team_id_jwt_field`, `team_id_default`,
//!   `user_id_jwt_field`, `public_key_ttl`, `public_key_stale_ttl`; `team_id_upsert` and
//!   `user_id_upsert` only as `false` (teams and users are created through the admin API).
//! - Keys that restrict or re-map access which RouteIQ does not implement (RBAC, role and
//!   scope mappings, route lists, email domains, team lists, organizations, end users...)
//!   stop the start when set (fail closed); unknown keys warn.
//! - The gateway verifies the tokens (`keys/jwt.rs` in `routeiq-gateway`).

use std::time::Duration;

use serde::Deserialize;

use crate::config::coerce;
use crate::config::load::{Above, Loader};
use crate::config::schema::{MapSchema, Node, Unknown, join};

const PATH: &str = "general_settings.litellm_jwtauth";

/// Default `admin_jwt_scope` (LiteLLM's).
pub const DEFAULT_ADMIN_JWT_SCOPE: &str = "litellm_proxy_admin";
/// Default `public_key_ttl` (LiteLLM's: 600 s).
pub const DEFAULT_PUBLIC_KEY_TTL: Duration = Duration::from_secs(600);
/// Default `public_key_stale_ttl` (LiteLLM's: 3600 s).
pub const DEFAULT_PUBLIC_KEY_STALE_TTL: Duration = Duration::from_secs(3600);

/// `general_settings.litellm_jwtauth` (LiteLLM's `LiteLLM_JWTAuth`).
pub(in crate::config) static LITELLM_JWTAUTH: MapSchema = MapSchema {
    implemented: &[
        ("admin_jwt_scope", Node::Any),
        ("team_id_jwt_field", Node::Any),
        ("team_id_default", Node::Any),
        ("user_id_jwt_field", Node::Any),
        ("public_key_ttl", Node::Any),
        ("public_key_stale_ttl", Node::Any),
        ("team_id_upsert", Node::Any),
        ("user_id_upsert", Node::Any),
    ],
    documented: &[
        // Only act with upserts or team lists, which are refused below or at `load`.
        "upsert_sso_user_to_team",
        "team_claim_fallback",
        "fallback_to_db_teams",
        "oidc_userinfo_endpoint",
        "oidc_userinfo_cache_ttl",
    ],
    free: &[],
    unenforceable: &[
        ("enforce_rbac", "access (role-based access for JWTs)"),
        (
            "role_mappings",
            "access (JWT roles mapped to LiteLLM roles)",
        ),
        (
            "roles_jwt_field",
            "access (JWT roles mapped to LiteLLM roles)",
        ),
        (
            "object_id_jwt_field",
            "access (JWT roles mapped to LiteLLM roles)",
        ),
        (
            "jwt_litellm_role_map",
            "access (user roles synced from JWT roles)",
        ),
        (
            "sync_user_role_and_teams",
            "access (user roles and teams synced from the JWT)",
        ),
        ("scope_mappings", "access (models allowed per JWT scope)"),
        (
            "enforce_scope_based_access",
            "access (models allowed per JWT scope)",
        ),
        (
            "enforce_team_based_model_access",
            "access (a JWT's models limited to its teams')",
        ),
        (
            "team_allowed_routes",
            "access (the routes team JWTs may call)",
        ),
        (
            "admin_allowed_routes",
            "access (the routes admin JWTs may call)",
        ),
        (
            "public_allowed_routes",
            "access (the routes JWTs of no known role may call)",
        ),
        ("team_jwt_scope", "access (the scope a team JWT must carry)"),
        (
            "team_ids_jwt_field",
            "access (a JWT's team chosen from a list in the token)",
        ),
        (
            "team_alias_jwt_field",
            "access (a JWT's team found by its alias)",
        ),
        (
            "user_email_jwt_field",
            "access (a JWT's user found by its email)",
        ),
        (
            "user_allowed_email_domain",
            "access (the email domain a JWT's user must have)",
        ),
        (
            "user_allowed_email_subdomain",
            "access (the email domain a JWT's user must have)",
        ),
        (
            "user_roles_jwt_field",
            "access (the roles a JWT must carry)",
        ),
        ("user_allowed_roles", "access (the roles a JWT must carry)"),
        (
            "end_user_id_jwt_field",
            "spend (end-user budgets from a JWT claim)",
        ),
        (
            "org_id_jwt_field",
            "spend (organization budgets from a JWT claim)",
        ),
        (
            "org_alias_jwt_field",
            "spend (organization budgets from a JWT claim)",
        ),
        (
            "virtual_key_claim_field",
            "access (JWTs mapped to virtual keys)",
        ),
        (
            "unregistered_jwt_client_behavior",
            "access (JWTs mapped to virtual keys)",
        ),
        ("custom_validate", "access (a custom JWT validation hook)"),
        (
            "oidc_userinfo_enabled",
            "access (claims from the OIDC UserInfo endpoint)",
        ),
        (
            "issuers",
            "access (per-issuer key sets, audiences and claim mappings)",
        ),
    ],
    unknown: Unknown::Warn,
};

/// `general_settings.litellm_jwtauth`, as RouteIQ acts on it.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtAuthSettings {
    /// A token whose `scope` claim holds this is a proxy admin.
    pub admin_jwt_scope: String,
    /// Dot path of the claim holding the team id (`\.` for a literal dot).
    pub team_id_jwt_field: Option<String>,
    /// The team of a token without a team claim.
    pub team_id_default: Option<String>,
    /// Dot path of the claim holding the user id.
    pub user_id_jwt_field: Option<String>,
    /// How long a fetched key set is used before it is fetched again.
    pub public_key_ttl: Duration,
    /// How long past `public_key_ttl` a key set is still used while its URL is unreachable.
    pub public_key_stale_ttl: Duration,
}

impl Default for JwtAuthSettings {
    fn default() -> Self {
        JwtAuthSettings {
            admin_jwt_scope: DEFAULT_ADMIN_JWT_SCOPE.to_string(),
            team_id_jwt_field: None,
            team_id_default: None,
            user_id_jwt_field: None,
            public_key_ttl: DEFAULT_PUBLIC_KEY_TTL,
            public_key_stale_ttl: DEFAULT_PUBLIC_KEY_STALE_TTL,
        }
    }
}

impl JwtAuthSettings {
    /// Whether tokens name a team or a user (whose limits need the control plane).
    pub fn maps_identities(&self) -> bool {
        self.team_id_jwt_field.is_some()
            || self.team_id_default.is_some()
            || self.user_id_jwt_field.is_some()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of litellm_jwtauth settings"
)]
pub(in crate::config) struct RawJwtAuth {
    #[serde(default, deserialize_with = "coerce::opt_string")]
    admin_jwt_scope: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    team_id_jwt_field: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    team_id_default: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    user_id_jwt_field: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    public_key_ttl: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    public_key_stale_ttl: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    team_id_upsert: Option<bool>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    user_id_upsert: Option<bool>,
}

impl RawJwtAuth {
    pub(in crate::config) fn load(self, cx: &mut Loader) -> JwtAuthSettings {
        let d = JwtAuthSettings::default();
        for (key, on, what) in [
            ("team_id_upsert", self.team_id_upsert, "team"),
            ("user_id_upsert", self.user_id_upsert, "user"),
        ] {
            if on == Some(true) {
                cx.problem(
                    join(PATH, key),
                    format!(
                        "true is not supported: RouteIQ does not create a {what} a JWT names; \
                         create it with /{what}/new (or LiteLLM's admin API) and set {key}: false"
                    ),
                );
            }
        }
        let non_empty = |cx: &mut Loader, key: &str, v: Option<String>| match v {
            Some(s) if s.trim().is_empty() => {
                cx.problem(join(PATH, key), "must not be empty");
                None
            }
            v => v.map(|s| s.trim().to_string()),
        };
        let admin_jwt_scope = non_empty(cx, "admin_jwt_scope", self.admin_jwt_scope);
        let team_id_jwt_field = non_empty(cx, "team_id_jwt_field", self.team_id_jwt_field);
        let team_id_default = non_empty(cx, "team_id_default", self.team_id_default);
        let user_id_jwt_field = non_empty(cx, "user_id_jwt_field", self.user_id_jwt_field);
        let public_key_ttl = cx
            .seconds(
                &join(PATH, "public_key_ttl"),
                self.public_key_ttl,
                Above::Zero,
            )
            .ok()
            .flatten();
        let public_key_stale_ttl = cx
            .seconds(
                &join(PATH, "public_key_stale_ttl"),
                self.public_key_stale_ttl,
                Above::OrAtZero,
            )
            .ok()
            .flatten();
        JwtAuthSettings {
            admin_jwt_scope: admin_jwt_scope.unwrap_or(d.admin_jwt_scope),
            team_id_jwt_field,
            team_id_default,
            user_id_jwt_field,
            public_key_ttl: public_key_ttl.unwrap_or(d.public_key_ttl),
            public_key_stale_ttl: public_key_stale_ttl.unwrap_or(d.public_key_stale_ttl),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LITELLM_JWTAUTH, RawJwtAuth};
    use crate::config::load::testing::{load, problems};
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawJwtAuth>(&LITELLM_JWTAUTH);
    }

    #[test]
    fn settings_load_with_litellms_defaults() {
        let l = load("general_settings:\n  enable_jwt_auth: true\n").unwrap();
        let g = &l.config.general_settings;
        assert!(g.enable_jwt_auth);
        assert_eq!(g.litellm_jwtauth.admin_jwt_scope, "litellm_proxy_admin");
        assert_eq!(g.litellm_jwtauth.public_key_ttl.as_secs(), 600);
        assert_eq!(g.litellm_jwtauth.public_key_stale_ttl.as_secs(), 3600);
        assert!(!g.litellm_jwtauth.maps_identities());
        let l = load(
            "general_settings:\n  enable_jwt_auth: 'True'\n  litellm_jwtauth:\n    \
             admin_jwt_scope: proxy-admin\n    team_id_jwt_field: tenant.team\n    \
             user_id_jwt_field: sub\n    public_key_ttl: 30\n    public_key_stale_ttl: 0\n    \
             user_id_upsert: false\n    team_id_upsert: false\n",
        )
        .unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let j = &l.config.general_settings.litellm_jwtauth;
        assert_eq!(j.admin_jwt_scope, "proxy-admin");
        assert_eq!(j.team_id_jwt_field.as_deref(), Some("tenant.team"));
        assert_eq!(j.user_id_jwt_field.as_deref(), Some("sub"));
        assert_eq!(j.public_key_ttl.as_secs(), 30);
        assert!(j.public_key_stale_ttl.is_zero());
        assert!(j.maps_identities());
    }

    #[test]
    fn upserts_and_unenforced_keys_are_refused() {
        let p = problems(
            "general_settings:\n  enable_jwt_auth: true\n  litellm_jwtauth:\n    \
             user_id_upsert: true\n    team_id_upsert: true\n    enforce_rbac: true\n    \
             team_allowed_routes: [openai_routes]\n    role_mappings: [{role: a, internal_role: team}]\n    \
             enforce_team_based_model_access: false\n    public_key_ttl: 0\n",
        );
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "general_settings.litellm_jwtauth.user_id_upsert",
            "general_settings.litellm_jwtauth.team_id_upsert",
            "general_settings.litellm_jwtauth.enforce_rbac",
            "general_settings.litellm_jwtauth.team_allowed_routes",
            "general_settings.litellm_jwtauth.role_mappings",
            "general_settings.litellm_jwtauth.public_key_ttl",
        ] {
            assert!(paths.contains(&want), "{want} not in {paths:?}");
        }
        // Off: restricts nothing.
        assert!(
            !paths
                .iter()
                .any(|p| p.ends_with("enforce_team_based_model_access"))
        );
        let upsert = p
            .iter()
            .find(|p| p.path.ends_with("user_id_upsert"))
            .unwrap();
        assert!(
            upsert.message.contains("not supported"),
            "{}",
            upsert.message
        );
        let rbac = p.iter().find(|p| p.path.ends_with("enforce_rbac")).unwrap();
        assert!(rbac.message.contains("cannot enforce"), "{}", rbac.message);
    }

    #[test]
    fn unknown_keys_warn() {
        let l = load(
            "general_settings:\n  enable_jwt_auth: true\n  litellm_jwtauth:\n    \
             admin_jwt_scop: x\n    upsert_sso_user_to_team: true\n",
        )
        .unwrap();
        let paths: Vec<&str> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "general_settings.litellm_jwtauth.admin_jwt_scop",
                "general_settings.litellm_jwtauth.upsert_sso_user_to_team"
            ]
        );
        assert!(
            l.warnings[0]
                .message
                .contains("did you mean 'admin_jwt_scope'")
        );
    }

    #[test]
    fn settings_without_enable_jwt_auth_warn() {
        let l =
            load("general_settings:\n  litellm_jwtauth:\n    user_id_jwt_field: sub\n").unwrap();
        assert!(!l.config.general_settings.enable_jwt_auth);
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert_eq!(l.warnings[0].path, "general_settings.litellm_jwtauth");
    }
}
