//! The benchmark's floor: the least an HTTP proxy can do, with the same HTTP stack as the
//! gateway (hyper's HTTP/1 server, hyper-util's pooled client) and none of its work (no
//! JSON, no routing, no headers, no metrics). Every request's body is POSTed to one fixed
//! upstream URL and the upstream's body is returned. `tests/bench/gateway_bench.sh` runs it
//! beside the gateway so that its figures show what a proxy hop alone costs on the machine.
//!
//! `bare-proxy --port N --upstream http://127.0.0.1:P/v1/chat/completions`

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Full<Bytes>>;

async fn forward(
    client: &Upstream,
    uri: &hyper::Uri,
    req: Request<Incoming>,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let body = req.into_body().collect().await?.to_bytes();
    let up = Request::post(uri.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    let resp = client.request(up).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?)
}

fn main() -> anyhow::Result<()> {
    let mut port: u16 = 0;
    let mut upstream = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().context("--port needs a value")?.parse()?,
            "--upstream" => upstream = Some(args.next().context("--upstream needs a URL")?),
            other => bail!("unknown argument {other}\nusage: bare-proxy --port N --upstream URL"),
        }
    }
    let uri: hyper::Uri = upstream.context("--upstream is required")?.parse()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("bare-proxy listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let client: Arc<Upstream> = Arc::new(Client::builder(TokioExecutor::new()).build_http());
        let uri = Arc::new(uri);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let (client, uri) = (client.clone(), uri.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (client, uri) = (client.clone(), uri.clone());
                    async move {
                        Ok::<_, Infallible>(match forward(&client, &uri, req).await {
                            Ok(r) => r,
                            Err(e) => {
                                let mut r = Response::new(Full::new(Bytes::from(e.to_string())));
                                *r.status_mut() = StatusCode::BAD_GATEWAY;
                                r
                            }
                        })
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
