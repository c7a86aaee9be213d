// Shared plumbing for the client scripts: one JSON request on stdin, one JSON result on stdout.
// Input: {"baseURL": "http://127.0.0.1:PORT/v1", "apiKey": "...", "body": {...}}.
// Any error (a strict stream helper rejecting the server's events, an HTTP error, bad JSON) goes to stderr with exit code 1.
import OpenAI from 'openai';

export async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export async function run(main) {
  try {
    const input = JSON.parse(await readStdin());
    const client = new OpenAI({
      baseURL: input.baseURL,
      apiKey: input.apiKey || 'test-key',
      maxRetries: 0,
      timeout: 60_000,
    });
    const result = await main(client, input.body, input);
    process.stdout.write(JSON.stringify(result));
  } catch (error) {
    const name = error?.constructor?.name ?? 'Error';
    const status = error?.status ? ` (HTTP ${error.status})` : '';
    process.stderr.write(`${name}${status}: ${error?.message ?? error}\n${error?.stack ?? ''}\n`);
    process.exitCode = 1;
  }
}
