"""Drives a running RouteIQ gateway with the official OpenAI Python SDK, unchanged.

Usage: python openai_sdk_check.py BASE_URL API_KEY CHAT_MODEL EMBEDDING_MODEL

Exits non-zero (with the failing check named) if any SDK call fails or returns something
the SDK cannot parse. Called by the Rust e2e test `sdk::openai_python_sdk_works_unchanged`.
"""

import sys

import openai


def main() -> int:
    base_url, api_key, chat_model, embedding_model = sys.argv[1:5]
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)

    # Non-streaming chat, parsed into the SDK's pydantic models.
    chat = client.chat.completions.create(
        model=chat_model,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello."},
        ],
    )
    assert chat.choices[0].message.role == "assistant", chat
    assert chat.choices[0].message.content, chat
    assert chat.usage is not None and chat.usage.total_tokens > 0, chat
    print(f"chat: ok ({chat.choices[0].message.content!r})")

    # Raw response: RouteIQ's decision headers reach SDK users.
    raw = client.chat.completions.with_raw_response.create(
        model=chat_model, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers.get("x-routeiq-strategy"), dict(raw.headers)
    assert raw.headers.get("x-routeiq-model"), dict(raw.headers)
    print(f"headers: ok (x-routeiq-model={raw.headers.get('x-routeiq-model')})")

    # Streaming chat, with usage in the final chunk.
    stream = client.chat.completions.create(
        model=chat_model,
        messages=[{"role": "user", "content": "Count to three."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    text = "".join(pieces)
    assert text, "streamed no text"
    assert finish == "stop", finish
    assert usage is not None and usage.total_tokens > 0, usage
    print(f"stream: ok ({len(pieces)} chunks, {text!r})")

    # Legacy completions.
    comp = client.completions.create(model=chat_model, prompt="Say hello.")
    assert comp.choices[0].text, comp
    print("completions: ok")

    # Embeddings, single and batch.
    emb = client.embeddings.create(model=embedding_model, input="hello world")
    assert len(emb.data) == 1 and len(emb.data[0].embedding) > 0, emb
    batch = client.embeddings.create(model=embedding_model, input=["a", "b", "c"])
    assert [d.index for d in batch.data] == [0, 1, 2], batch
    print(f"embeddings: ok (dim {len(emb.data[0].embedding)})")

    # Models.
    ids = [m.id for m in client.models.list()]
    assert chat_model in ids and embedding_model in ids, ids
    print(f"models: ok ({ids})")

    # Errors surface as the SDK's typed exceptions.
    try:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
        raise AssertionError("unknown model did not fail")
    except openai.NotFoundError as e:
        assert "no-such-model" in str(e), e
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-wrong", max_retries=0)
    try:
        bad.models.list()
        raise AssertionError("wrong key did not fail")
    except openai.AuthenticationError:
        pass
    print("errors: ok")
    print("ALL SDK CHECKS PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
