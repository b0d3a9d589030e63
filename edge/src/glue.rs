//! The Workers runtime glue (wasm32 only): read the request, classify, sign, forward.
//! Decisions live in plain functions in `lib.rs`; this file only moves bytes and headers.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt as _;
use routeiq::edge::{EdgeClassifier, HINT_HEADER, SIGNATURE_HEADER};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Context, Env, event, js_sys, web_sys};

use crate::{
    BodyPlan, EdgeVars, MAX_CLASSIFY_BYTES, MODEL_BYTES, Once, SECRET_HINT, SignedHint,
    VAR_EDGE_REGIONS, VAR_ORIGIN_URL, VAR_ROUTING_PROFILE, VAR_TIER_MODELS, body_plan, classifier,
    forwards_header, geo_from_cf, origin_url, signed_hint,
};

static NO_SECRET: Once = Once::new();
static NO_CLASSIFIER: Once = Once::new();

/// A classifier, or why there is none.
type Built = Rc<Result<EdgeClassifier, String>>;

thread_local! {
    /// The classifier, built on first use and kept for the isolate's life (keyed by the vars
    /// it was built from). An isolate runs one request at a time per thread.
    static CLASSIFIER: RefCell<Option<(EdgeVars, Built)>> =
        const { RefCell::new(None) };
}

fn env_string(env: &Env, name: &str) -> Option<String> {
    let v = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
    v.as_string().filter(|s| !s.is_empty())
}

fn edge_classifier(env: &Env) -> Built {
    let vars = EdgeVars {
        tier_models: env_string(env, VAR_TIER_MODELS),
        regions: env_string(env, VAR_EDGE_REGIONS),
        profile: env_string(env, VAR_ROUTING_PROFILE),
    };
    CLASSIFIER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some((key, c)) = cell.as_ref() {
            if *key == vars {
                return c.clone();
            }
        }
        let c = Rc::new(classifier(MODEL_BYTES, &vars));
        *cell = Some((vars, c.clone()));
        c
    })
}

/// A `cf` field as a string (Cloudflare gives coordinates as strings; tests may pass numbers).
fn cf_field(cf: &JsValue, name: &str) -> Option<String> {
    let v = js_sys::Reflect::get(cf, &JsValue::from_str(name)).ok()?;
    v.as_string().or_else(|| v.as_f64().map(|x| x.to_string()))
}

fn unix_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// What the origin request's body is.
enum Body {
    Empty,
    /// Read whole: the bytes (in wasm memory, to classify) and, when the runtime gave them
    /// as one buffer, that buffer (forwarded as it is, so the body is not copied back out).
    Read(Vec<u8>, Option<js_sys::ArrayBuffer>),
    Stream(web_sys::ReadableStream),
}

/// Reads a body of unknown length, up to `MAX_CLASSIFY_BYTES`: all of it if it fits; else
/// the bytes read and the rest of the stream, re-joined into one stream (nothing is lost).
async fn read_bounded(stream: web_sys::ReadableStream) -> Result<Body, JsValue> {
    let mut rest = wasm_streams::ReadableStream::from_raw(stream).into_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = rest.next().await {
        let chunk = chunk?;
        let bytes: js_sys::Uint8Array = chunk.clone().dyn_into()?;
        let n = bytes.length() as usize;
        if buf.len() + n > MAX_CLASSIFY_BYTES {
            let read = JsValue::from(js_sys::Uint8Array::from(buf.as_slice()));
            drop(buf);
            let head = futures_util::stream::iter([Ok(read), Ok(chunk)]);
            let joined = wasm_streams::ReadableStream::from_stream(head.chain(rest));
            return Ok(Body::Stream(joined.into_raw()));
        }
        let at = buf.len();
        buf.resize(at + n, 0);
        bytes.copy_to(&mut buf[at..]);
    }
    Ok(Body::Read(buf, None))
}

async fn read_all(req: &web_sys::Request) -> Result<Body, JsValue> {
    let buffer: js_sys::ArrayBuffer = JsFuture::from(req.array_buffer()?).await?.dyn_into()?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    Ok(Body::Read(bytes, Some(buffer)))
}

/// A 502 in OpenAI's error shape, from the edge itself.
fn bad_gateway(message: &str, code: &str) -> worker::Result<web_sys::Response> {
    let body = serde_json::json!({"error": {
        "message": message, "type": code, "param": null, "code": code
    }});
    let init = web_sys::ResponseInit::new();
    init.set_status(502);
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    init.set_headers(&headers);
    Ok(web_sys::Response::new_with_opt_str_and_init(
        Some(&body.to_string()),
        &init,
    )?)
}

