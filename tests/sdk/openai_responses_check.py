"""Drives a running RouteIQ gateway's Responses API with the official OpenAI Python SDK.

Usage: python openai_responses_check.py BASE_URL API_KEY TRANSLATED_MODEL PASSTHROUGH_MODEL [MORE_MODELS...]

TRANSLATED_MODEL names a group the gateway translates to chat (an Anthropic deployment in the
test), PASSTHROUGH_MODEL one it passes through to an OpenAI deployment, MORE_MODELS further
groups checked the same way (a Gemini deployment in the test). Exits non-zero (with
the failing check named) if any SDK call fails or returns something the SDK cannot parse.
Called by the Rust e2e test `responses::openai_python_sdk_responses`.
"""

import json
import sys

import openai

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def check(client: openai.OpenAI, model: str) -> None:
    # Plain, parsed into the SDK's models.
    resp = client.responses.create(model=model, input="Say hello.", instructions="Be terse.")
    assert resp.status == "completed", resp
    assert resp.output_text, resp
    assert resp.usage is not None and resp.usage.total_tokens > 0, resp
    print(f"{model} create: ok ({resp.output_text!r})")

    # Decision headers reach SDK users.
    raw = client.responses.with_raw_response.create(model=model, input="hi")
    assert raw.headers.get("x-routeiq-model"), dict(raw.headers)
    print(f"{model} headers: ok (x-routeiq-model={raw.headers.get('x-routeiq-model')})")

    # Continued with previous_response_id.
    follow = client.responses.create(
        model=model, input="And again?", previous_response_id=resp.id
    )
    assert follow.previous_response_id == resp.id, follow
    assert follow.output_text, follow
    print(f"{model} previous_response_id: ok")

    # Streamed: typed events, the final Response rebuilt by the SDK.
    kinds = []
    text = []
    with client.responses.stream(model=model, input="Count to three.") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text.append(event.delta)
        final = stream.get_final_response()
    assert kinds[0] == "response.created", kinds
    assert kinds[-1] == "response.completed", kinds
    assert "".join(text) == final.output_text, (text, final.output_text)
    assert final.usage is not None and final.usage.output_tokens > 0, final
    print(f"{model} stream: ok ({len(kinds)} events, {final.output_text!r})")

    # create(stream=True) yields the same events; the streamed answer is stored too.
    events = list(client.responses.create(model=model, input="Hello?", stream=True))
    done = events[-1]
    assert done.type == "response.completed", [e.type for e in events]
    stored = client.responses.retrieve(done.response.id)
    assert stored.output_text == done.response.output_text, stored
    print(f"{model} create(stream=True) + retrieve: ok")

    # Function calling: the call, then its output in a second turn.
    first = client.responses.create(
        model=model, input="Please use the tool for Paris.", tools=[WEATHER_TOOL]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls, first.output
    call = calls[0]
    assert call.name == "get_weather", call
    args = json.loads(call.arguments)
    assert isinstance(args.get("city"), str), args
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert second.output_text, second
    print(f"{model} function calling: ok ({call.name}({call.arguments}))")

    # Streamed function call.
    with client.responses.stream(
        model=model, input="Please use the tool for Oslo.", tools=[WEATHER_TOOL]
    ) as stream:
        final = stream.get_final_response()
    assert any(item.type == "function_call" for item in final.output), final.output
    print(f"{model} streamed function call: ok")

    # Retrieve, delete, then it is gone.
    got = client.responses.retrieve(resp.id)
    assert got.id == resp.id and got.output_text == resp.output_text, got
    client.responses.delete(resp.id)
    try:
        client.responses.retrieve(resp.id)
        raise AssertionError("a deleted response was retrieved")
    except openai.NotFoundError:
        pass
    try:
        client.responses.create(model=model, input="x", previous_response_id=resp.id)
        raise AssertionError("a deleted previous_response_id was accepted")
    except openai.BadRequestError as e:
        assert e.code == "previous_response_not_found", e
    print(f"{model} retrieve/delete: ok")


def main() -> int:
    base_url, api_key, translated, passthrough = sys.argv[1:5]
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)
    for model in (translated, passthrough, *sys.argv[5:]):
        check(client, model)
    # store=False: answered, not retrievable.
    unstored = client.responses.create(model=translated, input="hi", store=False)
    try:
        client.responses.retrieve(unstored.id)
        raise AssertionError("store=False was retrievable")
    except openai.NotFoundError:
        pass
    print("store=False: ok")
    # Errors as the SDK's typed exceptions.
    try:
        client.responses.create(model="no-such-model", input="hi")
        raise AssertionError("unknown model did not fail")
    except openai.NotFoundError as e:
        assert "no-such-model" in str(e), e
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-wrong", max_retries=0)
    try:
        bad.responses.create(model=translated, input="hi")
        raise AssertionError("wrong key did not fail")
    except openai.AuthenticationError:
        pass
    print("errors: ok")
    print("ALL RESPONSES SDK CHECKS PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
