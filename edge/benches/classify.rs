//! Native classification time per request, for comparison with the wasm figures of
//! `edge/bench.sh` (which runs this too): `cargo bench -p routeiq-edge --features bench`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Instant;

use routeiq::edge::ClientGeo;
use routeiq_edge::{EdgeVars, MODEL_BYTES, bench_bodies, classifier, signed_hint};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let c = classifier(MODEL_BYTES, &EdgeVars::default()).expect("embedded model");
    let geo = ClientGeo::default();
    println!(
        "native (release), µs per request: classify = parse + features + model; +sign = also SHA-256 of the body and the HMAC"
    );
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "body", "bytes", "p50", "p99", "mean", "+sign p50"
    );
    for (name, body) in bench_bodies() {
        let n = if body.len() > 100_000 { 200 } else { 2_000 };
        let mut times = Vec::with_capacity(n);
        let mut signed = Vec::with_capacity(n);
        for i in 0..n + n / 10 {
            let t = Instant::now();
            std::hint::black_box(c.classify(std::hint::black_box(body.as_bytes()), &geo));
            let a = t.elapsed().as_secs_f64() * 1e6;
            let t = Instant::now();
            std::hint::black_box(signed_hint(&c, b"k", body.as_bytes(), &geo, 1_700_000_000));
            let b = t.elapsed().as_secs_f64() * 1e6;
            if i >= n / 10 {
                times.push(a);
                signed.push(b);
            }
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        times.sort_by(f64::total_cmp);
        signed.sort_by(f64::total_cmp);
        println!(
            "{:<20} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>11.1}",
            name,
            body.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            mean,
            percentile(&signed, 0.5)
        );
    }
}
