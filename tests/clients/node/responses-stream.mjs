// client.responses.stream(): the helper whose accumulator validates every event (order, indices, item ids, types).
import { run } from './lib/run.mjs';

await run(async (client, body) => {
  const stream = client.responses.stream(body);
  const events = [];
  for await (const event of stream) events.push(event.type);
  const final = await stream.finalResponse();
  return { events, final };
});
