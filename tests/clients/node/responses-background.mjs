// Background responses through openai-node: create({background: true}), retrieve() to poll, cancel(), a background stream
// dropped after a few events and resumed with retrieve(id, {stream: true, starting_after}).
// body: {input, block_input, drop_after}: block_input runs a tool the test keeps blocked, so it can only end by cancel().
import { run } from './lib/run.mjs';

async function collect(stream, limit = Infinity) {
  const events = [];
  for await (const event of stream) {
    events.push(event);
    if (events.length >= limit) break; // leaving the loop closes the connection, as a dropped client would
  }
  return events;
}

await run(async (client, body) => {
  const created = await client.responses.create({ model: 'agent', input: body.input, background: true });

  const dropped = await collect(await client.responses.create({ model: 'agent', input: body.input, background: true, stream: true }), body.drop_after + 1);
  const streamedId = dropped[0].response.id;
  const resumed = await collect(await client.responses.retrieve(streamedId, { stream: true, starting_after: body.drop_after }));
  const full = await collect(await client.responses.retrieve(streamedId, { stream: true }));

  // Reading its whole stream is the signal that the first one has ended; then a plain retrieve shows the final Response.
  await collect(await client.responses.retrieve(created.id, { stream: true }));
  const polled = await client.responses.retrieve(created.id);

  const blocked = await client.responses.create({ model: 'agent', input: body.block_input, background: true });
  const cancelled = await client.responses.cancel(blocked.id);
  const retrievedCancelled = await client.responses.retrieve(blocked.id);

  return {
    created: { id: created.id, status: created.status, background: created.background },
    polled: { status: polled.status, output_text: polled.output_text },
    dropped: dropped.map((e) => [e.sequence_number, e.type]),
    resumed: resumed.map((e) => [e.sequence_number, e.type]),
    full: full.map((e) => [e.sequence_number, e.type]),
    cancelled: { status: cancelled.status, background: cancelled.background },
    retrieved_cancelled: retrievedCancelled.status,
  };
});
