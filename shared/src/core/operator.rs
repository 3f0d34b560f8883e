//! Who did what to a record, and when: operator actions (`shelfsync orders retry`, `exceptions resolve`) are
//! written into the record they change, so every record says how it got where it is.

use serde::{Deserialize, Serialize};

/// One operator action recorded on the record it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAction {
    /// `retry` (orders outbox), `resolve` (exception record).
    pub action: String,
    pub by: String,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The record revision this action wrote (0 where the record has no revisions): a later run of the same
    /// action can tell "nothing happened since" from "the system moved it on".
    #[serde(default)]
    pub rev: u64,
}
