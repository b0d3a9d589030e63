//! Which upstream API a deployment's `litellm_params.model` (`provider/name`) talks to.

/// The API family of a deployment, parsed from the `provider/` prefix of `litellm_params.model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI's API (`openai/` or a bare model name). With `api_base`, any OpenAI-compatible server.
    OpenAi,
    /// Azure OpenAI (`azure/<deployment>`): deployment URLs and `api-version`.
    Azure,
    /// Anthropic's Messages API (`anthropic/`).
    Anthropic,
    /// AWS Bedrock's Converse API (`bedrock/`, `bedrock/converse/`, `bedrock_converse/`).
    Bedrock,
    /// Google AI Studio's Gemini API (`gemini/`): `generateContent` with an API key.
    Gemini,
    /// Gemini models on Google Cloud Vertex AI (`vertex_ai/`, `vertex_ai_beta/`): the same
    /// API under a project and location, with OAuth tokens.
    VertexAi,
    /// An OpenAI-compatible API with its own default base URL and key variable.
    Compatible(CompatibleProvider),
    /// A provider LiteLLM knows and RouteIQ does not implement yet (e.g. `cohere`).
    Unsupported(String),
}

/// OpenAI-compatible providers reached by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatibleProvider {
    Groq,
    TogetherAi,
    Mistral,
    DeepSeek,
    FireworksAi,
    OpenRouter,
    Ollama,
    HostedVllm,
}

impl CompatibleProvider {
    pub const ALL: [CompatibleProvider; 8] = [
        CompatibleProvider::Groq,
        CompatibleProvider::TogetherAi,
        CompatibleProvider::Mistral,
        CompatibleProvider::DeepSeek,
        CompatibleProvider::FireworksAi,
        CompatibleProvider::OpenRouter,
        CompatibleProvider::Ollama,
        CompatibleProvider::HostedVllm,
    ];

    /// The `provider/` prefix as LiteLLM spells it.
    pub fn prefix(self) -> &'static str {
        match self {
            CompatibleProvider::Groq => "groq",
            CompatibleProvider::TogetherAi => "together_ai",
            CompatibleProvider::Mistral => "mistral",
            CompatibleProvider::DeepSeek => "deepseek",
            CompatibleProvider::FireworksAi => "fireworks_ai",
            CompatibleProvider::OpenRouter => "openrouter",
            CompatibleProvider::Ollama => "ollama",
            CompatibleProvider::HostedVllm => "hosted_vllm",
        }
    }

    /// Base URL (up to and including the version segment) used when `api_base` is unset.
    /// `None`: the provider has no public endpoint and `api_base` is required.
    pub fn default_api_base(self) -> Option<&'static str> {
        match self {
            CompatibleProvider::Groq => Some("https://api.groq.com/openai/v1"),
            CompatibleProvider::TogetherAi => Some("https://api.together.xyz/v1"),
            CompatibleProvider::Mistral => Some("https://api.mistral.ai/v1"),
            CompatibleProvider::DeepSeek => Some("https://api.deepseek.com/v1"),
            CompatibleProvider::FireworksAi => Some("https://api.fireworks.ai/inference/v1"),
            CompatibleProvider::OpenRouter => Some("https://openrouter.ai/api/v1"),
            CompatibleProvider::Ollama => Some("http://localhost:11434/v1"),
            CompatibleProvider::HostedVllm => None,
        }
    }

    /// Environment variable holding the API key when `api_key` is unset (LiteLLM's names).
    pub fn api_key_env(self) -> Option<&'static str> {
        match self {
            CompatibleProvider::Groq => Some("GROQ_API_KEY"),
            CompatibleProvider::TogetherAi => Some("TOGETHERAI_API_KEY"),
            CompatibleProvider::Mistral => Some("MISTRAL_API_KEY"),
            CompatibleProvider::DeepSeek => Some("DEEPSEEK_API_KEY"),
            CompatibleProvider::FireworksAi => Some("FIREWORKS_AI_API_KEY"),
            CompatibleProvider::OpenRouter => Some("OPENROUTER_API_KEY"),
            CompatibleProvider::Ollama => None,
            CompatibleProvider::HostedVllm => Some("HOSTED_VLLM_API_KEY"),
        }
    }
}

