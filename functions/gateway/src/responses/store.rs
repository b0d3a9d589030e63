//! Stored Responses API turns in the state store (in memory, Redis or DynamoDB: whatever
//! routing state lives in), so that a conversation continues with `previous_response_id` on
//! any instance sharing the store, and `GET`/`DELETE /v1/responses/{id}` find it.
//!
//! - One record per response, at `resp:{id}`, with the store's TTL
//!   (`ROUTEIQ_RESPONSES_TTL_SECONDS`, default 30 days): the `Response` as the client got it,
//!   the conversation so far ([`items_for_next_turn`]: the turn's history, its input, its
//!   output), the identity of the key that created it ([`key_identity`]) and, for an answer an
//!   OpenAI deployment gave (passed through), that deployment's id: its upstream holds the
//!   response too, so a next turn routed there passes `previous_response_id` on unchanged.
//! - A record is JSON of at most [`max_record_bytes`]: DynamoDB's item limit (400 KB) bounds it
//!   there, [`MAX_RECORD_BYTES`] elsewhere. A turn over the limit is answered as usual but not
//!   stored: a small marker takes its place, so a later `previous_response_id` (or `GET`)
//!   naming it is told why it cannot be continued (and a next turn to the OpenAI deployment
//!   that answered it still continues there).
//! - Records are read only for the identity that wrote them: another key (or an open gateway's
//!   anonymous clients for a keyed record, and the reverse) finds nothing.
//!
//! [`key_identity`]: crate::http::auth::key_identity

use std::sync::Arc;
use std::time::Duration;

use routeiq::responses::{Item, Response, ResponsesRequest, items_for_next_turn};
use routeiq::state::{PutCondition, StateStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::GatewayError;

/// Namespace of the records in the state store.
const KEY_PREFIX: &str = "resp:";
/// The longest a store write or read may take before the gateway gives up on it (a write:
/// the answer goes out unstored, with a warning).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest record with DynamoDB: its 400 KB item limit, less room for the key and the
/// store's own attributes.
pub const DYNAMODB_MAX_RECORD_BYTES: usize = 380 * 1024;
/// The largest record with Redis or in memory.
pub const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;
/// Longest response id the gateway looks up or stores.
const MAX_ID_LEN: usize = 256;

/// The largest record the state store `backend` takes.
pub fn max_record_bytes(backend: &str) -> usize {
    if backend == "dynamodb" {
        DYNAMODB_MAX_RECORD_BYTES
    } else {
        MAX_RECORD_BYTES
    }
}

/// Whether `id` can name a stored response: 1–256 characters of `[A-Za-z0-9_-]` (OpenAI's ids
/// are `resp_` and hex; anything else is not looked up).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// A stored record, as read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Record {
    /// The identity of the key that created it (`None`: an open gateway).
    #[serde(default)]
    pub owner: Option<String>,
    /// The deployment whose upstream holds the response (pass-through answers).
    #[serde(default)]
    pub origin: Option<String>,
    /// The Response as the client got it (`None` on the marker of a turn too large to
    /// store).
    #[serde(default)]
    pub response: Option<Value>,
    /// The conversation up to and including the response.
    #[serde(default)]
    pub items: Vec<Item>,
    /// The marker of a turn not stored: the size its record would have had.
    #[serde(default)]
    pub too_large: Option<usize>,
}

/// A Response to store: the gateway's own, or an upstream's as it sent it.
#[derive(Serialize)]
#[serde(untagged)]
enum StoredResponse<'a> {
    Typed(&'a Response),
    Raw(&'a Value),
}

/// A record as written.
#[derive(Serialize)]
struct RecordRef<'a> {
    owner: Option<&'a str>,
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<StoredResponse<'a>>,
    #[serde(skip_serializing_if = "no_items")]
    items: &'a [Item],
    #[serde(skip_serializing_if = "Option::is_none")]
    too_large: Option<usize>,
}

fn no_items(items: &&[Item]) -> bool {
    items.is_empty()
}

/// Why a stored response cannot be used or shown: the marker's explanation.
pub fn not_stored_message(id: &str, bytes: usize, limit: usize) -> String {
    format!(
        "Previous response with id '{id}' was not stored: its conversation ({bytes} bytes) \
         is larger than the gateway's state store takes ({limit} bytes). Send the whole \
         conversation in 'input' (with 'store': false) instead."
    )
}

