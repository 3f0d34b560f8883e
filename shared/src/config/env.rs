//! Configuration from documented environment variables; secrets from the environment locally and from
//! Secrets Manager or SSM in AWS. Secret values are never logged.
//!
//! | variable | meaning |
//! |---|---|
//! | `CENTRA_API_URL` | Centra Integration API GraphQL URL (`https://<brand>.centra.com/graphql`) |
//! | `CENTRA_API_TOKEN` / `CENTRA_API_TOKEN_SECRET_ARN` / `CENTRA_API_TOKEN_SSM_PARAMETER` | Centra token |
//! | `STORE_EVENTS_SECRET` / `…_SECRET_ARN` / `…_SSM_PARAMETER` | one or more `whsec_` secrets, space-separated |
//! | `MAPPINGS_PATH` / `MAPPINGS` / `MAPPINGS_SSM_PARAMETER` | store mappings TOML: a file, inline text, or an SSM parameter |
//! | `IDEMPOTENCY_TABLE`, `STOCK_TABLE` | DynamoDB tables |
//! | `STOCK_QUEUE_URL`, `STOCK_PUSH_QUEUE_URL` | SQS queues (FIFO stock queue, standard push queue) |
//! | `CENTRA_RATE_TIER` | `growth` (default), `enhanced`, `high-volume`, `enterprise` |
//! | `CENTRA_MUTATIONS_PER_10S`, `CENTRA_MUTATIONS_PER_HOUR` | override the tier's mutation budget (e.g. to leave room for other integrations) |
//! | `CENTRA_TIMEOUT_SECONDS` | HTTP timeout of Centra calls (default 10) |
//! | `PUSH_LEASE_SECONDS` | how long a push owns its rows (default 150; > function timeout) |
//! | `IDEMPOTENCY_TTL_DAYS` | how long accepted event ids are remembered (default 15; at least 15, the applier's movement-marker TTL) |
//! | `METRICS_NAMESPACE` | CloudWatch namespace (default `CloudshelfCentra`) |

use crate::config::mappings::MappingError;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(String),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: String, message: String },
    #[error("{0}")]
    Mapping(#[from] MappingError),
    #[error("could not read {what}: {message}")]
    Source { what: String, message: String },
    /// A setting that needs an AWS client this function was built without (a feature of `shared`).
    #[error(
        "environment variable {name} needs the {client} client, which this function is not built with \
         (cargo feature `{feature}` of `shared`): give the value another way or build the function with it"
    )]
    NotBuiltIn {
        name: String,
        client: &'static str,
        feature: &'static str,
    },
}

/// Where a function reads its settings: the process environment in the Lambdas, a given set of variables where
/// the tests build each function with exactly the template's environment for it (and see what it reads).
#[derive(Clone)]
pub struct Env {
    lookup: Arc<Lookup>,
}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl Env {
    pub fn process() -> Self {
        Self::from_fn(|name| std::env::var(name).ok())
    }

    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Arc::new(lookup),
        }
    }

    /// The variable's value; unset and blank are the same.
    pub fn opt(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.opt(name)
            .ok_or_else(|| ConfigError::Missing(name.to_string()))
    }

    pub fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name: name.to_string(),
                message: e.to_string(),
            }),
        }
    }
}

pub fn env_opt(name: &str) -> Option<String> {
    Env::process().opt(name)
}

pub fn env_required(name: &str) -> Result<String, ConfigError> {
    Env::process().required(name)
}

pub fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    Env::process().parse(name, default)
}

/// Centra's published rate-limit tiers: mutation quota per 10 s and per hour (the `MUTATION_COUNT` windows of
/// `RateLimit` in `schema/centra/integration-subset.graphql`; an environment's `rateLimits` query gives its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateTier {
    Growth,
    Enhanced,
    HighVolume,
    Enterprise,
}

impl RateTier {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "growth" => Some(Self::Growth),
            "enhanced" => Some(Self::Enhanced),
            "high-volume" | "high_volume" | "highvolume" => Some(Self::HighVolume),
            "enterprise" => Some(Self::Enterprise),
            _ => None,
        }
    }

    pub fn mutations_per_10s(self) -> u32 {
        match self {
            Self::Growth => 20,
            Self::Enhanced => 50,
            Self::HighVolume => 150,
            Self::Enterprise => 500,
        }
    }

    pub fn mutations_per_hour(self) -> u32 {
        match self {
            Self::Growth => 1_800,
            Self::Enhanced => 4_500,
            Self::HighVolume => 7_000,
            Self::Enterprise => 25_000,
        }
    }
}

/// The mutation budget this deployment may spend: the tier's, unless overridden.
pub fn mutation_budget_from_env() -> Result<(u32, u32), ConfigError> {
    mutation_budget_in(&Env::process())
}

pub fn mutation_budget_in(env: &Env) -> Result<(u32, u32), ConfigError> {
    let tier_name = env
        .opt("CENTRA_RATE_TIER")
        .unwrap_or_else(|| "growth".into());
    let tier = RateTier::parse(&tier_name).ok_or_else(|| ConfigError::Invalid {
        name: "CENTRA_RATE_TIER".into(),
        message: format!("\"{tier_name}\" is not growth, enhanced, high-volume or enterprise"),
    })?;
    Ok((
        env.parse("CENTRA_MUTATIONS_PER_10S", tier.mutations_per_10s())?,
        env.parse("CENTRA_MUTATIONS_PER_HOUR", tier.mutations_per_hour())?,
    ))
}

pub fn metrics_namespace() -> String {
    metrics_namespace_in(&Env::process())
}

pub fn metrics_namespace_in(env: &Env) -> String {
    env.opt("METRICS_NAMESPACE")
        .unwrap_or_else(|| "CloudshelfCentra".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers() {
        assert_eq!(RateTier::parse("Growth").unwrap().mutations_per_10s(), 20);
        assert_eq!(
            RateTier::parse("high-volume").unwrap().mutations_per_hour(),
            7_000
        );
        assert!(RateTier::parse("platinum").is_none());
    }
}
