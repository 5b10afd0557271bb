//! OpenAI Responses API: `POST /v1/responses`, JSON and SSE.

use axum::response::Response;
use serde_json::{Map, Value};

use crate::faults::bad_request;
use crate::json::{self, Obj};
use crate::openai::{prompt_usage, service_tier};
use crate::stream::{self, Sse};
use crate::text;
use crate::usage::{self, ToolCall};
use crate::{Call, now};

/// What a broken Responses stream shows in its middle: an event whose JSON is cut short.
const BROKEN_RESPONSES: &[u8] =
    b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"seque\n\n";

/// The answer's output items, in order, and the ids they carry.
struct Items {
    reasoning_id: Option<String>,
    answer_id: String,
    call_id: String,
    tool: Option<ToolCall>,
    text: String,
    truncated: bool,
}

impl Items {
    fn reasoning(&self) -> Option<Vec<u8>> {
        self.reasoning_id.as_deref().map(|id| {
            Obj::new()
                .s("id", id)
                .s("type", "reasoning")
                .raw("summary", b"[]")
                .done()
        })
    }

    /// The answer item; `done: false` is its empty in-progress form.
    fn answer(&self, done: bool) -> Vec<u8> {
        match &self.tool {
            Some(tool) => Obj::new()
                .s("id", &self.answer_id)
                .s("type", "function_call")
                .s("status", if done { "completed" } else { "in_progress" })
                .s("arguments", if done { &tool.arguments } else { "" })
                .s("call_id", &self.call_id)
                .s("name", &tool.name)
                .done(),
            None => {
                let status = match (done, self.truncated) {
                    (false, _) => "in_progress",
                    (true, true) => "incomplete",
                    (true, false) => "completed",
                };
                let content = if done {
                    json::array(&[self.part(true)])
                } else {
                    b"[]".to_vec()
                };
                Obj::new()
                    .s("id", &self.answer_id)
                    .s("type", "message")
                    .s("status", status)
                    .raw("content", &content)
                    .s("role", "assistant")
                    .done()
            }
        }
    }

    fn part(&self, done: bool) -> Vec<u8> {
        Obj::new()
            .s("type", "output_text")
            .raw("annotations", b"[]")
            .raw("logprobs", b"[]")
            .s("text", if done { &self.text } else { "" })
            .done()
    }

    fn all(&self) -> Vec<u8> {
        let mut items: Vec<Vec<u8>> = self.reasoning().into_iter().collect();
        items.push(self.answer(true));
        json::array(&items)
    }
}

/// `POST /v1/responses`.
pub(crate) fn create(call: &Call, req: &Map<String, Value>) -> Response {
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return bad_request(
            call.dialect,
            "Missing required parameter: 'model'.",
            call.ids,
        );
    };
    let bytes = usage::fields_bytes(req, &["input", "instructions", "tools", "text"]);
    let (prompt, cached, _write) = prompt_usage(call, req, usage::tokens(bytes).max(1));
    let effort = req
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str);
    let reasoning_model = usage::is_reasoning_model(model);
    let reasoning = if reasoning_model {
        usage::reasoning_for_effort(effort)
    } else {
        0
    };
    let tool = responses_tool(call, req);
    let cap = req.get("max_output_tokens").and_then(Value::as_u64);
    let out = usage::plan_output(&call.controls, tool.as_ref(), reasoning, cap);
    let items = Items {
        reasoning_id: (out.reasoning > 0).then(|| call.ids.item("rs_", 0)),
        answer_id: call
            .ids
            .item(if tool.is_some() { "fc_" } else { "msg_" }, 1),
        call_id: call.ids.call(),
        text: if tool.is_some() {
            String::new()
        } else {
            text::reply(out.visible)
        },
        tool,
        truncated: out.truncated,
    };
    let usage = Obj::new()
        .n("input_tokens", prompt)
        .o(
            "input_tokens_details",
            Obj::new().n("cached_tokens", cached),
        )
        .n("output_tokens", out.total)
        .o(
            "output_tokens_details",
            Obj::new().n("reasoning_tokens", out.reasoning),
        )
        .n("total_tokens", prompt + out.total)
        .done();
    let envelope = Envelope {
        req,
        id: call.ids.response(),
        created_at: now(),
        model,
        effort: effort.or(reasoning_model.then_some("medium")),
    };
    let final_status = if out.truncated {
        "incomplete"
    } else {
        "completed"
    };
    let finished = envelope.render(final_status, &items.all(), Some(&usage));
    if req.get("stream").and_then(Value::as_bool) != Some(true) {
        return stream::json(call, finished);
    }

    let mut sse = Sse::with_capacity(out.visible as usize + 12);
    let mut seq = 0;
    let mut emit = |sse: &mut Sse, name: &str, fill: &dyn Fn(Obj) -> Obj| {
        let event = fill(Obj::new().s("type", name).n("sequence_number", seq)).done();
        sse.event(name, &event, 0);
        seq += 1;
    };
    let pending = envelope.render("in_progress", b"[]", None);
    emit(&mut sse, "response.created", &|o| {
        o.raw("response", &pending)
    });
    emit(&mut sse, "response.in_progress", &|o| {
        o.raw("response", &pending)
    });
    let mut index = 0;
    if let Some(item) = items.reasoning() {
        emit(&mut sse, "response.output_item.added", &|o| {
            o.n("output_index", 0).raw("item", &item)
        });
        emit(&mut sse, "response.output_item.done", &|o| {
            o.n("output_index", 0).raw("item", &item)
        });
        index = 1;
    }
    let id = items.answer_id.as_str();
    emit(&mut sse, "response.output_item.added", &|o| {
        o.n("output_index", index).raw("item", &items.answer(false))
    });
    match &items.tool {
        Some(tool) => {
            for (i, piece) in text::pieces(&tool.arguments, 4).into_iter().enumerate() {
                emit(&mut sse, "response.function_call_arguments.delta", &|o| {
                    o.s("item_id", id)
                        .n("output_index", index)
                        .s("delta", piece)
                        .s("obfuscation", text::obfuscation(i as u64))
                });
            }
            emit(&mut sse, "response.function_call_arguments.done", &|o| {
                o.s("item_id", id)
                    .n("output_index", index)
                    .s("arguments", &tool.arguments)
            });
        }
        None => {
            let in_item = |o: Obj| {
                o.s("item_id", id)
                    .n("output_index", index)
                    .n("content_index", 0)
            };
            emit(&mut sse, "response.content_part.added", &|o| {
                in_item(o).raw("part", &items.part(false))
            });
            for i in 0..out.visible {
                emit(&mut sse, "response.output_text.delta", &|o| {
                    in_item(o)
                        .s("delta", text::word(i))
                        .raw("logprobs", b"[]")
                        .s("obfuscation", text::obfuscation(i))
                });
            }
            emit(&mut sse, "response.output_text.done", &|o| {
                in_item(o).s("text", &items.text).raw("logprobs", b"[]")
            });
            emit(&mut sse, "response.content_part.done", &|o| {
                in_item(o).raw("part", &items.part(true))
            });
        }
    }
    emit(&mut sse, "response.output_item.done", &|o| {
        o.n("output_index", index).raw("item", &items.answer(true))
    });
    let last = if out.truncated {
        "response.incomplete"
    } else {
        "response.completed"
    };
    emit(&mut sse, last, &|o| o.raw("response", &finished));
    sse.into_response(call, BROKEN_RESPONSES)
}

