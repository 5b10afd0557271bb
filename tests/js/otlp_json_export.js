// Sends a GenAI span tree to a running burnrate with the official OpenTelemetry JS OTLP/HTTP
// exporter, whose default encoding is OTLP/JSON. Prints one JSON line per LLM call with what
// the spans said, for the Rust test to compare with the ledger.
// Environment: BURNRATE_URL (base URL), BURNRATE_TOKEN (admin token).
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const api = require('@opentelemetry/api');

async function main() {
  const exporter = new OTLPTraceExporter({
    url: `${process.env.BURNRATE_URL}/v1/traces`,
    headers: { authorization: `Bearer ${process.env.BURNRATE_TOKEN}` },
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'js-agent', 'deployment.environment.name': 'e2e' }),
    // Batched, as production setups export: the agent span and its calls in one request
    // (burnrate maps per request; a parent exported later cannot lend its attribution).
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('burnrate-e2e-js', '1.0.0');
  const agent = tracer.startSpan('invoke_agent planner', { attributes: {
    'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner',
    'acme.tenant_id': 'tenant-js', 'acme.user_id': 8814, 'acme.feature': 'otlp-e2e' } });
  const ctx = api.trace.setSpan(api.context.active(), agent);
  const chat = tracer.startSpan('chat claude-sonnet-4-5', { kind: api.SpanKind.CLIENT, attributes: {
    'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic',
    'gen_ai.request.model': 'claude-sonnet-4-5', 'gen_ai.response.model': 'claude-sonnet-4-5-20250929',
    'gen_ai.usage.input_tokens': 12480, 'gen_ai.usage.output_tokens': 2311,
    'gen_ai.usage.cache_read.input_tokens': 9800, 'gen_ai.usage.cache_creation.input_tokens': 0 } }, ctx);
  chat.end();
  console.log(JSON.stringify({ model: 'claude-sonnet-4-5-20250929', input: 12480, output: 2311, cached: 9800 }));
  const tool = tracer.startSpan('execute_tool search_crm', { attributes: {
    'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search_crm' } }, ctx);
  tool.end();
  agent.end();
  await provider.forceFlush();
  await provider.shutdown();
}

main().catch((error) => { console.error(error); process.exit(1); });
