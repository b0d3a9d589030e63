//! `least-busy`: fewest requests in flight first (ties in random order). In-flight counts live in
//! the state store, so with a shared backend they count every gateway instance (best effort:
//! a crashed instance's requests expire with the counter's TTL).

use super::{Candidate, shuffled};

pub(super) fn rank(candidates: &[Candidate<'_>], rng: &mut fastrand::Rng) -> Vec<usize> {
    let mut order = shuffled(candidates.len(), rng);
    order.sort_by_key(|&i| candidates[i].in_flight);
    order
}

#[cfg(test)]
mod tests {
    use super::super::test_support::deployment;
    use super::*;

    #[test]
    fn fewest_in_flight_first() {
        let (a, b, c) = (
            deployment("a", |_, _| {}),
            deployment("b", |_, _| {}),
            deployment("c", |_, _| {}),
        );
        let mut cands = [Candidate::new(&a), Candidate::new(&b), Candidate::new(&c)];
        cands[0].in_flight = 5;
        cands[1].in_flight = 0;
        cands[2].in_flight = 2;
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20 {
            assert_eq!(rank(&cands, &mut rng), vec![1, 2, 0]);
        }
    }
}
