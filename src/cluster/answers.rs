//! A client middleware over every API request: the `-v 6` request log, and the server's
//! `Retry-After` header carried into the error kube makes of the answer. API priority and
//! fairness answers 429 with that header and a text/plain body, which kube turns into a Status
//! without it; client-go waits as the header says, and so do we.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::{Body, DynBody};
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most of an error answer read to rewrite it (error bodies are small).
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Clone, Copy, Default)]
pub struct AnswersLayer;

impl<S> Layer<S> for AnswersLayer {
    type Service = Answers<S>;
    fn layer(&self, inner: S) -> Answers<S> {
        Answers { inner }
    }
}

#[derive(Clone)]
pub struct Answers<S> {
    inner: S,
}

impl<S, B> Service<Request<Body>> for Answers<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Path and query only: no header (the token) is ever logged.
        let what = crate::debug::enabled(6).then(|| {
            format!(
                "{} {}",
                req.method(),
                crate::sanitize::neutralize(req.uri().path_and_query().map_or("", |p| p.as_str()))
            )
        });
        let started = Instant::now();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let result = answer.await.map_err(Into::into).map(|res| {
                res.map(|b| {
                    Box::new(b.map_err(into_box as fn(B::Error) -> BoxError)) as Box<DynBody>
                })
            });
            if let Some(what) = &what {
                match &result {
                    Ok(res) => crate::debug::log(
                        6,
                        format_args!(
                            "{what} {} in {} ms",
                            res.status(),
                            started.elapsed().as_millis()
                        ),
                    ),
                    Err(e) => crate::debug::log(
                        6,
                        format_args!(
                            "{what} failed after {} ms: {}",
                            started.elapsed().as_millis(),
                            crate::sanitize::neutralize(&e.to_string())
                        ),
                    ),
                }
            }
            let res = match result {
                Ok(res) => res,
                Err(e) => return Err(e),
            };
            let status = res.status();
            if !(status.is_client_error() || status.is_server_error()) {
                return Ok(res);
            }
            let Some(wait) = retry_after(res.headers()) else {
                return Ok(res);
            };
            let (parts, body) = res.into_parts();
            let bytes = read_small(body).await;
            let rewritten = with_retry_after(&bytes, status.as_u16(), wait);
            let body: Box<DynBody> =
                Box::new(http_body_util::Full::new(Bytes::from(rewritten)).map_err(infallible));
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// The first [`MAX_ERROR_BODY`] bytes of an error answer (what could not be read is dropped).
async fn read_small(mut body: Box<DynBody>) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    out.truncate(MAX_ERROR_BODY);
    out
}

fn into_box<E: Into<BoxError>>(e: E) -> BoxError {
    e.into()
}

fn infallible(never: std::convert::Infallible) -> BoxError {
    match never {}
}

/// `Retry-After` in seconds (the delta form the API server sends; an HTTP date is not used).
fn retry_after(headers: &http::HeaderMap) -> Option<u32> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u32>().ok().filter(|s| *s > 0)
}

/// The answer as a Status object whose `details.retryAfterSeconds` is the header's: a Status
/// body keeps its fields, any other body becomes the Status message.
fn with_retry_after(body: &[u8], code: u16, wait: u32) -> Vec<u8> {
    let mut status = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v @ serde_json::Value::Object(_))
            if v.get("kind").and_then(|k| k.as_str()) == Some("Status") =>
        {
            v
        }
        _ => serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": if code == 429 { "TooManyRequests" } else { "" },
            "code": code,
        }),
    };
    if let Some(obj) = status.as_object_mut() {
        let details = obj
            .entry("details")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(d) = details.as_object_mut() {
            d.insert("retryAfterSeconds".to_string(), serde_json::json!(wait));
        }
    }
    serde_json::to_vec(&status).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bodies_become_status_with_the_wait() {
        let s: serde_json::Value = serde_json::from_slice(&with_retry_after(
            b"Too many requests, please try again later.\n",
            429,
            2,
        ))
        .expect("json");
        assert_eq!(s["code"], 429);
        assert_eq!(s["details"]["retryAfterSeconds"], 2);
        assert_eq!(s["message"], "Too many requests, please try again later.");
        let status = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"m","reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":1}}"#;
        let s: serde_json::Value =
            serde_json::from_slice(&with_retry_after(status, 429, 3)).expect("json");
        assert_eq!(s["details"]["retryAfterSeconds"], 3);
        assert_eq!(s["message"], "m");
    }

    #[test]
    fn retry_after_takes_delta_seconds() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(" 2 "),
        );
        assert_eq!(retry_after(&h), Some(2));
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
