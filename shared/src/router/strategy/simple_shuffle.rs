//! `simple-shuffle` (LiteLLM's default): a weighted random order. Weights are `weight` when any
//! deployment of the group sets it, else `rpm`, else `tpm`, else all equal. As in LiteLLM, a
//! deployment without the weight the others use gets weight 0: it is never the first choice but
//! stays in the order as a fallback.

use super::{Candidate, shuffled};

pub(super) fn rank(candidates: &[Candidate<'_>], rng: &mut fastrand::Rng) -> Vec<usize> {
    let weight_of: Option<fn(&Candidate<'_>) -> f64> = if candidates
        .iter()
        .any(|c| c.deployment.params.weight.is_some())
    {
        Some(|c| c.deployment.params.weight.unwrap_or(0.0))
    } else if candidates.iter().any(|c| c.deployment.params.rpm.is_some()) {
        Some(|c| c.deployment.params.rpm.unwrap_or(0) as f64)
    } else if candidates.iter().any(|c| c.deployment.params.tpm.is_some()) {
        Some(|c| c.deployment.params.tpm.unwrap_or(0) as f64)
    } else {
        None
    };
    let Some(weight_of) = weight_of else {
        return shuffled(candidates.len(), rng);
    };
    // Weighted sampling without replacement (Efraimidis–Spirakis): key = u^(1/w), largest
    // first. Zero-weight deployments follow in random order.
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(candidates.len());
    let mut zero = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let w = weight_of(c);
        if w > 0.0 && w.is_finite() {
            // rng.f64() is in [0, 1); avoid 0 so ln() stays finite.
            let u = rng.f64().max(f64::MIN_POSITIVE);
            keyed.push((u.ln() / w, i));
        } else {
            zero.push(i);
        }
    }
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    rng.shuffle(&mut zero);
    keyed.into_iter().map(|(_, i)| i).chain(zero).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{deployment, first_counts};
    use super::*;

    #[test]
    fn follows_weights() {
        let a = deployment("a", |p, _| p.weight = Some(9.0));
        let b = deployment("b", |p, _| p.weight = Some(1.0));
        let c = deployment("c", |_, _| {});
        let cands = [Candidate::new(&a), Candidate::new(&b), Candidate::new(&c)];
        let counts = first_counts(10_000, |rng| rank(&cands, rng), 3);
        // Expected 90% / 10% / 0%.
        assert!((8_700..=9_300).contains(&counts[0]), "{counts:?}");
        assert!((700..=1_300).contains(&counts[1]), "{counts:?}");
        assert_eq!(counts[2], 0, "unweighted deployment must never be first");
        // Every ranking is a permutation with the unweighted one last.
        let mut rng = fastrand::Rng::with_seed(1);
        let order = rank(&cands, &mut rng);
        assert_eq!(order.len(), 3);
        assert_eq!(order[2], 2);
    }

    #[test]
    fn falls_back_to_rpm_then_uniform() {
        let a = deployment("a", |p, _| p.rpm = Some(300));
        let b = deployment("b", |p, _| p.rpm = Some(100));
        let cands = [Candidate::new(&a), Candidate::new(&b)];
        let counts = first_counts(10_000, |rng| rank(&cands, rng), 2);
        assert!((7_200..=7_800).contains(&counts[0]), "{counts:?}");

        let x = deployment("x", |_, _| {});
        let y = deployment("y", |_, _| {});
        let cands = [Candidate::new(&x), Candidate::new(&y)];
        let counts = first_counts(10_000, |rng| rank(&cands, rng), 2);
        assert!((4_700..=5_300).contains(&counts[0]), "{counts:?}");
    }
}
