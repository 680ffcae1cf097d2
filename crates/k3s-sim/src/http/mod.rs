//! HTTP plumbing shared by the API server and the agent's client: body types, responses, the
//! TLS accept loop and a small HTTPS client.

pub mod balancer;
pub mod body;
pub mod client;
pub mod server;

pub use body::{Body, ChannelBody, json_response, text_response};
