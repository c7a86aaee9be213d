// The Vercel AI SDK (ai + @ai-sdk/openai) on /v1/responses, generateText and streamText: it must read the server's output
// items (mcp_list_tools, mcp_call, mcp_approval_request) without a parse error. Returns what it made of them.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import { readStdin } from './lib/run.mjs';

try {
  const input = JSON.parse(await readStdin());
  const provider = createOpenAI({ baseURL: input.baseURL, apiKey: input.apiKey || 'test-key' });
  const model = provider.responses(input.body.model);
  const generated = await generateText({ model, prompt: input.body.input, maxRetries: 0 });
  const streamed = streamText({ model, prompt: input.body.input, maxRetries: 0 });
  const parts = [];
  const errors = [];
  for await (const part of streamed.fullStream) {
    parts.push(part.type);
    if (part.type === 'error') errors.push(String(part.error?.message ?? part.error));
  }
  process.stdout.write(JSON.stringify({
    generated: { text: generated.text, finishReason: generated.finishReason, content: generated.content.map((c) => c.type),
      output: generated.response.body?.output?.map((o) => o.type) ?? [] },
    streamed: { text: await streamed.text, parts, errors },
  }));
} catch (error) {
  process.stderr.write(`${error?.constructor?.name ?? 'Error'}: ${error?.message ?? error}\ncause: ${error?.cause?.message ?? error?.cause ?? ''}\n${error?.stack ?? ''}\n`);
  process.exitCode = 1;
}
