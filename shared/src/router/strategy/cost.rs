//! `cost-based-routing`: cheapest first by input + output price per token, from `model_info`
//! or the built-in price table; deployments with unknown prices come last. Ties in random order.

use super::{Candidate, shuffled};

pub(super) fn rank(candidates: &[Candidate<'_>], rng: &mut fastrand::Rng) -> Vec<usize> {
    let mut order = shuffled(candidates.len(), rng);
    order.sort_by(|&a, &b| {
        let ca = candidates[a]
            .deployment
            .unit_cost()
            .unwrap_or(f64::INFINITY);
        let cb = candidates[b]
            .deployment
            .unit_cost()
            .unwrap_or(f64::INFINITY);
        ca.total_cmp(&cb)
    });
    order
}

#[cfg(test)]
mod tests {
    use super::super::test_support::deployment;
    use super::*;

    #[test]
    fn cheapest_first_unknown_last() {
        let pricey = deployment("pricey", |_, i| {
            i.input_cost_per_token = Some(10e-6);
            i.output_cost_per_token = Some(30e-6);
        });
        let unknown = deployment("my-private-model", |_, _| {});
        // Priced from the built-in table.
        let mini = deployment("mini", |p, _| p.model = "openai/gpt-4o-mini".into());
        let cands = [
            Candidate::new(&pricey),
            Candidate::new(&unknown),
            Candidate::new(&mini),
        ];
        let mut rng = fastrand::Rng::with_seed(9);
        assert_eq!(rank(&cands, &mut rng), vec![2, 0, 1]);
    }
}
