"""Drives a burnrate gateway with the official OpenAI and Anthropic SDKs.

Each case tags its call with X-Attribution-Feature = the case name and prints one JSON line
with what the SDK returned, so the Rust test can compare it with what the ledger recorded.
Environment: BURNRATE_URL (gateway base, no /v1), BURNRATE_KEY (a virtual key).
"""

import json
import os
import sys

import anthropic
import openai

BASE = os.environ["BURNRATE_URL"]
KEY = os.environ["BURNRATE_KEY"]
TAGS = {"X-Attribution-User-ID": "sdk-user"}

oa = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)
an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)

MESSAGES = [
    {"role": "system", "content": "You answer billing questions."},
    {"role": "user", "content": "Why did my invoice double this month?"},
]
TOOLS = [{
    "type": "function",
    "function": {
        "name": "lookup_invoice",
        "description": "Find an invoice",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
}]


def headers(case):
    return dict(TAGS, **{"X-Attribution-Feature": case})


def emit(case, **fields):
    print(json.dumps(dict(case=case, **fields)), flush=True)


def chat_plain():
    r = oa.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                   extra_headers=headers("chat_plain"))
    u = r.usage
    emit("chat_plain", input=u.prompt_tokens, output=u.completion_tokens,
         cached=(u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0),
         text=r.choices[0].message.content)


def chat_tools():
    r = oa.chat.completions.create(model="gpt-4.1", messages=MESSAGES, tools=TOOLS,
                                   extra_headers=headers("chat_tools"))
    u = r.usage
    calls = r.choices[0].message.tool_calls or []
    emit("chat_tools", input=u.prompt_tokens, output=u.completion_tokens,
         tool_calls=len(calls), tool=calls[0].function.name if calls else None)


def chat_stream_no_usage():
    stream = oa.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                        extra_headers=headers("chat_stream_no_usage"))
    text, usage_seen, chunks = "", False, 0
    for chunk in stream:
        chunks += 1
        usage_seen = usage_seen or getattr(chunk, "usage", None) is not None
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    emit("chat_stream_no_usage", usage_seen=usage_seen, chunks=chunks, text=text)


def chat_stream_usage():
    stream = oa.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                        stream_options={"include_usage": True},
                                        extra_headers=headers("chat_stream_usage"))
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
    emit("chat_stream_usage", input=usage.prompt_tokens, output=usage.completion_tokens)


def reasoning():
    r = oa.chat.completions.create(model="o3-mini", messages=MESSAGES,
                                   extra_headers=headers("reasoning"))
    u = r.usage
    emit("reasoning", input=u.prompt_tokens, output=u.completion_tokens,
         reasoning=u.completion_tokens_details.reasoning_tokens)


def responses_plain():
    r = oa.responses.create(model="gpt-4.1", input="Summarise my last invoice.",
                            instructions="Be brief.", extra_headers=headers("responses_plain"))
    u = r.usage
    emit("responses_plain", input=u.input_tokens, output=u.output_tokens,
         cached=u.input_tokens_details.cached_tokens, text=r.output_text)


def responses_stream():
    usage = None
    with oa.responses.stream(model="gpt-4.1", input="Summarise my last invoice.",
                             extra_headers=headers("responses_stream")) as stream:
        for _ in stream:
            pass
        usage = stream.get_final_response().usage
    emit("responses_stream", input=usage.input_tokens, output=usage.output_tokens)


def embeddings():
    r = oa.embeddings.create(model="text-embedding-3-small", input="invoice doubled",
                             extra_headers=headers("embeddings"))
    emit("embeddings", input=r.usage.prompt_tokens, output=0, dims=len(r.data[0].embedding))


def messages_plain():
    r = an.messages.create(model="claude-sonnet-4-5", max_tokens=200,
                           system=[{"type": "text", "text": "You answer billing questions.",
                                    "cache_control": {"type": "ephemeral"}}],
                           messages=[{"role": "user", "content": "Why did my invoice double?"}],
                           extra_headers=headers("messages_plain"))
    u = r.usage
    emit("messages_plain", input=u.input_tokens + (u.cache_read_input_tokens or 0)
         + (u.cache_creation_input_tokens or 0), output=u.output_tokens,
         cached=u.cache_read_input_tokens or 0, cache_write=u.cache_creation_input_tokens or 0,
         text=r.content[0].text)


def messages_stream():
    with an.messages.stream(model="claude-sonnet-4-5", max_tokens=200,
                            messages=[{"role": "user", "content": "Why did my invoice double?"}],
                            extra_headers=headers("messages_stream")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    u = final.usage
    emit("messages_stream", input=u.input_tokens + (u.cache_read_input_tokens or 0)
         + (u.cache_creation_input_tokens or 0), output=u.output_tokens, text=text)


def refused():
    try:
        oa.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                   extra_headers={"X-Attribution-Feature": "refused"})
    except openai.BadRequestError as error:
        emit("refused", status=error.status_code, message=str(error))
        return
    emit("refused", status=200)


def bad_key():
    client = anthropic.Anthropic(base_url=BASE, api_key="br-not-a-key", max_retries=0)
    try:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5,
                               messages=[{"role": "user", "content": "hi"}])
    except anthropic.AuthenticationError as error:
        emit("bad_key", status=error.status_code, type=error.body["error"]["type"])
        return
    emit("bad_key", status=200)


CASES = [chat_plain, chat_tools, chat_stream_no_usage, chat_stream_usage, reasoning,
         responses_plain, responses_stream, embeddings, messages_plain, messages_stream,
         refused, bad_key]

if __name__ == "__main__":
    for case in CASES:
        try:
            case()
        except Exception as error:  # report, keep going: the Rust test names the failure
            emit(case.__name__, exception=f"{type(error).__name__}: {error}")
    sys.exit(0)