/// The response object around the output: mostly the request's parameters echoed back.
struct Envelope<'a> {
    req: &'a Map<String, Value>,
    id: String,
    created_at: u64,
    model: &'a str,
    effort: Option<&'a str>,
}

impl Envelope<'_> {
    fn render(&self, status: &str, output: &[u8], usage: Option<&[u8]>) -> Vec<u8> {
        let echo = |o: Obj, key: &str, default: &[u8]| match self.req.get(key) {
            Some(v) if !v.is_null() => o.v(key, Some(v)),
            _ => o.raw(key, default),
        };
        let summary = self.req.get("reasoning").and_then(|r| r.get("summary"));
        let incomplete = if status == "incomplete" {
            br#"{"reason":"max_output_tokens"}"#.as_slice()
        } else {
            b"null".as_slice()
        };
        let mut o = Obj::with_capacity(1024 + output.len())
            .s("id", &self.id)
            .s("object", "response")
            .n("created_at", self.created_at)
            .s("status", status)
            .b("background", false)
            .raw("billing", br#"{"payer":"developer"}"#);
        o = if status == "in_progress" {
            o.null("completed_at")
        } else {
            o.n("completed_at", self.created_at)
        };
        o = o
            .null("error")
            .raw("frequency_penalty", b"0.0")
            .raw("incomplete_details", incomplete);
        o = echo(o, "instructions", b"null");
        o = echo(o, "max_output_tokens", b"null");
        o = echo(o, "max_tool_calls", b"null");
        o = o.s("model", self.model).raw("output", output);
        o = echo(o, "parallel_tool_calls", b"true");
        o = o.raw("presence_penalty", b"0.0");
        o = echo(o, "previous_response_id", b"null");
        o = echo(o, "prompt_cache_key", b"null");
        o = echo(o, "prompt_cache_retention", b"null");
        o = o.o(
            "reasoning",
            Obj::new()
                .opt_s("effort", self.effort)
                .v("summary", summary.filter(|s| !s.is_null())),
        );
        o = echo(o, "safety_identifier", b"null");
        o = o.s("service_tier", service_tier(self.req));
        o = echo(o, "store", b"true");
        o = echo(o, "temperature", b"1.0");
        o = echo(
            o,
            "text",
            br#"{"format":{"type":"text"},"verbosity":"medium"}"#,
        );
        o = echo(o, "tool_choice", b"\"auto\"");
        o = echo(o, "tools", b"[]");
        o = echo(o, "top_logprobs", b"0");
        o = echo(o, "top_p", b"1.0");
        o = echo(o, "truncation", b"\"disabled\"");
        o = o.raw("usage", usage.unwrap_or(b"null"));
        o = echo(o, "user", b"null");
        o = echo(o, "metadata", b"{}");
        o.done()
    }
}

/// The first function tool (or the one `tool_choice` names), when the call should use it.
fn responses_tool(call: &Call, req: &Map<String, Value>) -> Option<ToolCall> {
    let tools = req.get("tools").and_then(Value::as_array)?;
    let choice = req.get("tool_choice");
    let choice_none = choice.and_then(Value::as_str) == Some("none");
    let after_result = match req.get("input") {
        Some(Value::Array(items)) => {
            items
                .last()
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                == Some("function_call_output")
        }
        _ => false,
    };
    if !usage::wants_tool(&call.controls, choice_none, after_result) {
        return None;
    }
    let forced = choice
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("function"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    let tool = tools.iter().find(|t| {
        t.get("type").and_then(Value::as_str) == Some("function")
            && forced.is_none_or(|name| t.get("name").and_then(Value::as_str) == Some(name))
    })?;
    let name = tool.get("name").and_then(Value::as_str)?;
    Some(ToolCall::new(name, tool.get("parameters")))
}
