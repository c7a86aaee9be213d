// The approval flow with openai-node: a streamed turn that ends with an mcp_approval_request (read through the strict stream
// helper), then a non-streamed turn answering it with an mcp_approval_response (body.approve decides), and that turn's
// input items read back through the client's paginated list.
import { run } from './lib/run.mjs';

await run(async (client, body) => {
  const { approve, ...request } = body;
  const stream = client.responses.stream({ ...request, stream: true });
  const events = [];
  for await (const event of stream) events.push(event.type);
  const first = await stream.finalResponse();
  const asked = first.output.find((item) => item.type === 'mcp_approval_request');
  const second = await client.responses.create({
    model: request.model,
    previous_response_id: first.id,
    input: [{ type: 'mcp_approval_response', approval_request_id: asked.id, approve }],
  });
  const inputItems = [];
  for await (const item of client.responses.inputItems.list(second.id, { order: 'asc' })) inputItems.push(item);
  return { events, first, second, inputItems };
});
