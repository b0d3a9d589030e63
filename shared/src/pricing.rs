//! Built-in price table for well-known models (USD per token), used by cost-based routing and
//! cost reporting when `model_info` gives no prices. Prices are list prices per million tokens
//! as published by the providers; `model_info.input_cost_per_token`/`output_cost_per_token`
//! always take precedence.

/// Prices for one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_cost_per_token: f64,
    pub output_cost_per_token: f64,
}

const fn per_million(input: f64, output: f64) -> Price {
    Price {
        input_cost_per_token: input / 1_000_000.0,
        output_cost_per_token: output / 1_000_000.0,
    }
}

/// (model name, price). Matched exactly, then by longest prefix (so dated snapshots such as
/// `gpt-4o-2024-08-06` find `gpt-4o`).
const TABLE: &[(&str, Price)] = &[
    ("gpt-4o-mini", per_million(0.15, 0.60)),
    ("gpt-4o", per_million(2.50, 10.00)),
    ("gpt-4.1-nano", per_million(0.10, 0.40)),
    ("gpt-4.1-mini", per_million(0.40, 1.60)),
    ("gpt-4.1", per_million(2.00, 8.00)),
    ("gpt-4-turbo", per_million(10.00, 30.00)),
    ("gpt-4", per_million(30.00, 60.00)),
    ("gpt-3.5-turbo", per_million(0.50, 1.50)),
    ("o1-mini", per_million(1.10, 4.40)),
    ("o1", per_million(15.00, 60.00)),
    ("o3-mini", per_million(1.10, 4.40)),
    ("o3", per_million(2.00, 8.00)),
    ("o4-mini", per_million(1.10, 4.40)),
    ("text-embedding-3-small", per_million(0.02, 0.0)),
    ("text-embedding-3-large", per_million(0.13, 0.0)),
    ("text-embedding-ada-002", per_million(0.10, 0.0)),
    ("claude-3-5-haiku", per_million(0.80, 4.00)),
    ("claude-3-5-sonnet", per_million(3.00, 15.00)),
    ("claude-3-7-sonnet", per_million(3.00, 15.00)),
    ("claude-3-haiku", per_million(0.25, 1.25)),
    ("claude-3-opus", per_million(15.00, 75.00)),
    ("claude-sonnet-4", per_million(3.00, 15.00)),
    ("claude-opus-4", per_million(15.00, 75.00)),
    ("claude-haiku-4", per_million(1.00, 5.00)),
    ("llama-3.1-8b-instant", per_million(0.05, 0.08)),
    ("llama-3.3-70b-versatile", per_million(0.59, 0.79)),
    ("mistral-large-latest", per_million(2.00, 6.00)),
    ("mistral-small-latest", per_million(0.20, 0.60)),
    ("deepseek-chat", per_million(0.27, 1.10)),
    ("deepseek-reasoner", per_million(0.55, 2.19)),
];

/// The price of `model` (without provider prefix), if the table knows it.
pub fn lookup(model: &str) -> Option<Price> {
    let model = model.rsplit('/').next().unwrap_or(model);
    if let Some((_, p)) = TABLE.iter().find(|(name, _)| *name == model) {
        return Some(*p);
    }
    TABLE
        .iter()
        .filter(|(name, _)| model.starts_with(name))
        .max_by_key(|(name, _)| name.len())
        .map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_lookup() {
        let mini = lookup("gpt-4o-mini").unwrap();
        assert!((mini.input_cost_per_token - 0.15e-6).abs() < 1e-15);
        // A dated snapshot of gpt-4o must not match gpt-4o-mini, and gpt-4o-mini-2024 must.
        let dated = lookup("gpt-4o-2024-08-06").unwrap();
        assert!((dated.input_cost_per_token - 2.5e-6).abs() < 1e-15);
        let dated_mini = lookup("gpt-4o-mini-2024-07-18").unwrap();
        assert_eq!(dated_mini, mini);
        assert!(lookup("my-private-model").is_none());
        assert!(lookup("anthropic/claude-3-5-haiku-latest").is_some());
    }
}
