//! Settings held in AWS: secrets (Secrets Manager, SSM) and the store mappings (SSM), each resolved from the
//! environment variable that names it (`config::env` documents them). A function built without a client refuses
//! a setting that needs it with a configuration error at start-up.

use super::AwsConfig;
use crate::config::env::{ConfigError, Env};
use crate::config::mappings::Mappings;

/// Resolves a secret named `name` from the process environment (see [`resolve_secret_in`]).
pub async fn resolve_secret(name: &str) -> Result<String, ConfigError> {
    resolve_secret_in(&Env::process(), &AwsConfig::from_env().await, name).await
}

/// Resolves a secret named `name`: the variable itself, else `<name>_SECRET_ARN` (Secrets Manager), else
/// `<name>_SSM_PARAMETER` (SSM, decrypted).
pub async fn resolve_secret_in(
    env: &Env,
    aws: &AwsConfig,
    name: &str,
) -> Result<String, ConfigError> {
    if let Some(v) = env.opt(name) {
        return Ok(v);
    }
    let arn_var = format!("{name}_SECRET_ARN");
    let ssm_var = format!("{name}_SSM_PARAMETER");
    if let Some(arn) = env.opt(&arn_var) {
        return secrets_manager_value(aws, &arn_var, &arn).await;
    }
    if let Some(param) = env.opt(&ssm_var) {
        return ssm_parameter(aws, &ssm_var, &param).await;
    }
    Err(ConfigError::Missing(format!(
        "{name} (or {arn_var} / {ssm_var})"
    )))
}

/// The secret `arn` that the variable `var` names, from Secrets Manager.
#[cfg(feature = "secretsmanager")]
async fn secrets_manager_value(
    aws: &AwsConfig,
    var: &str,
    arn: &str,
) -> Result<String, ConfigError> {
    super::secrets::secrets_manager_value(&aws.secrets_manager(), arn)
        .await
        .map_err(|e| ConfigError::Source {
            what: var.to_string(),
            message: e.to_string(),
        })
}

/// Built without the Secrets Manager client, this function cannot read `var`: say so at start-up.
#[cfg(not(feature = "secretsmanager"))]
async fn secrets_manager_value(
    _aws: &AwsConfig,
    var: &str,
    _arn: &str,
) -> Result<String, ConfigError> {
    Err(ConfigError::NotBuiltIn {
        name: var.to_string(),
        client: "Secrets Manager",
        feature: "secretsmanager",
    })
}

/// The parameter `param` that the variable `var` names, from SSM (decrypted).
#[cfg(feature = "ssm")]
async fn ssm_parameter(aws: &AwsConfig, var: &str, param: &str) -> Result<String, ConfigError> {
    super::secrets::ssm_parameter(&aws.ssm(), param)
        .await
        .map_err(|e| ConfigError::Source {
            what: var.to_string(),
            message: e.to_string(),
        })
}

/// Built without the SSM client, this function cannot read `var`: say so at start-up.
#[cfg(not(feature = "ssm"))]
async fn ssm_parameter(_aws: &AwsConfig, var: &str, _param: &str) -> Result<String, ConfigError> {
    Err(ConfigError::NotBuiltIn {
        name: var.to_string(),
        client: "SSM",
        feature: "ssm",
    })
}

/// Loads the mappings from the process environment (see [`load_mappings_in`]).
pub async fn load_mappings(fallback_to_embedded: bool) -> Result<Mappings, ConfigError> {
    load_mappings_in(
        &Env::process(),
        &AwsConfig::from_env().await,
        fallback_to_embedded,
    )
    .await
}

/// Loads the mappings from `MAPPINGS` (inline), `MAPPINGS_PATH` or `MAPPINGS_SSM_PARAMETER`; with none set,
/// `fallback` decides (the local run uses the embedded example, Lambdas refuse to start).
pub async fn load_mappings_in(
    env: &Env,
    aws: &AwsConfig,
    fallback_to_embedded: bool,
) -> Result<Mappings, ConfigError> {
    if let Some(text) = env.opt("MAPPINGS") {
        return Ok(Mappings::from_toml(&text)?);
    }
    if let Some(path) = env.opt("MAPPINGS_PATH") {
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Source {
            what: path.clone(),
            message: e.to_string(),
        })?;
        return Ok(Mappings::from_toml(&text)?);
    }
    if let Some(param) = env.opt("MAPPINGS_SSM_PARAMETER") {
        let text = ssm_parameter(aws, "MAPPINGS_SSM_PARAMETER", &param).await?;
        return Ok(Mappings::from_toml(&text)?);
    }
    if fallback_to_embedded {
        return Ok(Mappings::embedded_default());
    }
    Err(ConfigError::Missing(
        "MAPPINGS_PATH (or MAPPINGS / MAPPINGS_SSM_PARAMETER)".into(),
    ))
}

// Only a build without a client has something to test here.
#[cfg(all(test, not(all(feature = "secretsmanager", feature = "ssm"))))]
mod tests {
    use super::*;

    // Built only without the client (`cargo test -p shared --lib --no-default-features --features dynamodb,sqs`,
    // which scripts/test.sh runs): a reference to a store the function cannot read fails start-up, naming it.
    #[cfg(not(feature = "secretsmanager"))]
    #[tokio::test]
    async fn a_secret_arn_without_the_secrets_manager_client_is_a_configuration_error() {
        // The setting given through `Env`, not the process environment the other tests share.
        let env = Env::from_fn(|name| {
            (name == "NOT_BUILT_IN_A_SECRET_ARN")
                .then(|| "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x".to_string())
        });
        match resolve_secret_in(&env, &AwsConfig::from_env().await, "NOT_BUILT_IN_A").await {
            Err(e @ ConfigError::NotBuiltIn { .. }) => {
                let text = e.to_string();
                assert!(text.contains("NOT_BUILT_IN_A_SECRET_ARN"), "{text}");
                assert!(text.contains("`secretsmanager`"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(not(feature = "ssm"))]
    #[tokio::test]
    async fn an_ssm_parameter_without_the_ssm_client_is_a_configuration_error() {
        let env = Env::from_fn(|name| {
            (name == "NOT_BUILT_IN_B_SSM_PARAMETER").then(|| "/app/secret".to_string())
        });
        match resolve_secret_in(&env, &AwsConfig::from_env().await, "NOT_BUILT_IN_B").await {
            Err(e @ ConfigError::NotBuiltIn { .. }) => {
                let text = e.to_string();
                assert!(text.contains("NOT_BUILT_IN_B_SSM_PARAMETER"), "{text}");
                assert!(text.contains("`ssm`"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
}
