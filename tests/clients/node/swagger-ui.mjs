// Drives the server's Swagger UI in headless Chromium (Debian's, through playwright-core): for each operation given, expands
// it, clicks "Try it out" and "Execute" with the document's example body, and reports the live response's status and body.
// Input: {"baseURL": "http://127.0.0.1:PORT", "operations": [{"tag": "Chat", "operationId": "CreateChatCompletion"}, ...]}.
// Output: {"results": [{"operationId", "status", "body"}]}. CHROMIUM_PATH overrides /usr/bin/chromium.
import { chromium } from 'playwright-core';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

let browser;
try {
  const input = JSON.parse(await readStdin());
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    // Root in CI has no user namespace for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  await page.goto(new URL('/swagger/index.html', input.baseURL).toString());
  const results = [];
  for (const { tag, operationId } of input.operations) {
    const block = page.locator(`#operations-${tag}-${operationId}`);
    await block.locator('.opblock-summary').first().click();
    await block.locator('button.try-out__btn').click();
    await block.locator('button.execute').click();
    const status = block.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor();
    const body = await block.locator('.live-responses-table .response-col_description .microlight, .live-responses-table .response-col_description pre').first().innerText();
    results.push({ operationId, status: Number((await status.innerText()).trim()), body });
  }
  process.stdout.write(JSON.stringify({ results }));
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  await browser?.close();
}
