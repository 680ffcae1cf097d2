//! Response bodies: whole buffers, or a channel for streaming watches.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

/// The body type of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// A body fed chunk by chunk through a channel; ends when the sender is dropped.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// A body and the sender that feeds it.
    pub fn channel(buffer: usize) -> (mpsc::Sender<Bytes>, Body) {
        let (tx, rx) = mpsc::channel(buffer);
        (tx, ChannelBody { rx }.boxed())
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).boxed()
}

fn build(status: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// A JSON response.
pub fn json_response(status: u16, value: &serde_json::Value) -> Response<Body> {
    build(status, "application/json", full(value.to_string()))
}

/// A plain-text response.
pub fn text_response(status: u16, text: impl Into<String>) -> Response<Body> {
    build(status, "text/plain; charset=utf-8", full(text.into()))
}

/// A streaming JSON response (watch).
pub fn stream_response(body: Body) -> Response<Body> {
    build(200, "application/json", body)
}
