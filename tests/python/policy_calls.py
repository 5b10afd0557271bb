"""Drives burnrate's enforcement with the official OpenAI and Anthropic SDKs.

`python policy_calls.py SCENARIO` runs one scenario and prints one JSON line per call: what
the SDK returned (model, id, the X-Burnrate-Degraded header) or the exception it raised
(its class, HTTP status and error body). The Rust test (crates/burnrate/tests/policy.rs)
sets the gateway up and checks these lines and the ledger.

Environment: BURNRATE_URL (gateway base, no /v1) and the virtual keys LADDER_KEY,
RUNAWAY_KEY and RUNS_KEY (each bound to its own tenant).
"""

import json
import os
import sys

import anthropic
import openai

BASE = os.environ["BURNRATE_URL"]


def clients(key):
    # Default retries on purpose: refusals that no retry can fix carry `x-should-retry:
    # false`, so the SDKs must give up at once (the ledger then holds one refusal).
    return (openai.OpenAI(base_url=BASE + "/v1", api_key=key),
            anthropic.Anthropic(base_url=BASE, api_key=key))


def emit(step, **fields):
    print(json.dumps(dict(step=step, **fields)), flush=True)


def headers(feature, output_tokens, **extra):
    found = {"X-Attribution-User-ID": "policy-user", "X-Attribution-Feature": feature,
             "x-mock-output-tokens": str(output_tokens)}
    found.update(extra)
    return found


def ask(text):
    return [{"role": "user", "content": text}]


def chat(client, step, model, text, output_tokens, max_tokens, **extra):
    """One chat call; prints what came back or what was raised."""
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=ask(text), max_tokens=max_tokens,
            extra_headers=headers(step, output_tokens, **extra.pop("headers", {})), **extra)
        reply = raw.parse()
        calls = reply.choices[0].message.tool_calls or []
        emit(step, ok=True, model=reply.model, id=reply.id,
             degraded=raw.headers.get("x-burnrate-degraded"),
             ratelimit_limit=raw.headers.get("x-ratelimit-limit"),
             tool_calls=len(calls))
    except openai.APIStatusError as error:
        emit(step, ok=False, exception=type(error).__name__, status=error.status_code,
             body=error.body, should_retry=error.response.headers.get("x-should-retry"),
             retry_after=error.response.headers.get("retry-after"))


def ladder():
    oa, an = clients(os.environ["LADDER_KEY"])
    # Cap $0.10; fallback from 50 %, cache from 80 %. 5,000 gpt-4o output tokens: $0.05.
    chat(oa, "first", "gpt-4o", "question one", 5000, 6000)
    # 50 % spent: gpt-4o goes to gpt-4o-mini.
    chat(oa, "fallback", "gpt-4o", "question two", 1000, 2000)
    # gpt-4.1 has no fallback: 4,000 output tokens at $8/M take spend past 80 %.
    chat(oa, "fill", "gpt-4.1", "question three", 4000, 4000)
    # The first request again, word for word: answered from the cache.
    chat(oa, "cached", "gpt-4o", "question one", 5000, 6000)
    # Something new that cannot fit: the quota error, in each dialect.
    chat(oa, "quota_openai", "gpt-4.1", "question four", 4000, 4000)
    try:
        an.messages.create(model="claude-sonnet-4-5", max_tokens=4000,
                           messages=ask("question five"),
                           extra_headers=headers("quota_anthropic", 4000))
        emit("quota_anthropic", ok=True)
    except anthropic.APIStatusError as error:
        emit("quota_anthropic", ok=False, exception=type(error).__name__,
             status=error.status_code, body=error.body,
             should_retry=error.response.headers.get("x-should-retry"))


def killswitch():
    oa, _ = clients(os.environ["RUNAWAY_KEY"])
    # Its baseline is about $0.01 in this hour; each call here costs $0.05.
    for step in ["spike1", "spike2", "paused"]:
        chat(oa, step, "gpt-4o", "spend " + step, 5000, 5000)


def resumed():
    oa, _ = clients(os.environ["RUNAWAY_KEY"])
    chat(oa, "resumed", "gpt-4o", "after resume", 10, 10)


def tool(value):
    """A tool whose schema fixes the mock's arguments to `value`."""
    return [{"type": "function", "function": {
        "name": "search_crm", "description": "Search the CRM",
        "parameters": {"type": "object", "required": ["q"],
                       "properties": {"q": {"type": "string", "enum": [value]}}}}}]


def runs():
    oa, _ = clients(os.environ["RUNS_KEY"])

    def run_headers(run, parent=None):
        found = {"X-Attribution-Agent-Run-ID": run}
        if parent:
            found["X-Attribution-Parent-Run-ID"] = parent
        return found

    # max_tokens 2,000 per run: three calls of 800 output tokens pass it.
    for n in range(4):
        chat(oa, f"tokens{n}", "gpt-4o-mini", f"tokens {n}", 800, 800,
             headers=run_headers("run-tokens"))
    # max_tool_calls 3: four calls, each asking for one tool with different arguments.
    for n in range(5):
        chat(oa, f"tools{n}", "gpt-4o-mini", f"tools {n}", 20, 100, tools=tool(f"q{n}"),
             headers=dict(run_headers("run-tools"), **{"x-mock-tool-calls": "1"}))
    # loop_repeats 3: the same tool with the same arguments three times stops the run.
    for n in range(4):
        chat(oa, f"loop{n}", "gpt-4o-mini", f"loop {n}", 20, 100, tools=tool("same"),
             headers=dict(run_headers("run-loop"), **{"x-mock-tool-calls": "1"}))
    # max_depth 2: a sub-agent of a sub-agent of a sub-agent is refused.
    chat(oa, "depth0", "gpt-4o-mini", "root", 10, 10, headers=run_headers("d0"))
    chat(oa, "depth1", "gpt-4o-mini", "child", 10, 10, headers=run_headers("d1", "d0"))
    chat(oa, "depth2", "gpt-4o-mini", "grandchild", 10, 10, headers=run_headers("d2", "d1"))
    chat(oa, "depth3", "gpt-4o-mini", "too deep", 10, 10, headers=run_headers("d3", "d2"))
    # Sub-agents count for the run above them: three calls in three runs of one tree, each
    # run within 2,000 tokens, the tree past them; a new sub-agent and the top run stop.
    chat(oa, "tree0", "gpt-4o-mini", "coordinator", 800, 800, headers=run_headers("t0"))
    chat(oa, "tree1", "gpt-4o-mini", "worker a", 800, 800, headers=run_headers("t0.a", "t0"))
    chat(oa, "tree2", "gpt-4o-mini", "worker b", 800, 800, headers=run_headers("t0.b", "t0"))
    chat(oa, "tree3", "gpt-4o-mini", "worker c", 800, 800, headers=run_headers("t0.c", "t0"))
    chat(oa, "tree4", "gpt-4o-mini", "coordinator", 800, 800, headers=run_headers("t0"))


SCENARIOS = {"ladder": ladder, "killswitch": killswitch, "resumed": resumed, "runs": runs}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]]()
