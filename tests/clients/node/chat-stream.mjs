// client.chat.completions.stream(): the helper that accumulates chunks and checks role, finish_reason and tool calls.
import { run } from './lib/run.mjs';

await run(async (client, body) => {
  const stream = client.chat.completions.stream(body);
  let chunks = 0;
  for await (const _chunk of stream) chunks++;
  const final = await stream.finalChatCompletion();
  return { chunks, final };
});
