//! Secret values from Secrets Manager and SSM Parameter Store. Values never reach a log or an error message.

#[cfg(any(feature = "secretsmanager", feature = "ssm"))]
use crate::core::errors::BackendError;

/// The `SecretString` of a Secrets Manager secret (ARN or name).
#[cfg(feature = "secretsmanager")]
pub async fn secrets_manager_value(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<String, BackendError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            BackendError::new(
                "secretsmanager",
                format!(
                    "GetSecretValue {arn}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ),
            )
        })?;
    output.secret_string.ok_or_else(|| {
        BackendError::new(
            "secretsmanager",
            format!("secret {arn} has no SecretString"),
        )
    })
}

/// The value of an SSM parameter, decrypted when it is a SecureString.
#[cfg(feature = "ssm")]
pub async fn ssm_parameter(
    client: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<String, BackendError> {
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            BackendError::new(
                "ssm",
                format!(
                    "GetParameter {name}: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                ),
            )
        })?;
    output
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| BackendError::new("ssm", format!("parameter {name} has no value")))
}
