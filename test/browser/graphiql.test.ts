/**
 * GraphiQL in a real browser: Debian's headless Chromium driven by playwright-core (no browser
 * download: `executablePath` points at the system's). The page may reach 127.0.0.1 only; any other
 * request is blocked and recorded, and the test asserts there was none, so GraphiQL (editor, schema,
 * workers) is proven to work offline.
 *
 * Skips, with a message, where Chromium is not installed (`apt-get install -y chromium`); `.ci/run`
 * installs it, and under CI (`CI` set) a missing Chromium fails instead of skipping.
 * `UPDATE_SCREENSHOTS=1 npx vitest run test/browser` rewrites `docs/graphiql.png`.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const MISSING = `${CHROMIUM} not found (apt-get install -y chromium; .ci/run installs it)`;
if (!HAVE_CHROMIUM) console.warn(`test/browser/graphiql.test.ts: skipped, ${MISSING}`);

const JOB_MS = 10_000;
const P = SEED.projects.payments.id;
const F = SEED.flex;
const DOCS_SHOT = fileURLToPath(new URL('../../docs/graphiql.png', import.meta.url));
// The flags the machine notes give for Chromium here: no background traffic, no GPU, no sandbox as root.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Belt and braces: no host name but 127.0.0.1 resolves, whatever the page asks for.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

if (!HAVE_CHROMIUM && process.env.CI) {
  it('Chromium is installed in CI', () => {
    throw new Error(`${MISSING}; under CI it must be installed`);
  });
}

describe.skipIf(!HAVE_CHROMIUM)('GraphiQL in headless Chromium, offline', () => {
  let stack: Stack;
  let url: string;
  let browser: Browser | undefined;
  let page: Page;
  let shotDir: string;
  /** Requests to anything but 127.0.0.1, blocked. */
  const offsite: string[] = [];
  /** Every request the page made. */
  const requests: string[] = [];
  const pageErrors: string[] = [];
  /** The simulator's origin, once the page downloaded a snapshot from it (the link GraphiQL shows). */
  const simDownloads: string[] = [];

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    stack = await startStack({ sim: { jobMs: JOB_MS }, gateway: { pollIntervalMs: 50 } });
    url = await stack.gateway.listen(0, '127.0.0.1');
    shotDir = await mkdtemp(join(tmpdir(), 'graphiql-shot-'));
    // playwright launches with a fresh, empty profile (its own temporary --user-data-dir) and --headless.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    await context.route('**/*', async (route) => {
      const target = route.request().url();
      if (new URL(target).hostname === '127.0.0.1') return route.continue();
      offsite.push(target);
      return route.abort('blockedbyclient');
    });
    await context.routeWebSocket(/.*/, (ws) => {
      if (new URL(ws.url()).hostname === '127.0.0.1') return ws.connectToServer();
      offsite.push(ws.url());
      return ws.close();
    });
    page = await context.newPage();
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    if (shotDir) await rm(shotDir, { recursive: true, force: true });
  });

  /** The text an editor shows (Monaco draws only the visible lines, with non-breaking spaces). */
  const shown = async (pane: '.graphiql-query-editor' | '.graphiql-response') =>
    (await page.locator(`${pane} .view-lines`).innerText()).replace(/\u00a0/g, ' ');
  const resultText = () => shown('.graphiql-response');
  const executeButton = () => page.locator('button.graphiql-execute-button');

  it('opens /graphql with the example query and runs it with the run button', async () => {
    await page.goto(`${url}/graphql`);
    expect(await page.title()).toBe('Atlas Backup GraphQL Gateway');
    await executeButton().waitFor({ state: 'visible', timeout: 30_000 });
    // The preloaded query is the README's Dashboard one.
    await expect
      .poll(() => shown('.graphiql-query-editor'), { timeout: 10_000 })
      .toContain('query Dashboard');

    await executeButton().click();
    await expect.poll(resultText, { timeout: 15_000 }).toContain('"name": "Payments"');
    const text = await resultText();
    expect(text).toContain(`"id": "${P}"`);
    expect(text).toContain('"family": "TENANT"');
    expect(text).toContain('"totalCount": 36');
    expect(text).not.toContain('"errors"');

    const shot = process.env.UPDATE_SCREENSHOTS ? DOCS_SHOT : join(shotDir, 'graphiql.png');
    // The pointer off the editors, so that their scrollbars fade before the picture is taken.
    await page.mouse.move(1270, 790);
    await page.waitForTimeout(1000);
    await page.screenshot({ path: shot });
    expect((await stat(shot)).size).toBeGreaterThan(10_000);
  }, 60_000);

  it('follows restoreJobStatus to COMPLETED with the default (secure) configuration, run with Ctrl+Enter, and downloads the snapshot from the link it shows', async () => {
    const res = await stack.query<{ requestDownload: { job: { id: string; status: string } } }>(
      `mutation($i: RequestDownloadInput!) { requestDownload(input: $i) { job { id status } } }`,
      {
        i: {
          projectId: P,
          clusterName: F.clusterName,
          snapshotId: F.completedSnapshotId,
          reuseExisting: false,
        },
      },
    );
    expect(res.errors).toBeUndefined();
    const jobId = res.data!.requestDownload.job.id;

    // Replace the editor's text the way a person pastes, then let GraphiQL prettify it.
    const editor = page.locator('.graphiql-query-editor .monaco-editor');
    await editor.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.insertText(
      `subscription WatchJob { restoreJobStatus(projectId: "${P}", clusterName: "${F.clusterName}", jobId: "${jobId}") { id status snapshotUrl expirationDate } }`,
    );
    await page.locator('button[aria-label^="Prettify query"]').click();
    await expect.poll(() => shown('.graphiql-query-editor')).toContain('subscription WatchJob {');

    // GraphiQL learns the document's operations from the editor after a debounce: Ctrl+Enter pressed
    // before that runs the old operation name ("Cannot infer operation Dashboard") and starts nothing.
    // Then it is pressed again, as a person would; a press that starts the subscription turns the
    // button into "Stop" at once, and nothing is pressed after that (it would stop it).
    const running = page.locator('button.graphiql-execute-button[aria-label^="Stop query"]');
    for (let attempt = 1; ; attempt++) {
      await editor.click();
      await page.keyboard.press('ControlOrMeta+Enter');
      const started = await running.waitFor({ timeout: 2000 }).then(
        () => true,
        () => false,
      );
      if (started) break;
      if (attempt === 5) throw new Error(`the subscription did not start: ${await resultText()}`);
    }
    const statusShown = async () => /"status": "([A-Z]+)"/.exec(await resultText())?.[1];
    const seen: string[] = [];
    const waitFor = async (status: string) => {
      await expect
        .poll(
          async () => {
            const s = await statusShown();
            if (s && s !== seen.at(-1)) seen.push(s);
            return s;
          },
          { timeout: 15_000 },
        )
        .toBe(status);
    };
    await waitFor('QUEUED');
    expect(await resultText()).toContain(`"id": "${jobId}"`);
    expect(await executeButton().getAttribute('aria-label')).toMatch(/^Stop query/);
    stack.clock.advance(JOB_MS / 2);
    await waitFor('RUNNING');
    stack.clock.advance(JOB_MS);
    await waitFor('COMPLETED');
    expect(seen).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
    // The signed URL on the simulator (the pane wraps long lines) and when it expires.
    expect(await resultText()).toMatch(/"snapshotUrl": "http:\/\/127\.0\.0\.1:\d+\/backup\//);
    expect(await resultText()).toMatch(/"expirationDate": "\d{4}-/);

    // The person follows the link GraphiQL shows: the browser downloads the simulator's real .tgz.
    const link = await stack.query<{ restoreJob: { snapshotUrl: string } }>(
      `{ restoreJob(projectId: "${P}", clusterName: "${F.clusterName}", id: "${jobId}") { snapshotUrl } }`,
    );
    const snapshotUrl = link.data!.restoreJob.snapshotUrl;
    expect((await resultText()).replace(/\s+/g, '')).toContain(`"snapshotUrl":"${snapshotUrl}"`);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.evaluate((href) => {
        const a = Object.assign(document.createElement('a'), { href, download: '' });
        document.body.append(a);
        a.click();
        a.remove();
      }, snapshotUrl),
    ]);
    const saved = await readFile((await download.path())!);
    expect([...saved.subarray(0, 2)]).toEqual([0x1f, 0x8b]); // gzip
    expect(saved.length).toBeGreaterThan(100);
    simDownloads.push(new URL(snapshotUrl).origin);

    // The stream completed by itself: GraphiQL is back to "Execute", and the gateway's poller is gone.
    await expect
      .poll(async () => executeButton().getAttribute('aria-label'), { timeout: 10_000 })
      .toMatch(/^Execute query/);
    await expect.poll(() => stack.gateway.pollers.stats()).toMatchObject({ pollers: 0, subscribers: 0 });
    await page.screenshot({ path: join(shotDir, 'subscription.png') });
  }, 60_000);

  it('reached nothing but 127.0.0.1 and threw no page error', () => {
    expect(offsite).toEqual([]);
    expect(pageErrors).toEqual([]);
    const origin = new URL(url).origin;
    const elsewhere = requests.filter(
      (r) =>
        !r.startsWith('blob:') &&
        !r.startsWith('data:') &&
        !r.startsWith(origin) &&
        !simDownloads.some((o) => r.startsWith(`${o}/backup/`)),
    );
    expect(elsewhere).toEqual([]);
    expect(requests.filter((r) => r.startsWith(`${origin}/graphql`)).length).toBeGreaterThanOrEqual(3);
    expect(stack.sim.violations).toEqual([]);
  });
});