/// Every provider prefix LiteLLM knows (its `LlmProviders` enum, plus older names its docs
/// still use). A deployment on one RouteIQ does not call loads with a warning, and requests
/// routed only to it get a clear error naming the provider.
pub const LITELLM_PROVIDERS: &[&str] = &[
    "openai",
    "chatgpt",
    "openai_like",
    "jina_ai",
    "xai",
    "zai",
    "custom_openai",
    "text-completion-openai",
    "cohere",
    "cohere_chat",
    "clarifai",
    "anthropic",
    "anthropic_text",
    "bytez",
    "replicate",
    "reducto",
    "runwayml",
    "aws_polly",
    "huggingface",
    "together_ai",
    "openrouter",
    "datarobot",
    "vertex_ai",
    "vertex_ai_beta",
    "gemini",
    "ai21",
    "baseten",
    "black_forest_labs",
    "azure",
    "azure_text",
    "azure_ai",
    "sagemaker",
    "sagemaker_chat",
    "sagemaker_nova",
    "bedrock",
    "vllm",
    "nlp_cloud",
    "petals",
    "oobabooga",
    "ollama",
    "ollama_chat",
    "deepinfra",
    "perplexity",
    "mistral",
    "milvus",
    "groq",
    "a2a",
    "gigachat",
    "nvidia_nim",
    "nvidia_riva",
    "soniox",
    "cerebras",
    "ai21_chat",
    "volcengine",
    "codestral",
    "text-completion-codestral",
    "dashscope",
    "modelscope",
    "moonshot",
    "publicai",
    "v0",
    "morph",
    "lambda_ai",
    "inception",
    "text-completion-inception",
    "deepseek",
    "sambanova",
    "maritalk",
    "voyage",
    "cloudflare",
    "xinference",
    "fireworks_ai",
    "friendliai",
    "featherless_ai",
    "watsonx",
    "watsonx_text",
    "triton",
    "predibase",
    "databricks",
    "empower",
    "github",
    "ragflow",
    "compactifai",
    "docker_model_runner",
    "custom",
    "litellm_proxy",
    "hosted_vllm",
    "tencent",
    "llamafile",
    "lm_studio",
    "galadriel",
    "nebius",
    "infinity",
    "deepgram",
    "elevenlabs",
    "novita",
    "aiohttp_openai",
    "langfuse",
    "humanloop",
    "topaz",
    "sap",
    "assemblyai",
    "charity_engine",
    "github_copilot",
    "snowflake",
    "gradient_ai",
    "meta_llama",
    "nscale",
    "pg_vector",
    "s3_vectors",
    "helicone",
    "hyperbolic",
    "recraft",
    "fal_ai",
    "stability",
    "heroku",
    "aiml",
    "cometapi",
    "oci",
    "auto_router",
    "vercel_ai_gateway",
    "dotprompt",
    "manus",
    "wandb",
    "ovhcloud",
    "scaleway",
    "lemonade",
    "amazon_nova",
    "a2a_agent",
    "langgraph",
    "langflow",
    "minimax",
    "synthetic",
    "apertis",
    "nano-gpt",
    "poe",
    "chutes",
    "neosantara",
    "parasail",
    "xiaomi_mimo",
    "tensormesh",
    "libertai",
    "pinstripes",
    "darkbloom",
    "meta",
    "litellm_agent",
    "cursor",
    "bedrock_mantle",
    "gdc",
    "aleph_alpha",
    "palm",
    "anyscale",
    "bedrock_converse",
];

impl ProviderKind {
    /// Splits `provider/name` into the provider and the model name sent upstream.
    /// A name without a known prefix is an OpenAI model (LiteLLM's behaviour for `gpt-4o`).
    /// Returns `Err(prefix)` for a prefix neither RouteIQ nor LiteLLM knows.
    pub fn parse(model: &str) -> Result<(ProviderKind, String), String> {
        let Some((prefix, rest)) = model.split_once('/') else {
            return Ok((ProviderKind::OpenAi, model.to_string()));
        };
        let kind = match prefix {
            "openai" => ProviderKind::OpenAi,
            "azure" => ProviderKind::Azure,
            "anthropic" => ProviderKind::Anthropic,
            "gemini" => ProviderKind::Gemini,
            "vertex_ai" | "vertex_ai_beta" => ProviderKind::VertexAi,
            "bedrock" | "bedrock_converse" => {
                // LiteLLM's `bedrock/converse/<model id>` names the API explicitly.
                let id = rest.strip_prefix("converse/").unwrap_or(rest);
                return Ok((ProviderKind::Bedrock, id.to_string()));
            }
            p => {
                if let Some(c) = CompatibleProvider::ALL.iter().find(|c| c.prefix() == p) {
                    ProviderKind::Compatible(*c)
                } else if LITELLM_PROVIDERS.contains(&p) {
                    ProviderKind::Unsupported(p.to_string())
                } else {
                    return Err(p.to_string());
                }
            }
        };
        Ok((kind, rest.to_string()))
    }

