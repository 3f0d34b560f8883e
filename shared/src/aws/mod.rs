//! AWS implementations of the ports: DynamoDB, SQS, Secrets Manager / SSM.
