"""Drives a running RouteIQ gateway with the official Anthropic Python SDK, unchanged.

Usage: python anthropic_sdk_check.py BASE_URL API_KEY MODEL [MODEL...]

Each MODEL is a model group (one behind an OpenAI-shaped deployment, translated; one behind an
Anthropic deployment, passed through). Exits non-zero (with the failing check named) if any SDK
call fails or returns something the SDK cannot parse. Called by the Rust e2e test
`sdk::anthropic_python_sdk_works_unchanged` against the mock upstream.
"""

import sys

import anthropic

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def check_model(client: anthropic.Anthropic, model: str) -> None:
    # messages.create, parsed into the SDK's pydantic models.
    msg = client.messages.create(
        model=model,
        max_tokens=128,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Say hello."}],
    )
    assert msg.type == "message" and msg.role == "assistant", msg
    assert msg.content[0].type == "text" and msg.content[0].text, msg
    assert msg.stop_reason == "end_turn", msg
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, msg
    print(f"[{model}] create: ok ({msg.content[0].text!r})")

    # Raw response: RouteIQ's decision headers reach SDK users.
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers.get("x-routeiq-model"), dict(raw.headers)
    assert raw.headers.get("x-routeiq-model-group") == model, dict(raw.headers)
    assert raw.parse().content, raw
    print(f"[{model}] headers: ok (x-routeiq-model={raw.headers.get('x-routeiq-model')})")

    # messages.stream: text deltas and the final message agree.
    with client.messages.stream(
        model=model, max_tokens=128, messages=[{"role": "user", "content": "Count to three."}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    text = "".join(pieces)
    assert text and text == final.content[0].text, (pieces, final)
    assert final.stop_reason == "end_turn", final
    assert final.usage.output_tokens > 0, final
    print(f"[{model}] stream: ok ({len(pieces)} deltas, {text!r})")

    # messages.stream with a tool: the tool input arrives as input_json deltas.
    question = {"role": "user", "content": "What is the weather in Paris? Use the tool."}
    with client.messages.stream(
        model=model, max_tokens=128, tools=[WEATHER], messages=[question]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use", final
    tool_use = next(b for b in final.content if b.type == "tool_use")
    assert tool_use.name == "get_weather" and isinstance(tool_use.input, dict), tool_use
    assert "city" in tool_use.input, tool_use
    assert "input_json" in kinds, kinds
    print(f"[{model}] stream tool use: ok ({tool_use.name}({tool_use.input}))")

    # The tool result turn.
    answer = client.messages.create(
        model=model,
        max_tokens=128,
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18C"}],
            },
        ],
    )
    assert answer.stop_reason == "end_turn" and answer.content[0].text, answer
    print(f"[{model}] tool result: ok")

    # count_tokens.
    count = client.messages.count_tokens(
        model=model,
        system="You are terse.",
        tools=[WEATHER],
        messages=[{"role": "user", "content": "How many tokens is this?"}],
    )
    assert count.input_tokens > 0, count
    print(f"[{model}] count_tokens: ok ({count.input_tokens})")


def main() -> int:
    base_url, api_key, *models = sys.argv[1:]
    client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0)
    for model in models:
        check_model(client, model)

    # Errors surface as the SDK's typed exceptions, with Anthropic's error types.
    try:
        client.messages.create(
            model="no-such-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        raise AssertionError("unknown model did not fail")
    except anthropic.NotFoundError as e:
        assert e.body["error"]["type"] == "not_found_error", e.body
        assert "no-such-model" in str(e), e
    bad = anthropic.Anthropic(base_url=base_url, api_key="sk-wrong", max_retries=0)
    try:
        bad.messages.create(
            model=models[0], max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        raise AssertionError("wrong key did not fail")
    except anthropic.AuthenticationError as e:
        assert e.body["error"]["type"] == "authentication_error", e.body
    # An upstream rate limit (the mock answers 429 when asked through extra_headers).
    try:
        client.messages.create(
            model=models[0],
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"extra_headers": {"x-mock-behavior": "rate-limit:2"}},
        )
        raise AssertionError("rate limit did not fail")
    except anthropic.RateLimitError as e:
        assert e.status_code == 429, e
        assert e.body["error"]["type"] == "rate_limit_error", e.body
        assert e.response.headers.get("retry-after") == "2", dict(e.response.headers)
    print("errors: ok")
    print("ALL ANTHROPIC SDK CHECKS PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
