// Non-streaming client.responses.create(), then client.responses.retrieve() of the same id.
import { run } from './lib/run.mjs';

await run(async (client, body) => {
  const created = await client.responses.create({ ...body, stream: false });
  const retrieved = await client.responses.retrieve(created.id);
  return { created, retrieved };
});
