//! Retries, fallbacks, cooldowns and timeouts around provider calls (LiteLLM's reliability
//! semantics).
//!
//! For a request to group G: the router orders G's deployments; the dispatcher tries them in
//! that order (cycling when `num_retries` exceeds the group size) up to `1 + retries` attempts,
//! where retries come from `retry_policy` for the error's class, else `num_retries`, and
//! non-retryable errors end the group at once. Every failure is reported to the router
//! (cooldowns). When G is exhausted, the fallback groups for the last error's kind are tried
//! the same way, at most `max_fallbacks`. Between attempts on the same deployment it backs off
//! exponentially with jitter, honouring `Retry-After`; moving to another deployment is
//! immediate. Every call runs under the deployment's `timeout` (`stream_timeout` for streams,
//! which covers the wait for the first chunk too, so a stream that fails before its first byte
//! is retried like any other call).
//!
//! A request whose `model` is a deployment id goes to that deployment only (then to the
//! fallback groups). With conversation affinity on, the deployment that answers becomes the
//! conversation's pin in its group ([`Router::commit_affinity`]), written before the response
//! is returned so the conversation's next request, on any instance, sees it.
//!
//! [`Router::commit_affinity`]: routeiq::router::Router::commit_affinity

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use routeiq::config::RetryPolicy;
use routeiq::ml::routing::Decision;
use routeiq::router::auto::AutoDecision;
use routeiq::router::hint::HintOutcome;
use routeiq::router::{
    AffinityOutcome, CallOutcome, CircuitState, Deployment, FallbackKind, RequestFacts,
};
use tracing::Instrument;

use crate::error::{GatewayError, RetrySlot, UpstreamErrorKind};
use crate::gateway::Gateway;
use crate::upstream::providers::{CallContext, Provider};

/// LiteLLM's default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// The longest `Retry-After` the gateway waits out inside a request when nothing else can
/// serve; a longer one is answered at once (429 with the upstream's wait).
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// One kind of upstream call the dispatcher can retry.
pub trait Operation: Sync {
    type Output: Send;

    /// Whether this is a streaming call (selects `stream_timeout`).
    fn is_stream(&self) -> bool;

    /// Calls the provider once. `timeout` bounds the whole call (for streams: up to the first
    /// chunk).
    fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Output, GatewayError>> + Send + 'a;

    /// Tokens used, for usage-based routing (streams report at their end instead).
    fn total_tokens(output: &Self::Output) -> u64;

    /// The client's `extra_headers` for the upstream, if it sent any.
    fn extra_headers(&self) -> Option<&http::HeaderMap>;
}

/// A successful dispatch.
pub struct Dispatched<T> {
    pub output: T,
    pub deployment: Arc<Deployment>,
    pub model_group: String,
    pub strategy: &'static str,
    /// Upstream calls made, including the successful one.
    pub attempts: u32,
    /// Time spent waiting on upstreams (all attempts, including backoff sleeps).
    pub upstream_time: Duration,
    /// Time the router spent choosing deployments (every group tried).
    pub decision_time: Duration,
    /// Whether a fallback group answered.
    pub fallback: bool,
    /// The ML strategies' decision for the group that answered (predicted quality and cost).
    pub decision: Option<Arc<Decision>>,
    /// What conversation affinity did in the group that answered (`None`: not in play).
    pub affinity: Option<AffinityOutcome>,
    /// What the router did with a verified edge hint in the group that answered.
    pub hint: Option<HintOutcome>,
    /// The auto router's decision, when the request named one.
    pub auto: Option<Arc<AutoDecision>>,
}

/// What answered in one group.
struct GroupAnswer<T> {
    output: T,
    deployment: Arc<Deployment>,
    strategy: &'static str,
    decision: Option<Arc<Decision>>,
    affinity: Option<AffinityOutcome>,
    hint: Option<HintOutcome>,
}

/// Counters a dispatch accumulates over groups and attempts.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    attempts: u32,
    upstream_time: Duration,
    decision_time: Duration,
}

/// The first chunk of a stream, already received, and the rest.
pub struct StreamStart<T> {
    pub first: T,
    pub rest: BoxStream<'static, Result<T, GatewayError>>,
    /// Time from the call to the first chunk.
    pub ttft: Duration,
}

