//! The Lambda side: SQS batch helpers and one handler per function.

pub mod sqs;
