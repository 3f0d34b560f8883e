//! The HTTP client of an API client (Centra, Cloudshelf, the Order API), built on its first request.
//!
//! Building a `reqwest::Client` sets up rustls with the platform's root certificates: it reads and parses the
//! system CA bundle, which was most of a function's cold init beyond the runtime's own. Built lazily, a client
//! an invocation never uses costs nothing (intake calls Centra only for a name its catalogue lacks), and one it
//! does use is built once per instance, shared by every clone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Clone)]
pub struct LazyHttp {
    client: Arc<OnceLock<reqwest::Client>>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for LazyHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyHttp")
            .field("built", &self.client.get().is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl LazyHttp {
    /// `timeout` bounds each whole request, `connect_timeout` its connection.
    pub fn new(timeout: Duration, connect_timeout: Duration) -> Self {
        LazyHttp {
            client: Arc::new(OnceLock::new()),
            timeout,
            connect_timeout,
        }
    }

    /// The client, built now if this is the first request.
    pub fn get(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            // reqwest is built without a crypto provider of its own (aws-lc); `ring`, as for the AWS SDK. An
            // error only means a provider is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .timeout(self.timeout)
                .connect_timeout(self.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .expect("reqwest client with rustls")
        })
    }

    /// Whether the client has been built (tests of the laziness).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_on_first_use_once_for_every_clone() {
        let http = LazyHttp::new(Duration::from_secs(1), Duration::from_secs(1));
        let clone = http.clone();
        assert!(!http.is_built());
        let first: *const reqwest::Client = http.get();
        assert!(clone.is_built());
        assert!(std::ptr::eq(first, clone.get()));
    }
}
