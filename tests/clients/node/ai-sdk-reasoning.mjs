// The Vercel AI SDK's Responses provider (@ai-sdk/openai, the default `openai(model)`) with a reasoning summary requested,
// streamed (streamText) and not (generateText): prints the reasoning each result shows, which the SDK builds only from
// reasoning summary parts and events.
// Input: {"baseURL", "apiKey", "body": {"model", "prompt"}}; output: {"streamed": {...}, "generated": {...}}.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import { readStdin } from './lib/run.mjs';

try {
  const input = JSON.parse(await readStdin());
  const openai = createOpenAI({ baseURL: input.baseURL, apiKey: input.apiKey || 'test-key' });
  const options = {
    model: openai(input.body.model),
    prompt: input.body.prompt,
    maxRetries: 0,
    // forceReasoning: the SDK sends `reasoning` only for model ids it knows as reasoning models.
    providerOptions: { openai: { reasoningSummary: 'auto', forceReasoning: true } },
  };
  const stream = streamText({ ...options, onError: ({ error }) => { throw error; } });
  const reasoningDeltas = [];
  for await (const part of stream.fullStream) {
    if (part.type === 'reasoning-delta') reasoningDeltas.push(part.text);
    if (part.type === 'error') throw part.error;
  }
  const streamed = { reasoningText: await stream.reasoningText, text: await stream.text, reasoningDeltas };
  const generated = await generateText(options);
  process.stdout.write(JSON.stringify({
    streamed,
    generated: { reasoningText: generated.reasoningText, reasoning: generated.reasoning.map(r => r.text), text: generated.text },
  }));
} catch (error) {
  process.stderr.write(`${error?.constructor?.name ?? 'Error'}: ${error?.message ?? error}\n${error?.stack ?? ''}\n`);
  process.exitCode = 1;
}
