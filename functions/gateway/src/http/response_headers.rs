//! The routing headers written on responses.
//!
//! - [`decision_headers`]: `x-routeiq-decision-ms`, and for ML strategies the predicted
//!   quality and cost, the decision method, the router's version and the tier;
//! - [`millis_header`]: a duration as a millisecond header value (also `x-routeiq-overhead-ms`).
//!
//! The header names are in [`crate::http::headers`].

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use routeiq::ml::routing::Decision;

use crate::http::headers as names;

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// A duration in milliseconds with three decimals (`1.234`), as a header value, without
/// going through float formatting (this runs on every response).
pub fn millis_header(d: Duration) -> HeaderValue {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let (mut whole, mut frac) = (micros / 1000, micros % 1000);
    for _ in 0..3 {
        i -= 1;
        buf[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    i -= 1;
    buf[i] = b'.';
    loop {
        i -= 1;
        buf[i] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    // Digits and a dot are always a valid header value.
    HeaderValue::from_bytes(&buf[i..]).unwrap_or(HeaderValue::from_static("0.000"))
}

/// Decision headers: `x-routeiq-decision-ms` (embedding + routing, every group tried), and
/// for ML strategies `x-routeiq-predicted-quality` / `x-routeiq-predicted-cost` of the
/// deployment that answered, the router's version and the decision method.
pub fn decision_headers(
    headers: &mut HeaderMap,
    decision: Option<&Decision>,
    deployment: &str,
    routing_time: Duration,
) {
    let embed = decision
        .and_then(|d| Duration::try_from_secs_f64(d.embed_ms / 1000.0).ok())
        .unwrap_or_default();
    headers.insert(
        HeaderName::from_static(names::DECISION_MS),
        millis_header(routing_time + embed),
    );
    let Some(d) = decision else { return };
    if let Some(c) = d.ranking.iter().find(|c| c.deployment == deployment) {
        if let Some(q) = c.predicted_quality {
            set(headers, names::PREDICTED_QUALITY, &format!("{q:.4}"));
        }
        if let Some(cost) = c.predicted_cost {
            set(headers, names::PREDICTED_COST, &format!("{cost:.8}"));
        }
    }
    set(
        headers,
        names::DECISION_METHOD,
        match d.method {
            routeiq::ml::routing::DecisionMethod::Router => "router",
            routeiq::ml::routing::DecisionMethod::Centroid => "centroid",
            routeiq::ml::routing::DecisionMethod::Size => "size",
            routeiq::ml::routing::DecisionMethod::Cost => "cost",
            routeiq::ml::routing::DecisionMethod::Edge => "edge-hint",
        },
    );
    if let Some(v) = &d.router_version {
        set(headers, names::ROUTER_VERSION, v);
    }
    if let Some(t) = &d.tier {
        set(headers, names::TIER, t.tier.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_header_has_three_decimals() {
        let h = |d: Duration| millis_header(d).to_str().unwrap().to_string();
        assert_eq!(h(Duration::ZERO), "0.000");
        assert_eq!(h(Duration::from_nanos(999)), "0.000");
        assert_eq!(h(Duration::from_micros(7)), "0.007");
        assert_eq!(h(Duration::from_micros(1_234)), "1.234");
        assert_eq!(h(Duration::from_micros(120_050)), "120.050");
        assert_eq!(h(Duration::from_secs(3600)), "3600000.000");
        assert_eq!(h(Duration::MAX), "18446744073709551.615");
    }
}