/// Reads the record of `id` for `owner`: `None` when there is none, it expired, it does not
/// read, or another identity wrote it.
pub async fn load(
    state: &dyn StateStore,
    id: &str,
    owner: Option<&str>,
) -> Result<Option<Record>, GatewayError> {
    if !valid_id(id) {
        return Ok(None);
    }
    let got = tokio::time::timeout(STORE_TIMEOUT, state.get_many(&[key(id)]))
        .await
        .map_err(|_| {
            GatewayError::Internal(format!(
                "state store: reading a stored response took over {}s",
                STORE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| GatewayError::Internal(format!("state store: {e}")))?;
    let Some(value) = got.into_iter().next().flatten() else {
        return Ok(None);
    };
    let record: Record = match serde_json::from_str(&value.value) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(response_id = id, error = %e, "stored response does not read; ignored");
            return Ok(None);
        }
    };
    Ok((record.owner.as_deref() == owner).then_some(record))
}

/// Removes the record of `id`.
pub async fn delete(state: &dyn StateStore, id: &str) -> Result<(), GatewayError> {
    tokio::time::timeout(STORE_TIMEOUT, state.delete(&key(id)))
        .await
        .map_err(|_| GatewayError::Internal("state store: delete timed out".into()))?
        .map_err(|e| GatewayError::Internal(format!("state store: {e}")))
}

/// What a stored turn leaves for the next: the items of the conversation so far (`None` when
/// the turn was too large to store, with its size), and the deployment whose upstream holds
/// it.
#[derive(Debug, Clone)]
pub struct Previous {
    pub id: String,
    pub items: Option<Arc<Vec<Item>>>,
    pub origin: Option<String>,
    pub too_large: Option<usize>,
    /// The record limit the marker was written under.
    pub limit: usize,
}

impl Previous {
    pub fn from_record(id: &str, record: Record, limit: usize) -> Previous {
        Previous {
            id: id.to_string(),
            items: record.too_large.is_none().then(|| Arc::new(record.items)),
            origin: record.origin,
            too_large: record.too_large,
            limit,
        }
    }

    /// The conversation, or the 400 of a turn that was not stored (its `param` is
    /// `previous_response_id`, answered with code `previous_response_not_found`).
    pub fn items(&self) -> Result<&[Item], GatewayError> {
        match &self.items {
            Some(items) => Ok(items.as_slice()),
            None => Err(GatewayError::invalid_param(
                not_stored_message(&self.id, self.too_large.unwrap_or(0), self.limit),
                "previous_response_id",
            )),
        }
    }
}

/// Writes the records of one request's answer: where, for how long, as whom, and what came
/// before it.
pub struct Storer {
    pub state: Arc<dyn StateStore>,
    pub ttl: Duration,
    pub owner: Option<String>,
    pub max_bytes: usize,
    /// The conversation before this turn (its `previous_response_id`'s items).
    pub history: Arc<Vec<Item>>,
    pub request: Arc<ResponsesRequest>,
}

/// What [`Storer::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Stored,
    /// Over the limit: the marker was written instead.
    TooLarge,
    /// Not stored (an id that cannot be a key, a store failure or timeout: logged).
    Failed,
}

