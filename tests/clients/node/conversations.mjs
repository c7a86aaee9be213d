// Every client.conversations.* method of openai-node, then client.responses.create() on the conversation:
// the SDK's own paths, query strings and cursor paging must all be accepted. Prints what each call returned.
import { run } from './lib/run.mjs';

await run(async (client) => {
  const created = await client.conversations.create({
    metadata: { topic: 'demo' },
    items: [{ type: 'message', role: 'user', content: 'My name is Ada.' }],
  });
  const retrieved = await client.conversations.retrieve(created.id);
  const updated = await client.conversations.update(created.id, { metadata: { topic: 'renamed' } });
  const added = await client.conversations.items.create(created.id, {
    items: [
      { type: 'message', role: 'assistant', content: 'Hello Ada.' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Remember me.' }] },
    ],
  });
  const response = await client.responses.create({ model: 'agent', input: 'What is my name?', conversation: created.id });

  // The SDK's auto-pager follows last_id/has_more; two items a page forces it to ask for several pages.
  const paged = [];
  for await (const item of client.conversations.items.list(created.id, { limit: 2, order: 'asc' })) paged.push(item);
  const firstPage = await client.conversations.items.list(created.id, { limit: 2 });

  const item = await client.conversations.items.retrieve(added.data[0].id, { conversation_id: created.id });
  const afterItemDelete = await client.conversations.items.delete(added.data[0].id, { conversation_id: created.id });
  const remaining = [];
  for await (const i of client.conversations.items.list(created.id, { order: 'asc' })) remaining.push(i.id);
  const deleted = await client.conversations.delete(created.id);
  let afterDelete = null;
  try {
    await client.conversations.retrieve(created.id);
  } catch (error) {
    afterDelete = { status: error.status, param: error.param ?? error.error?.param ?? null };
  }
  return {
    created, retrieved, updated, added, response, paged, firstPage: { data: firstPage.data, has_more: firstPage.has_more },
    item, afterItemDelete, remaining, deleted, afterDelete,
  };
});
