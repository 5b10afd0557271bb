"""Sends real OpenTelemetry spans to a running burnrate over OTLP/HTTP (protobuf).

usage: otlp_export.py {openai-v2|openinference|sdk}

openai-v2 / openinference: the official `openai` SDK, wrapped by that instrumentor, calls the
mock provider directly (the gateway is not in the path) inside a hand-made agent span that
carries attribution under the `acme.` prefix. sdk: spans built by hand with GenAI attributes,
current and deprecated names. Every mode prints one JSON line per model call with what the SDK
(or the span) reported, so the Rust test can compare it with what the ledger recorded.
Environment: BURNRATE_URL (base URL), BURNRATE_TOKEN (admin token), MOCK_URL (mock base URL).
"""

import json
import os
import sys

mode = sys.argv[1]
if mode == "openai-v2":
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider(resource=Resource.create({
    "service.name": f"otlp-{mode}", "deployment.environment.name": "e2e"}))
exporter = OTLPSpanExporter(
    endpoint=os.environ["BURNRATE_URL"] + "/v1/traces",
    headers={"authorization": "Bearer " + os.environ["BURNRATE_TOKEN"]})
provider.add_span_processor(BatchSpanProcessor(exporter))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("burnrate-e2e")
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage",
         "acme.tenant_id": f"tenant-{mode}", "acme.feature": "otlp-e2e",
         "acme.user_id": "u-otlp"}


def emit(**fields):
    print(json.dumps(fields), flush=True)


if mode in ("openai-v2", "openinference"):
    if mode == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    else:
        from openinference.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()
    import openai
    client = openai.OpenAI(base_url=os.environ["MOCK_URL"] + "/v1", api_key="sk-e2e", max_retries=0)
    with tracer.start_as_current_span("invoke_agent triage", attributes=AGENT):
        for n, cached in enumerate([0, 1024]):
            response = client.chat.completions.create(
                model="gpt-4.1",
                messages=[{"role": "user", "content": f"question {n}: " + "why? " * 1200}],
                extra_headers={"x-mock-cached-tokens": str(cached)})
            details = response.usage.prompt_tokens_details
            emit(model=response.model, input=response.usage.prompt_tokens,
                 output=response.usage.completion_tokens,
                 cached=details.cached_tokens if details else 0)
else:
    with tracer.start_as_current_span("invoke_agent triage", attributes=AGENT):
        with tracer.start_as_current_span("chat claude-sonnet-4-5", kind=trace.SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 40,
                "gen_ai.usage.cache_read.input_tokens": 1500,
                "gen_ai.usage.cache_creation.input_tokens": 300}):
            pass
        emit(model="claude-sonnet-4-5-20250929", input=2000, output=40, cached=1500)
        with tracer.start_as_current_span("chat gpt-4o", kind=trace.SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 700, "gen_ai.usage.completion_tokens": 9}):
            pass
        emit(model="gpt-4o", input=700, output=9, cached=0)
        with tracer.start_as_current_span("GET /health"):
            pass

provider.shutdown()
