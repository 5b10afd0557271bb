//! One agent's conversation in the OpenAI chat or the Anthropic messages dialect: the request
//! bodies an SDK would send, and the tool call read back from a reply.

use serde_json::{Value, json};

/// Which API a conversation speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

impl Dialect {
    /// The gateway path the dialect's SDK calls.
    pub fn path(self) -> &'static str {
        match self {
            Dialect::OpenAi => "/v1/chat/completions",
            Dialect::Anthropic => "/v1/messages",
        }
    }
}

/// A tool the agent offers the model.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Its name.
    pub name: &'static str,
    /// What it does, as the model reads it.
    pub description: &'static str,
}

/// A tool call the model asked for.
#[derive(Debug, Clone)]
pub struct ToolUse {
    /// The call's id, echoed in the result.
    pub id: String,
    /// The tool.
    pub name: String,
}

/// One agent's running conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    dialect: Dialect,
    system: String,
    tools: Vec<Tool>,
    messages: Vec<Value>,
    cache_key: Option<&'static str>,
}

impl Conversation {
    /// A conversation with a system prompt and tools (the first tool is the one the mock
    /// provider calls).
    pub fn new(dialect: Dialect, system: String, tools: Vec<Tool>) -> Conversation {
        Conversation {
            dialect,
            system,
            tools,
            messages: Vec::new(),
            cache_key: None,
        }
    }

    /// Names an OpenAI `prompt_cache_key`, as an app that routes its calls to a warm prompt
    /// cache does (the mock provider then reports cached tokens).
    pub fn with_cache_key(mut self, key: &'static str) -> Conversation {
        self.cache_key = Some(key);
        self
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Puts `tool` first among the tools offered, so the next tool call is to it.
    pub fn prefer(&mut self, tool: &str) {
        if let Some(index) = self.tools.iter().position(|t| t.name == tool) {
            let preferred = self.tools.remove(index);
            self.tools.insert(0, preferred);
        }
    }

    /// Adds a user turn.
    pub fn user(&mut self, text: &str) {
        self.messages.push(json!({"role": "user", "content": text}));
    }

    /// Adds the assistant's tool call and the tool's result.
    pub fn tool_round(&mut self, call: &ToolUse, result: &str) {
        match self.dialect {
            Dialect::OpenAi => {
                self.messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": call.id, "type": "function",
                     "function": {"name": call.name, "arguments": "{}"}}]}));
                self.messages
                    .push(json!({"role": "tool", "tool_call_id": call.id, "content": result}));
            }
            Dialect::Anthropic => {
                self.messages.push(json!({"role": "assistant", "content": [
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}]}));
                self.messages.push(json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": result}]}));
            }
        }
    }

    /// Adds the assistant's text answer.
    pub fn assistant(&mut self, text: &str) {
        self.messages
            .push(json!({"role": "assistant", "content": text}));
    }

    /// The request body for `model`; an Anthropic system prompt is marked for caching, as
    /// agent frameworks do.
    pub fn body(&self, model: &str, max_tokens: u32, stream: bool) -> Value {
        match self.dialect {
            Dialect::OpenAi => {
                let mut messages = vec![json!({"role": "system", "content": self.system})];
                messages.extend(self.messages.iter().cloned());
                let mut body = json!({
                    "model": model, "messages": messages, "max_tokens": max_tokens,
                });
                if let Some(key) = self.cache_key {
                    body["prompt_cache_key"] = json!(key);
                }
                if !self.tools.is_empty() {
                    body["tools"] = self
                        .tools
                        .iter()
                        .map(|t| {
                            json!({"type": "function", "function": {
                            "name": t.name, "description": t.description,
                            "parameters": {"type": "object", "properties": {}}}})
                        })
                        .collect();
                }
                if stream {
                    body["stream"] = json!(true);
                    body["stream_options"] = json!({"include_usage": true});
                }
                body
            }
            Dialect::Anthropic => {
                let mut body = json!({
                    "model": model, "max_tokens": max_tokens, "messages": self.messages,
                    "system": [{"type": "text", "text": self.system,
                                "cache_control": {"type": "ephemeral"}}],
                });
                if !self.tools.is_empty() {
                    body["tools"] = self
                        .tools
                        .iter()
                        .map(|t| {
                            json!({"name": t.name, "description": t.description,
                                        "input_schema": {"type": "object", "properties": {}}})
                        })
                        .collect();
                }
                if stream {
                    body["stream"] = json!(true);
                }
                body
            }
        }
    }

    /// The tool call in a (non-streamed) reply, if the model asked for one.
    pub fn tool_use(&self, reply: &Value) -> Option<ToolUse> {
        let (id, name) = match self.dialect {
            Dialect::OpenAi => {
                let call = reply.pointer("/choices/0/message/tool_calls/0")?;
                (call.get("id")?, call.pointer("/function/name")?)
            }
            Dialect::Anthropic => {
                let block = reply
                    .get("content")?
                    .as_array()?
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))?;
                (block.get("id")?, block.get("name")?)
            }
        };
        Some(ToolUse {
            id: id.as_str()?.to_string(),
            name: name.as_str()?.to_string(),
        })
    }
}

/// Filler text of about `bytes` bytes: a system prompt, a document, a log excerpt. The mock
/// provider counts a token per four bytes, so this sets a prompt's size.
pub fn text(kind: &str, bytes: usize) -> String {
    const WORDS: [&str; 16] = [
        "customer", "order", "policy", "refund", "shipping", "account", "invoice", "support",
        "escalate", "warranty", "product", "delivery", "status", "priority", "review", "note",
    ];
    let mut out = format!("{kind}: ");
    let mut i = 0usize;
    while out.len() < bytes {
        out.push_str(WORDS[(i * 7 + i / 16) % WORDS.len()]);
        out.push(' ');
        i += 1;
    }
    out
}