/// Awaits `fut` for at most `timeout`.
pub async fn with_timeout<T>(
    provider: &Deployment,
    timeout: Duration,
    fut: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(GatewayError::Timeout {
            provider: provider.provider.name().to_string(),
            after: timeout,
        }),
    }
}

/// Opens a stream and waits for its first chunk, all within `timeout`.
pub async fn open_stream<T, F>(
    d: &Deployment,
    timeout: Duration,
    open: F,
) -> Result<StreamStart<T>, GatewayError>
where
    F: Future<Output = Result<BoxStream<'static, Result<T, GatewayError>>, GatewayError>>,
{
    let started = Instant::now();
    with_timeout(d, timeout, async {
        let mut rest = open.await?;
        match rest.next().await {
            Some(Ok(first)) => Ok(StreamStart {
                first,
                rest,
                ttft: started.elapsed(),
            }),
            Some(Err(e)) => Err(e),
            None => Err(GatewayError::Connection {
                provider: d.provider.name().to_string(),
                message: "stream ended before its first chunk".into(),
            }),
        }
    })
    .await
}

/// Retries allowed for this error: `retry_policy` for its class, else `num_retries` for
/// retryable errors and none for the rest.
fn retries_for(e: &GatewayError, policy: &RetryPolicy, num_retries: u32) -> u32 {
    let by_policy = match e.class().retry_slot() {
        RetrySlot::BadRequest => policy.bad_request,
        RetrySlot::Authentication => policy.authentication,
        RetrySlot::Timeout => policy.timeout,
        RetrySlot::RateLimit => policy.rate_limit,
        RetrySlot::ContentPolicyViolation => policy.content_policy_violation,
        RetrySlot::InternalServer => policy.internal_server,
        RetrySlot::Never | RetrySlot::None => Some(0),
    };
    by_policy.unwrap_or(if e.is_retryable() { num_retries } else { 0 })
}

/// The wait before trying the same deployment again: the upstream's `Retry-After` when it
/// sent one, else exponential backoff with jitter; never below `min_wait`
/// (`router_settings.retry_after`).
fn backoff(attempt: u32, e: &GatewayError, min_wait: Duration) -> Duration {
    if let Some(after) = e.retry_after() {
        return after.max(min_wait);
    }
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(10));
    let jitter = 0.5 + fastrand::f64() * 0.5;
    exp.min(BACKOFF_MAX).mul_f64(jitter).max(min_wait)
}

/// Takes back a deployment's in-flight count if the call is abandoned (the request's future
/// dropped because the client went away) before `record_end` runs.
struct InFlightGuard(Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>>);

impl InFlightGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let (Some(release), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(release);
        }
    }
}

impl Gateway {
    /// Timeout for a call to `d`: its own, else `router_settings`, else the default.
    pub fn timeout_for(&self, d: &Deployment, stream: bool) -> Duration {
        let s = self.router.settings();
        let plain = d.params.timeout.or(s.timeout).unwrap_or(DEFAULT_TIMEOUT);
        if stream {
            d.params
                .stream_timeout
                .or(s.stream_timeout)
                .unwrap_or(plain)
        } else {
            plain
        }
    }

