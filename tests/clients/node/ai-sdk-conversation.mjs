// The Vercel AI SDK's default OpenAI provider (Responses API, store: true) in a multi-turn conversation that resends
// result.response.messages, as useChat apps do: earlier assistant items go back as item_reference items.
// Body: {"model": "...", "prompts": ["turn 1", "turn 2", ...]}. Result: each turn's text and the tool calls/results the SDK
// saw, and every request body the SDK sent (recorded by a wrapping fetch).
import { createOpenAI } from '@ai-sdk/openai';
import { generateText } from 'ai';
import { run } from './lib/run.mjs';

await run(async (_client, body, input) => {
  const sent = [];
  const openai = createOpenAI({
    baseURL: input.baseURL,
    apiKey: input.apiKey || 'test-key',
    fetch: async (url, init) => {
      sent.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
  const messages = [];
  const turns = [];
  for (const prompt of body.prompts) {
    messages.push({ role: 'user', content: prompt });
    const result = await generateText({ model: openai(body.model), messages, maxRetries: 0 });
    messages.push(...result.response.messages);
    turns.push({
      text: result.text,
      reasoning: result.reasoningText ?? null,
      toolCalls: result.toolCalls.map((c) => ({ name: c.toolName, providerExecuted: c.providerExecuted ?? false })),
      toolResults: result.toolResults.map((r) => ({ name: r.toolName, output: r.output })),
      responseId: result.response.id,
    });
  }
  return { turns, sent };
});
