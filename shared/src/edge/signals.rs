//! Cheap signals: what a few passes over the prompt text say about it, without a model.
//!
//! Each score is in `[0, 1]`; a [`Signal`] fires when its score passes 0.5. The scores are
//! also the learned model's dense features, so the model weighs them against the n-grams.

use super::hint::Signal;
use super::prompt::PromptView;

/// The dense features, in this order: log-length, code, maths, reasoning, tools, depth,
/// system prompt, non-Latin script, long output requested.
pub const N_FEATURES: usize = 9;

/// Signal scores of one prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    pub estimated_tokens: u64,
    pub code: f32,
    pub math: f32,
    pub reasoning: f32,
    pub tools: bool,
    /// User turns so far.
    pub depth: usize,
    pub system: bool,
    /// Share of letters outside the Latin script.
    pub non_latin: f32,
    /// Asked for more than 2,000 output tokens.
    pub long_output: bool,
}

const CODE_MARKERS: [&str; 24] = [
    "```",
    "def ",
    "fn ",
    "function ",
    "class ",
    "import ",
    "#include",
    "return ",
    "=>",
    "->",
    "::",
    "console.log",
    "print(",
    "select ",
    "const ",
    "let ",
    "var ",
    "public ",
    "void ",
    "println",
    "</",
    "self.",
    "lambda",
    "async ",
];
const CODE_WORDS: [&str; 12] = [
    "python",
    "javascript",
    "typescript",
    "rust",
    "java",
    "sql",
    "function",
    "compile",
    "bug",
    "regex",
    "algorithm",
    "code",
];
const MATH_WORDS: [&str; 20] = [
    "solve",
    "equation",
    "integral",
    "derivative",
    "probability",
    "calculate",
    "compute",
    "sum of",
    "how many",
    "how much",
    "percent",
    "triangle",
    "polynomial",
    "matrix",
    "prime",
    "\\frac",
    "\\sqrt",
    "theorem",
    "remainder",
    "average",
];
const REASONING_WORDS: [&str; 16] = [
    "step by step",
    "prove",
    "explain why",
    "why ",
    "reason",
    "derive",
    "justify",
    "analy",
    "compare",
    "trade-off",
    "tradeoff",
    "evaluate",
    "which of the following",
    "deduce",
    "infer",
    "puzzle",
];

fn hits(haystack: &str, needles: &[&str]) -> usize {
    needles.iter().filter(|n| haystack.contains(*n)).count()
}

fn squash(x: f32) -> f32 {
    // 0 -> 0, 1 -> 0.5, 3 -> 0.75, grows towards 1.
    x / (x + 1.0)
}

impl Signals {
    /// Scores a prompt.
    pub fn of(view: &PromptView) -> Signals {
        let lower = view.text.to_lowercase();
        let text = view.text.as_str();
        let (mut letters, mut non_latin, mut digits, mut operators, mut braces) = (0, 0, 0, 0, 0);
        for c in text.chars() {
            if c.is_alphabetic() {
                letters += 1;
                if !(c.is_ascii_alphabetic() || ('\u{00c0}'..='\u{024f}').contains(&c)) {
                    non_latin += 1;
                }
            } else if c.is_ascii_digit() {
                digits += 1;
            } else if matches!(c, '+' | '*' | '/' | '=' | '^' | '<' | '>' | '%') {
                operators += 1;
            } else if matches!(c, '{' | '}' | ';' | '(' | ')' | '[' | ']') {
                braces += 1;
            }
        }
        let chars = text.chars().count().max(1) as f32;
        let code = hits(&lower, &CODE_MARKERS) as f32
            + 0.5 * hits(&lower, &CODE_WORDS) as f32
            + (braces as f32 / chars * 20.0).min(2.0);
        let math = hits(&lower, &MATH_WORDS) as f32
            + (digits.min(40) as f32 / 10.0)
            + (operators as f32 / chars * 30.0).min(2.0)
            + if text.contains('$') && text.contains('\\') {
                1.0
            } else {
                0.0
            };
        let reasoning = hits(&lower, &REASONING_WORDS) as f32;
        Signals {
            estimated_tokens: (view.total_chars as u64).div_ceil(4).max(1),
            code: squash(code),
            math: squash(math),
            reasoning: squash(reasoning),
            tools: view.has_tools,
            depth: view.user_turns,
            system: view.has_system,
            non_latin: if letters == 0 {
                0.0
            } else {
                non_latin as f32 / letters as f32
            },
            long_output: view.max_tokens.is_some_and(|m| m > 2_000),
        }
    }

    /// The dense feature vector (see [`N_FEATURES`]).
    pub fn features(&self) -> [f32; N_FEATURES] {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        [
            ((self.estimated_tokens as f32).ln_1p() / 8.0).min(1.5),
            self.code,
            self.math,
            self.reasoning,
            b(self.tools),
            (self.depth.saturating_sub(1) as f32 / 5.0).min(1.0),
            b(self.system),
            self.non_latin,
            b(self.long_output),
        ]
    }

    /// The signals that fired, in [`Signal::ALL`] order.
    pub fn fired(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        for s in Signal::ALL {
            let on = match s {
                Signal::Code => self.code >= 0.5,
                Signal::Math => self.math >= 0.5,
                Signal::Reasoning => self.reasoning >= 0.5,
                Signal::Tools => self.tools,
                Signal::Long => self.estimated_tokens > 1_000,
                Signal::MultiTurn => self.depth >= 3,
                Signal::NonLatin => self.non_latin >= 0.5,
            };
            if on {
                out.push(s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(text: &str) -> PromptView {
        PromptView {
            text: text.into(),
            total_chars: text.chars().count(),
            messages: 1,
            user_turns: 1,
            ..PromptView::default()
        }
    }

    #[test]
    fn code_fires_on_code() {
        let s = Signals::of(&view(
            "Fix this Python function:\n```python\ndef f(x):\n    return x[0] + g(x)\n```",
        ));
        assert!(s.fired().contains(&Signal::Code), "{s:?}");
        let s = Signals::of(&view("What is the capital of France?"));
        assert!(s.fired().is_empty(), "{s:?}");
    }

    #[test]
    fn maths_and_reasoning_fire() {
        let s = Signals::of(&view(
            "Solve the equation 3x^2 + 5x - 2 = 0 and explain why each step is valid, step by step.",
        ));
        let f = s.fired();
        assert!(
            f.contains(&Signal::Math) && f.contains(&Signal::Reasoning),
            "{s:?}"
        );
    }

    #[test]
    fn script_depth_tools_and_length() {
        let mut v = view("Объясни, пожалуйста, как работает фотосинтез");
        v.user_turns = 4;
        v.has_tools = true;
        v.total_chars = 8_000;
        let f = Signals::of(&v).fired();
        for s in [
            Signal::NonLatin,
            Signal::MultiTurn,
            Signal::Tools,
            Signal::Long,
        ] {
            assert!(f.contains(&s), "{s:?} in {f:?}");
        }
        let s = Signals::of(&view("Crème brûlée: façon française"));
        assert!(s.non_latin < 0.01, "{s:?}");
    }

    #[test]
    fn features_are_bounded() {
        let s = Signals::of(&view(&"{}()[];=+*/ 12345 solve prove ```".repeat(500)));
        for x in s.features() {
            assert!((0.0..=1.5).contains(&x), "{x}");
        }
    }
}
