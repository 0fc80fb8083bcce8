//! One device API request as its handler sees it ([`Call`]): the simulator, the method,
//! query, headers and the body (already read and bounded by the server), and the request id.
//! Built by the server, routed by `routes`, answered by the handlers (`device_auth`,
//! `inventory`, `deployments`), which need nothing else from the routing table.

use bytes::Bytes;
use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::Method;

use super::state::{OpError, Sim};

/// One device API request, body already read.
pub struct Call<'a> {
    pub sim: &'a Sim,
    pub method: &'a Method,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    pub request_id: &'a str,
}

impl Call<'_> {
    /// The device id of the request's bearer token (401 otherwise).
    pub fn device(&self) -> Result<String, OpError> {
        let auth = self
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.sim.device_of_token(auth)
    }
}
