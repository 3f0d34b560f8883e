//! The Lambda side: SQS batch helpers (`sqs`) and one handler per function (`handlers`).

pub mod handlers;
pub mod sqs;