impl Storer {
    /// Stores `response` (the answer to this request; `raw`: its JSON as the upstream sent it,
    /// kept as is for `GET`) with the conversation so far; `origin`: the deployment whose
    /// upstream holds it. Never fails the request: problems are logged.
    pub async fn save(
        &self,
        response: &Response,
        raw: Option<&Value>,
        origin: Option<&str>,
    ) -> Saved {
        let id = response.id.as_str();
        if !valid_id(id) {
            tracing::warn!(
                response_id = id,
                "the answer's id cannot be a stored response's: not stored"
            );
            return Saved::Failed;
        }
        let items = items_for_next_turn(&self.history, &self.request, response);
        let record = RecordRef {
            owner: self.owner.as_deref(),
            origin,
            response: Some(match raw {
                Some(raw) => StoredResponse::Raw(raw),
                None => StoredResponse::Typed(response),
            }),
            items: &items,
            too_large: None,
        };
        let (value, saved) = match serde_json::to_string(&record) {
            Ok(v) if v.len() <= self.max_bytes => (v, Saved::Stored),
            Ok(v) => {
                tracing::warn!(
                    response_id = id,
                    bytes = v.len(),
                    limit = self.max_bytes,
                    backend = self.state.backend(),
                    "response not stored: its conversation is over the state store's limit"
                );
                let marker = RecordRef {
                    owner: self.owner.as_deref(),
                    origin,
                    response: None,
                    items: &[],
                    too_large: Some(v.len()),
                };
                match serde_json::to_string(&marker) {
                    Ok(m) => (m, Saved::TooLarge),
                    Err(_) => return Saved::Failed,
                }
            }
            Err(e) => {
                tracing::warn!(response_id = id, error = %e, "response not stored: it does not serialize");
                return Saved::Failed;
            }
        };
        let key = key(id);
        let put = self
            .state
            .put(&key, value, Some(self.ttl), PutCondition::Always);
        match tokio::time::timeout(STORE_TIMEOUT, put).await {
            Ok(Ok(_)) => saved,
            Ok(Err(e)) => {
                tracing::warn!(response_id = id, error = %e, "response not stored: state store failed");
                Saved::Failed
            }
            Err(_) => {
                tracing::warn!(
                    response_id = id,
                    timeout_secs = STORE_TIMEOUT.as_secs(),
                    "response not stored: the state store did not answer in time"
                );
                Saved::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use routeiq::state::{InMemoryStateStore, SystemClock};
    use serde_json::json;

    use super::*;

    fn response(id: &str, text: &str) -> Response {
        serde_json::from_value(json!({
            "id": id, "object": "response", "created_at": 1, "status": "completed",
            "model": "m", "output": [{"type": "message", "id": "msg_1", "role": "assistant",
            "status": "completed", "content": [{"type": "output_text", "text": text, "annotations": []}]}]
        }))
        .unwrap()
    }

    fn storer(state: Arc<dyn StateStore>, owner: Option<&str>, max_bytes: usize) -> Storer {
        Storer {
            state,
            ttl: Duration::from_secs(60),
            owner: owner.map(str::to_string),
            max_bytes,
            history: Arc::new(Vec::new()),
            request: Arc::new(
                serde_json::from_value(json!({"model": "m", "input": "hello"})).unwrap(),
            ),
        }
    }

    #[test]
    fn ids_that_can_be_keys() {
        assert!(valid_id("resp_0123abcd"));
        assert!(valid_id("resp-x_Y9"));
        for bad in [
            "",
            "resp:x",
            "a b",
            "resp/../x",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert_eq!(max_record_bytes("dynamodb"), DYNAMODB_MAX_RECORD_BYTES);
        assert_eq!(max_record_bytes("redis"), MAX_RECORD_BYTES);
    }

    #[tokio::test]
    async fn a_record_is_read_back_by_its_owner_only() {
        let state: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new(Arc::new(SystemClock)));
        let s = storer(state.clone(), Some("owner-a"), MAX_RECORD_BYTES);
        let r = response("resp_1", "hi there");
        assert_eq!(s.save(&r, None, Some("gpt-a")).await, Saved::Stored);
        let got = load(state.as_ref(), "resp_1", Some("owner-a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.response, Some(serde_json::to_value(&r).unwrap()));
        assert_eq!(got.origin.as_deref(), Some("gpt-a"));
        // The request's input, then the output.
        assert_eq!(
            got.items.iter().map(Item::kind).collect::<Vec<_>>(),
            ["message", "message"]
        );
        assert!(
            load(state.as_ref(), "resp_1", Some("owner-b"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            load(state.as_ref(), "resp_1", None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            load(state.as_ref(), "resp_2", Some("owner-a"))
                .await
                .unwrap()
                .is_none()
        );
        delete(state.as_ref(), "resp_1").await.unwrap();
        assert!(
            load(state.as_ref(), "resp_1", Some("owner-a"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_turn_over_the_limit_leaves_a_marker() {
        let state: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new(Arc::new(SystemClock)));
        let s = storer(state.clone(), None, 1024);
        let r = response("resp_big", &"x".repeat(4096));
        assert_eq!(s.save(&r, None, None).await, Saved::TooLarge);
        let got = load(state.as_ref(), "resp_big", None)
            .await
            .unwrap()
            .unwrap();
        assert!(got.response.is_none());
        let size = got.too_large.unwrap();
        assert!(size > 4096, "{size}");
        let prev = Previous::from_record("resp_big", got, 1024);
        let e = prev.items().unwrap_err();
        let body = e.body();
        assert_eq!(body.error.param.as_deref(), Some("previous_response_id"));
        assert!(
            body.error.message.contains("was not stored"),
            "{}",
            body.error.message
        );
        // An id that cannot be a key is never written.
        let bad = response("resp:bad", "x");
        assert_eq!(s.save(&bad, None, None).await, Saved::Failed);
        // An upstream's Response is kept as it sent it.
        let raw = json!({"id": "resp_raw", "object": "response", "status": "completed",
            "output": [], "model": "m", "created_at": 1, "vendor_field": {"kept": true}});
        let typed: Response = serde_json::from_value(raw.clone()).unwrap();
        let s = storer(state.clone(), None, MAX_RECORD_BYTES);
        assert_eq!(s.save(&typed, Some(&raw), None).await, Saved::Stored);
        let got = load(state.as_ref(), "resp_raw", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.response, Some(raw));
    }
}
