//! Finance daily close (being built).
use super::{JobRun, ReconContext, ReconError, RunOptions};

pub async fn run_finance_close(
    _ctx: &ReconContext,
    _opts: &RunOptions,
) -> Result<JobRun, ReconError> {
    Err(ReconError::NotConfigured("daybook"))
}
