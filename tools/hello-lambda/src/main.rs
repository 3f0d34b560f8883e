//! Hello world on `lambda_runtime`: echoes its event. Same runtime flavour (multi-threaded Tokio) and release
//! profile as the functions, so the difference in cold init between it and a function is the function's own
//! start-up work (logging, AWS clients, configuration, mappings).

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) },
    ))
    .await
}
