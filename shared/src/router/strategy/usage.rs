//! `usage-based-routing` / `usage-based-routing-v2`: least-used first by tokens this minute
//! (then requests), leaving out deployments whose `rpm` or `tpm` limit this request would
//! exceed. Counters are per deployment per minute in the state store, so with a shared backend
//! the limits hold across instances. (v2 is LiteLLM's Redis-backed rewrite of the same policy;
//! here both share one implementation.)

use super::{Candidate, RequestFacts, shuffled};

pub(super) fn rank(
    candidates: &[Candidate<'_>],
    facts: RequestFacts,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    let fits = |c: &Candidate<'_>| {
        let p = &c.deployment.params;
        let rpm_ok = p.rpm.is_none_or(|limit| c.rpm_used < limit as i64);
        let tpm_ok = p
            .tpm
            .is_none_or(|limit| c.tpm_used + facts.estimated_tokens as i64 <= limit as i64);
        rpm_ok && tpm_ok
    };
    let mut order: Vec<usize> = shuffled(candidates.len(), rng)
        .into_iter()
        .filter(|&i| fits(&candidates[i]))
        .collect();
    order.sort_by_key(|&i| (candidates[i].tpm_used, candidates[i].rpm_used));
    order
}

#[cfg(test)]
mod tests {
    use super::super::test_support::deployment;
    use super::*;

    #[test]
    fn least_used_first_and_limits_respected() {
        let a = deployment("a", |p, _| {
            p.rpm = Some(10);
            p.tpm = Some(1_000);
        });
        let b = deployment("b", |p, _| p.tpm = Some(100_000));
        let c = deployment("c", |p, _| p.rpm = Some(2));
        let mut cands = [Candidate::new(&a), Candidate::new(&b), Candidate::new(&c)];
        cands[0].tpm_used = 100;
        cands[1].tpm_used = 5_000;
        cands[2].rpm_used = 2; // at its rpm limit
        let facts = RequestFacts {
            estimated_tokens: 50,
            stream: false,
            ..RequestFacts::default()
        };
        let mut rng = fastrand::Rng::with_seed(5);
        assert_eq!(rank(&cands, facts, &mut rng), vec![0, 1]);
        // A request that would push `a` past its tpm limit skips it.
        let big = RequestFacts {
            estimated_tokens: 950,
            stream: false,
            ..RequestFacts::default()
        };
        assert_eq!(rank(&cands, big, &mut rng), vec![1]);
    }
}
