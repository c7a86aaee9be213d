// The header names openai-node puts on its requests (platform, retry, timeout and helper headers), captured from real calls
// to the server through the SDK's `fetch` option. A browser preflights exactly these names in Access-Control-Request-Headers.
// The responses call also sends Idempotency-Key the way an application adds it (openai-node itself sends none to OpenAI).
// Input as lib/run.mjs; output: {"headers": ["authorization", ...]} (lowercased, sorted, union over the calls).
import OpenAI from 'openai';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

try {
  const input = JSON.parse(await readStdin());
  const names = new Set();
  const client = new OpenAI({
    baseURL: input.baseURL,
    apiKey: input.apiKey || 'test-key',
    organization: 'org-test',
    project: 'proj-test',
    maxRetries: 0,
    timeout: 60_000,
    fetch: async (url, init) => {
      for (const [name] of new Headers(init?.headers).entries()) names.add(name.toLowerCase());
      return fetch(url, init);
    },
  });
  const stream = client.chat.completions.stream({ model: 'agent', messages: [{ role: 'user', content: 'hi' }] }, { timeout: 30_000 });
  await stream.finalChatCompletion();
  await client.responses.create({ model: 'agent', input: 'hi' }, { headers: { 'Idempotency-Key': 'sdk-headers-1' } });
  process.stdout.write(JSON.stringify({ headers: [...names].sort() }));
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exitCode = 1;
}
