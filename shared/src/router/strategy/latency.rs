//! `latency-based-routing`: lowest mean recent latency first — time to first token for
//! streaming requests when known, else whole-request latency. Deployments with no samples yet
//! count as 0 ms so they get tried. With `lowest_latency_buffer` b, every deployment within
//! `lowest * (1 + b)` is picked among at random (spreading load), the rest follow by latency.
//! Samples expire after `routing_strategy_args.ttl`.

use super::{Candidate, RequestFacts, shuffled};

pub(super) fn rank(
    candidates: &[Candidate<'_>],
    facts: RequestFacts,
    buffer: f64,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    let latency = |c: &Candidate<'_>| {
        let v = if facts.stream {
            c.ttft_ms.or(c.latency_ms)
        } else {
            c.latency_ms
        };
        v.unwrap_or(0.0)
    };
    let mut order = shuffled(candidates.len(), rng);
    order.sort_by(|&a, &b| latency(&candidates[a]).total_cmp(&latency(&candidates[b])));
    if buffer > 0.0
        && let Some(&best) = order.first()
    {
        let limit = latency(&candidates[best]) * (1.0 + buffer);
        let within = order
            .iter()
            .take_while(|&&i| latency(&candidates[i]) <= limit)
            .count();
        rng.shuffle(&mut order[..within]);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{deployment, first_counts};
    use super::*;

    #[test]
    fn lowest_latency_first_and_untried_explored() {
        let (a, b, c) = (
            deployment("a", |_, _| {}),
            deployment("b", |_, _| {}),
            deployment("c", |_, _| {}),
        );
        let mut cands = [Candidate::new(&a), Candidate::new(&b), Candidate::new(&c)];
        cands[0].latency_ms = Some(300.0);
        cands[1].latency_ms = Some(100.0);
        cands[2].latency_ms = Some(200.0);
        let mut rng = fastrand::Rng::with_seed(3);
        assert_eq!(
            rank(&cands, RequestFacts::default(), 0.0, &mut rng),
            vec![1, 2, 0]
        );
        cands[2].latency_ms = None;
        assert_eq!(rank(&cands, RequestFacts::default(), 0.0, &mut rng)[0], 2);
    }

    #[test]
    fn streaming_uses_time_to_first_token() {
        let (a, b) = (deployment("a", |_, _| {}), deployment("b", |_, _| {}));
        let mut cands = [Candidate::new(&a), Candidate::new(&b)];
        cands[0].latency_ms = Some(100.0);
        cands[0].ttft_ms = Some(90.0);
        cands[1].latency_ms = Some(500.0);
        cands[1].ttft_ms = Some(20.0);
        let mut rng = fastrand::Rng::with_seed(3);
        let stream = RequestFacts {
            stream: true,
            ..RequestFacts::default()
        };
        assert_eq!(rank(&cands, stream, 0.0, &mut rng)[0], 1);
        assert_eq!(rank(&cands, RequestFacts::default(), 0.0, &mut rng)[0], 0);
    }

    #[test]
    fn buffer_spreads_among_near_best() {
        let (a, b, c) = (
            deployment("a", |_, _| {}),
            deployment("b", |_, _| {}),
            deployment("c", |_, _| {}),
        );
        let mut cands = [Candidate::new(&a), Candidate::new(&b), Candidate::new(&c)];
        cands[0].latency_ms = Some(100.0);
        cands[1].latency_ms = Some(140.0);
        cands[2].latency_ms = Some(400.0);
        let counts = first_counts(
            4_000,
            |rng| rank(&cands, RequestFacts::default(), 0.5, rng),
            3,
        );
        assert!(counts[0] > 1_500 && counts[1] > 1_500, "{counts:?}");
        assert_eq!(counts[2], 0);
    }
}