    /// Runs `op` for the model a client asked for (a group, an alias, a deployment id, or an
    /// auto router), with retries and fallbacks.
    ///
    /// - An auto router's request goes to its decision's first target; the other targets
    ///   come first among the fallbacks, then the fallbacks configured for the auto router,
    ///   then those of the target.
    pub async fn dispatch<O: Operation>(
        &self,
        model: &str,
        mut facts: RequestFacts,
        op: &O,
    ) -> Result<Dispatched<O::Output>, GatewayError> {
        let started = Instant::now();
        let auto = facts.auto.clone().filter(|a| a.router == model);
        let target = match &auto {
            Some(a) => a.targets.first().map(String::as_str).unwrap_or(model),
            None if self.router.is_auto_router(model) => {
                return Err(GatewayError::invalid_param(
                    format!(
                        "'{model}' is an auto router: it routes chat and completion requests \
                         only; name one of its model groups instead"
                    ),
                    "model",
                ));
            }
            None => model,
        };
        let (group, explicit) =
            self.router
                .resolve_target(target)
                .ok_or_else(|| GatewayError::ModelNotFound {
                    model: target.to_string(),
                    available: self.router.model_names(),
                })?;
        let group = group.to_string();
        facts.deployment = explicit.map(Arc::from);
        let fallbacks_for = |kind: FallbackKind| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            if let Some(a) = &auto {
                out.extend(a.targets.iter().skip(1).cloned());
                out.extend(self.router.fallback_groups(&a.router, kind));
            }
            out.extend(self.router.fallback_groups(&group, kind));
            let mut seen = vec![group.clone()];
            out.retain(|g| {
                let new = !seen.contains(g);
                seen.push(g.clone());
                new
            });
            out
        };
        let mut tally = Tally::default();
        let has_fallback = |e: &GatewayError| {
            e.class()
                .fallback()
                .is_some_and(|k| !fallbacks_for(k).is_empty())
        };
        let first_error = match self
            .try_group(
                &group,
                facts.clone(),
                op,
                &mut tally,
                (started, &has_fallback),
            )
            .await
        {
            Ok(a) => return Ok(a.dispatched(group.clone(), tally, false, auto)),
            Err(e) => e,
        };
        // Fallback groups route normally, whatever deployment was asked for.
        facts.deployment = None;
        let Some(kind) = first_error.class().fallback() else {
            return Err(first_error);
        };
        let fallbacks = fallbacks_for(kind);
        let mut last_error = first_error;
        for (i, fb) in fallbacks.iter().enumerate() {
            tracing::info!(model_group = %group, fallback = %fb, error = %last_error, "falling back");
            let more = |_: &GatewayError| i + 1 < fallbacks.len();
            // A fallback names a group (or alias), or one deployment by its litellm model.
            let Some((fb_group, explicit)) = self.router.resolve_target(fb) else {
                continue;
            };
            let fb_facts = RequestFacts {
                deployment: explicit.map(Arc::from),
                ..facts.clone()
            };
            let fb_group = fb_group.to_string();
            match self
                .try_group(&fb_group, fb_facts, op, &mut tally, (started, &more))
                .await
            {
                Ok(a) => return Ok(a.dispatched(fb_group, tally, true, auto)),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Tries one group's deployments in the strategy's order.
    ///
    /// - A failed deployment that cooled down or whose circuit opened is not tried again in
    ///   this request.
    /// - Another deployment is tried at once; the same one only after a backoff.
    /// - A rate-limited deployment (429, or any answer with `Retry-After`) is left at once
    ///   for another deployment or, when `can_move_on` says another group will be tried, for
    ///   that group.
    /// - The gateway waits only when nothing else can serve, never longer than
    ///   [`RETRY_AFTER_MAX`] and never past the request's deadline (`started` plus the group's
    ///   timeout for each attempt `num_retries` allows); otherwise it answers with the error
    ///   (a 429 carries the upstream's wait).
    async fn try_group<O: Operation>(
        &self,
        group: &str,
        facts: RequestFacts,
        op: &O,
        tally: &mut Tally,
        (started, can_move_on): (Instant, &(dyn Fn(&GatewayError) -> bool + Sync)),
    ) -> Result<GroupAnswer<O::Output>, GatewayError> {
        let mut rng = fastrand::Rng::new();
        let strategy = self.router.strategy().name();
        let span = tracing::info_span!(
            "routing_decision",
            strategy,
            model_group = group,
            model_selected = tracing::field::Empty,
            candidates_count = tracing::field::Empty,
        );
        let decided = Instant::now();
        let selection = self
            .router
            .select_group(group, facts, &mut rng)
            .instrument(span.clone())
            .await;
        let took = decided.elapsed();
        tally.decision_time += took;
        self.metrics().observe_decision(strategy, group, took);
        let selection = selection.map_err(GatewayError::from)?;
        span.record("candidates_count", selection.candidates.len());
        if let Some(first) = selection.candidates.first() {
            span.record("model_selected", first.id.as_str());
        }
        let settings = self.router.settings();
        let candidates = &selection.candidates;
        let Some(first) = candidates.first() else {
            return Err(GatewayError::Internal(format!(
                "model group '{group}' has no candidate deployments"
            )));
        };
        let num_retries = first.params.max_retries.unwrap_or(settings.num_retries);
        // The request's deadline: every attempt `num_retries` allows, each at its timeout.
        let budget = self
            .timeout_for(first, op.is_stream())
            .saturating_mul(num_retries.saturating_add(1));
        let deadline = started.checked_add(budget);
        // Deployments this request will not call again: cooled down (and whether by their
        // own Retry-After) or circuit open.
        let mut excluded: Vec<(&str, bool)> = Vec::new();
        let mut cursor = 0usize;
        let mut tries_here = 0u32;
        loop {
            let d = candidates[cursor].clone();
            let Some(provider) = self.provider(&d.id) else {
                return Err(GatewayError::Internal(format!(
                    "no provider for deployment '{}'",
                    d.id
                )));
            };
            let ctx = CallContext {
                deployment: &d,
                http: &self.http,
                extra_headers: op.extra_headers(),
            };
            if let Some(blocked) = self.blocked_endpoint(&d.id) {
                // Never silent: a refused endpoint is a clear 403, counted per attempt.
                self.metrics()
                    .observe_outbound_blocked(blocked.reason.as_str());
                return Err(GatewayError::OutboundBlocked(blocked.clone()));
            }
            let timeout = self.timeout_for(&d, op.is_stream());
            self.router.record_start(&d).await;
            let mut in_flight = InFlightGuard(self.router.release_in_flight(&d));
            let span = tracing::info_span!(
                "upstream_call",
                provider = d.provider.name(),
                deployment = %d.id,
                model_group = group,
                tokens = tracing::field::Empty,
                status = tracing::field::Empty,
            );
            let call_started = Instant::now();
            let result = op
                .call(provider, &ctx, timeout)
                .instrument(span.clone())
                .await;
            let elapsed = call_started.elapsed();
            tally.upstream_time += elapsed;
            tally.attempts += 1;
            tries_here += 1;
            let mut error = match result {
                Ok(output) => {
                    if !op.is_stream() {
                        let tokens = O::total_tokens(&output);
                        span.record("tokens", tokens);
                        let outcome = CallOutcome {
                            latency: elapsed,
                            ttft: None,
                            total_tokens: tokens,
                        };
                        self.router.record_end(&d, Some(outcome)).await;
                    }
                    // A stream's end is reported by its body (`crate::upstream::stream`).
                    in_flight.disarm();
                    span.record("status", 200);
                    let affinity = match &selection.affinity {
                        Some(pin) => Some(self.router.commit_affinity(pin, &d.id).await),
                        None => None,
                    };
                    return Ok(GroupAnswer {
                        output,
                        deployment: d,
                        strategy: selection.strategy,
                        decision: selection.decision.clone(),
                        affinity,
                        hint: selection.hint,
                    });
                }
                Err(e) => e,
            };
            span.record("status", error.status_code().as_u16());
            self.metrics()
                .observe_upstream_error(&d.id, error.class().metric_label());
            self.router.record_end(&d, None).await;
            in_flight.disarm();
            if let GatewayError::OutboundBlocked(b) = &error {
                // Refused by the guarded resolver (which counted it): not the deployment's
                // health, and no other attempt can succeed on the same endpoint.
                tracing::warn!(deployment = %d.id, error = %b, "upstream call refused by the SSRF guard");
                return Err(error);
            }
            let own_wait = error.upstream_retry_after();
            let cooled = self
                .router
                .record_failure_with(&d, error.class().failure(), own_wait)
                .await;
            let circuit = self
                .router
                .circuits()
                .states(&[d.id.as_str()])
                .await
                .first()
                .copied();
            if let Some(state) = circuit {
                self.metrics()
                    .set_circuit_state(&d.id, &d.model_name, state);
            }
            if circuit == Some(CircuitState::Open) {
                excluded.push((candidates[cursor].id.as_str(), false));
            } else if cooled {
                excluded.push((candidates[cursor].id.as_str(), own_wait.is_some()));
                // A 429 the upstream gave no wait for: the client is told the cooldown.
                if let GatewayError::Upstream {
                    retry_after: retry_after @ None,
                    kind: UpstreamErrorKind::RateLimit,
                    ..
                } = &mut error
                {
                    *retry_after = Some(settings.cooldown_time);
                }
            }
            tracing::warn!(
                deployment = %d.id,
                model_group = group,
                attempt = tries_here,
                status = error.status_code().as_u16(),
                cooled_down = cooled,
                error = %error,
                "upstream call failed"
            );
            let allowed = retries_for(&error, &settings.retry_policy, num_retries);
            if tries_here > allowed {
                return Err(error);
            }
            let is_excluded = |id: &str| excluded.iter().any(|(x, _)| *x == id);
            let len = candidates.len();
            let next = (1..=len)
                .map(|k| (cursor + k) % len)
                .find(|&i| !is_excluded(&candidates[i].id));
            if let Some(i) = next
                && candidates[i].id != d.id
            {
                // Another deployment: at once.
                cursor = i;
                continue;
            }
            // Only `d` is left (or nothing): another group may serve at once.
            if (next.is_none() || error.is_rate_limited()) && can_move_on(&error) {
                return Err(error);
            }
            // Wait for `d` only when it is still eligible, or out only for its own Retry-After.
            let waits_for_itself = excluded.iter().any(|(x, own)| *x == d.id.as_str() && *own);
            if next.is_none() && !waits_for_itself {
                return Err(error);
            }
            let wait = backoff(tries_here - 1, &error, settings.retry_after);
            let fits = match (Instant::now().checked_add(wait), deadline) {
                (Some(end), Some(deadline)) => end <= deadline,
                // A deadline too far to represent is no bound.
                (Some(_), None) => true,
                (None, _) => false,
            };
            if wait > RETRY_AFTER_MAX || !fits {
                tracing::info!(
                    deployment = %d.id,
                    model_group = group,
                    wait_secs = wait.as_secs_f64(),
                    "not waiting to retry: past the request's deadline or the longest wait"
                );
                return Err(error);
            }
            tokio::time::sleep(wait).await;
            tally.upstream_time += wait;
            excluded.retain(|(x, _)| *x != d.id.as_str());
        }
    }
}

impl<T> GroupAnswer<T> {
    fn dispatched(
        self,
        model_group: String,
        tally: Tally,
        fallback: bool,
        auto: Option<Arc<AutoDecision>>,
    ) -> Dispatched<T> {
        Dispatched {
            output: self.output,
            deployment: self.deployment,
            model_group,
            strategy: self.strategy,
            attempts: tally.attempts,
            upstream_time: tally.upstream_time,
            decision_time: tally.decision_time,
            fallback,
            decision: self.decision,
            affinity: self.affinity,
            hint: self.hint,
            auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::upstream;

    #[test]
    fn retry_counts_follow_policy_then_num_retries() {
        let policy = RetryPolicy {
            rate_limit: Some(5),
            bad_request: Some(1),
            ..RetryPolicy::default()
        };
        assert_eq!(
            retries_for(&upstream(UpstreamErrorKind::RateLimit, 429), &policy, 2),
            5
        );
        assert_eq!(
            retries_for(&upstream(UpstreamErrorKind::BadRequest, 400), &policy, 2),
            1
        );
        assert_eq!(
            retries_for(
                &upstream(UpstreamErrorKind::InternalServer, 500),
                &policy,
                2
            ),
            2
        );
        let none = RetryPolicy::default();
        assert_eq!(
            retries_for(&upstream(UpstreamErrorKind::BadRequest, 400), &none, 2),
            0
        );
        assert_eq!(
            retries_for(
                &upstream(UpstreamErrorKind::ContextWindowExceeded, 400),
                &policy,
                3
            ),
            0
        );
    }

    #[test]
    fn backoff_honours_retry_after_and_grows() {
        let mut e = upstream(UpstreamErrorKind::RateLimit, 429);
        if let GatewayError::Upstream { retry_after, .. } = &mut e {
            *retry_after = Some(Duration::from_secs(3));
        }
        assert_eq!(backoff(0, &e, Duration::ZERO), Duration::from_secs(3));
        let plain = upstream(UpstreamErrorKind::InternalServer, 500);
        let b0 = backoff(0, &plain, Duration::ZERO);
        assert!(b0 >= Duration::from_millis(125) && b0 <= Duration::from_millis(250));
        let b3 = backoff(3, &plain, Duration::ZERO);
        assert!(b3 >= Duration::from_secs(1) && b3 <= Duration::from_secs(2));
        assert!(backoff(20, &plain, Duration::ZERO) <= BACKOFF_MAX);
        assert_eq!(
            backoff(0, &plain, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }
}