    /// [`ProviderKind::parse`] with LiteLLM's `custom_llm_provider`: when set, it names the
    /// provider and `model` is the upstream name (a leading `<provider>/` is dropped, as
    /// LiteLLM's `get_llm_provider` does).
    pub fn parse_with(
        model: &str,
        custom_llm_provider: Option<&str>,
    ) -> Result<(ProviderKind, String), String> {
        match custom_llm_provider.map(str::trim).filter(|p| !p.is_empty()) {
            None => Self::parse(model),
            Some(p) => {
                let name = model
                    .strip_prefix(p)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .unwrap_or(model);
                Self::parse(&format!("{p}/{name}"))
            }
        }
    }

    /// Is `prefix` a provider LiteLLM knows (whether or not RouteIQ calls it)?
    pub fn is_litellm_provider(prefix: &str) -> bool {
        LITELLM_PROVIDERS.contains(&prefix)
    }

    /// Every prefix RouteIQ or LiteLLM knows, for "did you mean" suggestions.
    pub fn known_prefixes() -> Vec<&'static str> {
        let mut v = vec![
            "openai",
            "azure",
            "anthropic",
            "gemini",
            "vertex_ai",
            "bedrock",
            "bedrock_converse",
        ];
        v.extend(CompatibleProvider::ALL.iter().map(|c| c.prefix()));
        v.extend(LITELLM_PROVIDERS.iter().copied());
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Short provider name for logs and headers.
    pub fn name(&self) -> &str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Gemini => "gemini",
            ProviderKind::VertexAi => "vertex_ai",
            ProviderKind::Compatible(c) => c.prefix(),
            ProviderKind::Unsupported(p) => p,
        }
    }

    /// Which Vertex AI publisher's API a `vertex_ai/` model is called with: `google` (Gemini
    /// and Google's embedding models: `generateContent`), `anthropic` (Claude: Anthropic's
    /// Messages API through `rawPredict`), or `None` for partner models RouteIQ does not call
    /// (Llama, Mistral...).
    pub fn vertex_publisher(model: &str) -> Option<&'static str> {
        let m = model
            .trim()
            .trim_start_matches("models/")
            .to_ascii_lowercase();
        if m.starts_with("gemini") || m.contains("embedding") || m.contains('*') {
            Some("google")
        } else if m.starts_with("claude") {
            Some("anthropic")
        } else {
            None
        }
    }

    pub fn is_supported(&self) -> bool {
        !matches!(self, ProviderKind::Unsupported(_))
    }

    /// The environment variable holding the API key when `api_key` is unset (LiteLLM's names).
    pub fn api_key_env(&self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
            ProviderKind::Azure => Some("AZURE_API_KEY"),
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
            ProviderKind::Gemini => Some("GEMINI_API_KEY"),
            ProviderKind::Compatible(c) => c.api_key_env(),
            // Bedrock signs with AWS credentials (the standard chain); Vertex AI with Google
            // OAuth tokens (`vertex_credentials` or the metadata server).
            ProviderKind::Bedrock | ProviderKind::VertexAi | ProviderKind::Unsupported(_) => None,
        }
    }

    /// The environment variables holding the base URL when `api_base` is unset, in order.
    pub fn api_base_env(&self) -> &'static [&'static str] {
        match self {
            ProviderKind::OpenAi => &["OPENAI_API_BASE", "OPENAI_BASE_URL"],
            ProviderKind::Azure => &["AZURE_API_BASE"],
            ProviderKind::Anthropic => &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
            ProviderKind::Gemini => &["GEMINI_API_BASE"],
            ProviderKind::Bedrock
            | ProviderKind::VertexAi
            | ProviderKind::Compatible(_)
            | ProviderKind::Unsupported(_) => &[],
        }
    }

    /// The provider's public endpoint, used when neither `api_base` nor its variables are set
    /// (`None`: the deployment must name its endpoint; Bedrock's comes from the region).
    pub fn default_api_base(&self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::Compatible(c) => c.default_api_base(),
            // Vertex AI's endpoint comes from the location.
            ProviderKind::Azure
            | ProviderKind::Bedrock
            | ProviderKind::VertexAi
            | ProviderKind::Unsupported(_) => None,
        }
    }

    /// The key variable a deployment must have when it sets no `api_key` (`routeiq check`):
    /// none for local servers and Bedrock; for the rest, only on the provider's public
    /// endpoint (`custom_endpoint`: `api_base` or a base URL variable is set), except where
    /// every endpoint is the customer's own and needs its key (Azure).
    pub fn required_key_env(&self, custom_endpoint: bool) -> Option<&'static str> {
        let key = self.api_key_env()?;
        match self {
            ProviderKind::Compatible(
                CompatibleProvider::Ollama | CompatibleProvider::HostedVllm,
            ) => None,
            ProviderKind::Azure => Some(key),
            ProviderKind::OpenAi
            | ProviderKind::Anthropic
            | ProviderKind::Gemini
            | ProviderKind::Compatible(_)
            | ProviderKind::Bedrock
            | ProviderKind::VertexAi
            | ProviderKind::Unsupported(_) => (!custom_endpoint).then_some(key),
        }
    }

    /// Every provider key and base URL variable, for `--help`.
    pub fn env_vars() -> Vec<&'static str> {
        let kinds = [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Azure,
            ProviderKind::Gemini,
        ]
        .into_iter()
        .chain(CompatibleProvider::ALL.map(ProviderKind::Compatible));
        let mut vars = Vec::new();
        for k in kinds {
            for v in k
                .api_key_env()
                .into_iter()
                .chain(k.api_base_env().iter().copied())
            {
                if !vars.contains(&v) {
                    vars.push(v);
                }
            }
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes() {
        assert_eq!(
            ProviderKind::parse("gpt-4o").unwrap(),
            (ProviderKind::OpenAi, "gpt-4o".into())
        );
        assert_eq!(
            ProviderKind::parse("anthropic/claude-3-5-haiku-latest")
                .unwrap()
                .0,
            ProviderKind::Anthropic
        );
        assert_eq!(
            ProviderKind::parse("groq/llama-3.1-8b-instant").unwrap(),
            (
                ProviderKind::Compatible(CompatibleProvider::Groq),
                "llama-3.1-8b-instant".into()
            )
        );
        // Model names may themselves contain slashes.
        assert_eq!(
            ProviderKind::parse("openrouter/meta-llama/llama-3-70b")
                .unwrap()
                .1,
            "meta-llama/llama-3-70b"
        );
        assert_eq!(
            ProviderKind::parse("vertex_ai/gemini-pro").unwrap(),
            (ProviderKind::VertexAi, "gemini-pro".into())
        );
        assert_eq!(
            ProviderKind::parse("gemini/gemini-2.5-flash").unwrap(),
            (ProviderKind::Gemini, "gemini-2.5-flash".into())
        );
        assert_eq!(
            ProviderKind::parse("cohere/command-r").unwrap().0,
            ProviderKind::Unsupported("cohere".into())
        );
        assert_eq!(ProviderKind::parse("opnai/gpt-4").unwrap_err(), "opnai");
        // custom_llm_provider names the provider; the model is sent whole.
        assert_eq!(
            ProviderKind::parse_with("meta-llama/Llama-3-8b", Some("hosted_vllm")).unwrap(),
            (
                ProviderKind::Compatible(CompatibleProvider::HostedVllm),
                "meta-llama/Llama-3-8b".into()
            )
        );
        assert_eq!(
            ProviderKind::parse_with("groq/llama3", Some("groq"))
                .unwrap()
                .1,
            "llama3"
        );
        assert_eq!(
            ProviderKind::parse_with("gpt-4o", None).unwrap().0,
            ProviderKind::OpenAi
        );
        assert_eq!(
            ProviderKind::parse("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0").unwrap(),
            (
                ProviderKind::Bedrock,
                "anthropic.claude-3-5-haiku-20241022-v1:0".into()
            )
        );
        assert_eq!(
            ProviderKind::parse("bedrock/converse/us.amazon.nova-lite-v1:0").unwrap(),
            (ProviderKind::Bedrock, "us.amazon.nova-lite-v1:0".into())
        );
    }
}