#[event(fetch)]
async fn fetch(
    req: web_sys::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    let target = match env_string(&env, VAR_ORIGIN_URL)
        .ok_or_else(|| format!("{VAR_ORIGIN_URL} is not set"))
        .and_then(|origin| origin_url(&origin, &req.url()))
    {
        Ok(t) => t,
        Err(e) => {
            worker::console_error!("routeiq-edge: {e}");
            return bad_gateway(&format!("RouteIQ edge: {e}"), "edge_misconfigured");
        }
    };
    let method = req.method();
    let in_headers = req.headers();
    let headers = web_sys::Headers::new()?;
    for (name, value) in worker::Headers(in_headers.clone()).entries() {
        if forwards_header(&name) {
            headers.append(&name, &value)?;
        }
    }

    let plan = body_plan(
        &method,
        in_headers.get("content-length")?.as_deref(),
        req.body().is_some(),
    );
    let body = match plan {
        BodyPlan::NoBody => Body::Empty,
        BodyPlan::Buffer => read_all(&req).await?,
        BodyPlan::Bounded => match req.body() {
            Some(s) => read_bounded(s).await?,
            None => Body::Empty,
        },
        BodyPlan::PassThrough => req.body().map_or(Body::Empty, Body::Stream),
    };

    if let Body::Read(bytes, _) = &body {
        if let Some(SignedHint { hint, signature }) = hint_for(&req, &env, bytes) {
            headers.set(HINT_HEADER, &hint)?;
            headers.set(SIGNATURE_HEADER, &signature)?;
        }
    }

    let init = web_sys::RequestInit::new();
    init.set_method(&method);
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    match body {
        Body::Empty => {}
        // The wasm copy is dropped here, before the wait for the origin.
        Body::Read(_, Some(buffer)) => init.set_body(&buffer),
        Body::Read(bytes, None) => init.set_body(&js_sys::Uint8Array::from(bytes.as_slice())),
        Body::Stream(s) => init.set_body(&s),
    }
    let out = web_sys::Request::new_with_str_and_init(&target, &init)?;
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    match JsFuture::from(global.fetch_with_request(&out)).await {
        // The origin's response as it is: status, headers and a body that streams through.
        Ok(resp) => Ok(resp.dyn_into()?),
        Err(e) => {
            let e = e
                .dyn_ref::<js_sys::Error>()
                .map_or_else(|| format!("{e:?}"), |e| String::from(e.message()));
            worker::console_error!("routeiq-edge: fetch {target}: {e}");
            bad_gateway(
                &format!("RouteIQ edge: the origin did not answer: {e}"),
                "edge_origin_unreachable",
            )
        }
    }
}

/// The signed hint for a body, or `None` (forward unclassified) for any reason.
fn hint_for(req: &web_sys::Request, env: &Env, body: &[u8]) -> Option<SignedHint> {
    let Some(secret) = env_string(env, SECRET_HINT) else {
        if NO_SECRET.first() {
            worker::console_warn!(
                "routeiq-edge: the secret {SECRET_HINT} is not set; forwarding requests without hints"
            );
        }
        return None;
    };
    let classifier = edge_classifier(env);
    let classifier = match classifier.as_ref() {
        Ok(c) => c,
        Err(e) => {
            if NO_CLASSIFIER.first() {
                worker::console_error!(
                    "routeiq-edge: no classification ({e}); forwarding requests without hints"
                );
            }
            return None;
        }
    };
    let cf = js_sys::Reflect::get(req, &JsValue::from_str("cf"))
        .ok()
        .filter(|v| v.is_object());
    let geo = geo_from_cf(|k| cf.as_ref().and_then(|cf| cf_field(cf, k)));
    signed_hint(classifier, secret.as_bytes(), body, &geo, unix_secs())
}

/// For `edge/bench.sh` only (feature `bench`): the bench bodies as a JSON list of
/// `[name, body]`.
#[cfg(feature = "bench")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn bench_bodies_json() -> String {
    serde_json::to_string(&crate::bench_bodies()).unwrap_or_default()
}

/// For `edge/bench.sh` only (feature `bench`): classify `body` with the embedded model and
/// default vars, optionally sign it too, and return the hint (empty when not classified).
/// The body comes in as bytes, copied into wasm memory as the Worker copies a request body.
#[cfg(feature = "bench")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn classify_for_bench(body: &[u8], sign: bool) -> String {
    thread_local! {
        static C: Result<EdgeClassifier, String> = classifier(MODEL_BYTES, &EdgeVars::default());
    }
    C.with(|c| {
        let Ok(c) = c else { return String::new() };
        let geo = routeiq::edge::ClientGeo::default();
        if sign {
            signed_hint(c, b"bench-secret", body, &geo, 1_700_000_000)
                .map(|s| s.hint + &s.signature)
                .unwrap_or_default()
        } else {
            c.classify(body, &geo)
                .map(|h| h.encode())
                .unwrap_or_default()
        }
    })
}
