//! What the gateway stores of a turn so a later request can continue it with
//! `previous_response_id`, and how a stored history rejoins a request.
//!
//! - [`input_items`]: a request's `input` as items (a string is one user message).
//! - [`items_for_next_turn`]: the conversation after a turn — the turn's history, its input
//!   items (references resolved) and the Response's output items; `instructions` are not kept
//!   (each request carries its own, as OpenAI does). [`Item`] is serde, so the list goes into
//!   the state store as JSON and comes back as the next turn's `history` for
//!   [`to_chat`](super::to_chat::to_chat).
//! - [`inline_history`]: a request with that history moved into `input` and
//!   `previous_response_id` removed, for an OpenAI deployment that never saw the stored turn
//!   (pass-through of a conversation the gateway holds).

use serde_json::Value;

use super::types::{Input, Item, Response, ResponsesRequest};

/// The request's `input` as items: a string becomes one user message item; no input, none.
pub fn input_items(req: &ResponsesRequest) -> Vec<Item> {
    match &req.input {
        None => Vec::new(),
        Some(Input::Text(s)) => vec![Item::user_text(s.clone())],
        Some(Input::Items(items)) => items.clone(),
    }
}

/// The items to store for the turn `req` → `response`, for the next turn's `history`:
/// `history` (this turn's, from its own `previous_response_id`; `&[]` for a first turn), then
/// the input items (each `item_reference` replaced by the item it names, when found), then the
/// output items.
pub fn items_for_next_turn(
    history: &[Item],
    req: &ResponsesRequest,
    response: &Response,
) -> Vec<Item> {
    let input = input_items(req);
    let mut items = Vec::with_capacity(history.len() + input.len() + response.output.len());
    items.extend_from_slice(history);
    for item in &input {
        let resolved = match item {
            Item::ItemReference(r) => history
                .iter()
                .chain(&input)
                .find(|i| !matches!(i, Item::ItemReference(_)) && i.id() == Some(r.id.as_str()))
                .unwrap_or(item),
            other => other,
        };
        items.push(resolved.clone());
    }
    items.extend(response.output.iter().cloned());
    items
}

/// `req` with `history` placed before its input and without `previous_response_id`, for a
/// deployment that does not hold the earlier turns. Items of the history lose their `id`
/// (OpenAI would look stored items up by id) and reasoning items without
/// `encrypted_content` are dropped (OpenAI cannot use a summary written elsewhere).
pub fn inline_history(req: &ResponsesRequest, history: &[Item]) -> ResponsesRequest {
    let mut items: Vec<Item> = history
        .iter()
        .filter(|i| !matches!(i, Item::Reasoning(r) if r.encrypted_content.is_none()))
        .map(without_id)
        .collect();
    items.extend(input_items(req));
    ResponsesRequest {
        input: Some(Input::Items(items)),
        previous_response_id: None,
        ..req.clone()
    }
}

fn without_id(item: &Item) -> Item {
    let mut item = item.clone();
    match &mut item {
        Item::Message(m) => m.id = None,
        Item::FunctionCall(c) => c.id = None,
        Item::FunctionCallOutput(o) => o.id = None,
        Item::CustomToolCall(c) => c.id = None,
        Item::CustomToolCallOutput(o) => o.id = None,
        Item::Reasoning(r) => r.id = None,
        Item::ItemReference(_) => {}
        Item::Other(v) => {
            if let Value::Object(o) = v {
                o.remove("id");
            }
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::from_chat::{ResponseContext, from_chat, parse_chat_response};
    use crate::responses::to_chat::to_chat;
    use serde_json::json;

    fn request(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn answer(req: &ResponsesRequest, id: &str, message: Value) -> Response {
        let body = json!({"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
        let (resp, d) = parse_chat_response(body.to_string().as_bytes()).unwrap();
        from_chat(&resp, &d, &ResponseContext::from_request(req, id, 1))
    }

    /// Three turns chained by previous_response_id: each turn's stored items are the whole
    /// conversation so far, and the third turn's chat request holds all of it, with only the
    /// third turn's instructions.
    #[test]
    fn chained_turns_carry_the_whole_conversation() {
        let r1 = request(
            json!({"model": "m", "instructions": "one", "input": "What is in /tmp?", "store": true}),
        );
        let a1 = answer(
            &r1,
            "resp_1",
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{\"path\":\"/tmp\"}"}}]}),
        );
        let s1 = items_for_next_turn(&[], &r1, &a1);
        assert_eq!(
            s1.iter().map(Item::kind).collect::<Vec<_>>(),
            ["message", "function_call"]
        );

        let r2 = request(
            json!({"model": "m", "instructions": "two", "previous_response_id": "resp_1",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "a.txt"}]}),
        );
        let a2 = answer(
            &r2,
            "resp_2",
            json!({"role": "assistant", "content": "It holds a.txt."}),
        );
        let s2 = items_for_next_turn(&s1, &r2, &a2);
        assert_eq!(s2.len(), 4);

        // Through the store as JSON.
        let stored = serde_json::to_string(&s2).unwrap();
        let history: Vec<Item> = serde_json::from_str(&stored).unwrap();
        assert_eq!(history, s2);

        let r3 = request(
            json!({"model": "m", "instructions": "three", "previous_response_id": "resp_2",
            "input": [{"type": "item_reference", "id": "msg_2"}, {"role": "user", "content": "Thanks"}]}),
        );
        let t = to_chat(&r3, &history).unwrap();
        let w = serde_json::to_value(&t.request).unwrap();
        assert_eq!(
            w["messages"],
            json!([
                {"role": "system", "content": "three"},
                {"role": "user", "content": "What is in /tmp?"},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{\"path\":\"/tmp\"}"}}]},
                {"role": "tool", "content": "a.txt", "tool_call_id": "call_1"},
                {"role": "assistant", "content": "It holds a.txt."},
                {"role": "assistant", "content": "It holds a.txt."},
                {"role": "user", "content": "Thanks"}
            ])
        );
        // The stored list resolves the reference, so the chain stays self-contained.
        let a3 = answer(
            &r3,
            "resp_3",
            json!({"role": "assistant", "content": "Welcome."}),
        );
        let s3 = items_for_next_turn(&history, &r3, &a3);
        assert!(matches!(&s3[4], Item::Message(m) if m.id.as_deref() == Some("msg_2")));
        assert!(!s3.iter().any(|i| matches!(i, Item::ItemReference(_))));
    }

    #[test]
    fn inline_history_for_a_deployment_without_the_turns() {
        let history: Vec<Item> = serde_json::from_value(json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "reasoning", "id": "rs_x", "summary": [{"type": "summary_text", "text": "think"}]},
            {"type": "reasoning", "id": "rs_y", "summary": [], "encrypted_content": "gAAA"},
            {"type": "message", "id": "msg_x", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "hello", "annotations": []}]}
        ]))
        .unwrap();
        let req = request(
            json!({"model": "gpt-5", "previous_response_id": "resp_x", "input": "bye", "store": false}),
        );
        let inlined = inline_history(&req, &history);
        assert!(inlined.previous_response_id.is_none());
        let v = serde_json::to_value(&inlined).unwrap();
        assert_eq!(
            v["input"],
            json!([
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
                {"type": "message", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "hello", "annotations": []}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "bye"}]}
            ])
        );
        assert_eq!(v["store"], false);
    }
}
