import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SIM_CREDENTIALS } from '../../src/simulator/index.js';
import { listenErrorLine } from '../../src/gateway-listen-error.js';
import { track } from '../support/disposer.js';
import { startEntryPoint } from '../support/entry-point.js';

/** A plain TCP server holding a port on 127.0.0.1, closed when the test ends. */
async function occupyPort(): Promise<number> {
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  track({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) }, 'port holder');
  return (server.address() as AddressInfo).port;
}

/** A port that was free a moment ago (the kernel does not hand it out again right away). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('npm start refuses a place it cannot listen on in one line, exit 2', () => {
  it('PORT already in use', async () => {
    const port = await occupyPort();
    const entry = await startEntryPoint({ PORT: String(port) });
    expect(entry.exitCode).toBe(2);
    expect(entry.stderr().trim()).toBe(`PORT=${port}: the port is already in use (EADDRINUSE)`);
  });

  it('HOST that is no host', async () => {
    const entry = await startEntryPoint({ HOST: 'not a host' });
    expect(entry.exitCode).toBe(2);
    expect(entry.stderr().trim()).toMatch(
      /^HOST="not a host": cannot listen on it \((ENOTFOUND|EAI_AGAIN)[^\n]*\)$/,
    );
  });

  it('ATLAS_SIM_PORT already in use (demo mode)', async () => {
    const port = await occupyPort();
    const entry = await startEntryPoint({ ATLAS_SIM_PORT: String(port) });
    expect(entry.exitCode).toBe(2);
    expect(entry.stderr().trim()).toBe(`ATLAS_SIM_PORT=${port}: the port is already in use (EADDRINUSE)`);
  });

  it('names the variables for the errors the tests cannot provoke', () => {
    const at = { portVar: 'PORT', port: 80, hostVar: 'HOST', host: '10.9.9.9' };
    const err = (code: string) => Object.assign(new Error(`listen ${code}`), { code });
    expect(listenErrorLine(err('EACCES'), at)).toMatch(
      /^PORT=80: no permission to listen on this port \(EACCES/,
    );
    expect(listenErrorLine(err('EADDRNOTAVAIL'), at)).toBe(
      'HOST="10.9.9.9": cannot listen on it (EADDRNOTAVAIL: not an address of this machine)',
    );
    expect(listenErrorLine(err('EWHATEVER'), at)).toBe(
      'HOST="10.9.9.9" PORT=80: cannot listen (EWHATEVER: listen EWHATEVER)',
    );
  });
});

it('ATLAS_SIM_PORT pins the embedded simulator’s port in demo mode', async () => {
  const port = await freePort();
  const entry = await startEntryPoint({ ATLAS_SIM_PORT: String(port) });
  expect(entry.url, entry.stderr()).toBeDefined();
  expect(entry.stdout()).toContain(`embedded Atlas simulator at http://127.0.0.1:${port} answers`);
  // The simulator itself answers there: its OAuth endpoint hands the demo owner a token.
  const owner = DEFAULT_SIM_CREDENTIALS[0]!;
  const res = await request(`http://127.0.0.1:${port}/api/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${owner.clientId}:${owner.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  expect(res.statusCode).toBe(200);
  expect(await res.body.json()).toMatchObject({ access_token: expect.any(String) });
  await entry.close();
});
