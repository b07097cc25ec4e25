/**
 * The Dockerfile, checked without a Docker engine (none runs here): statically (stages, non-root
 * user, health check, listen address, every COPY source exists and is not in .dockerignore), then by
 * doing what its stages do: the build stage's own tsc command on the files the build stage copies,
 * the runtime stage's layout, its CMD booted (demo mode, 127.0.0.1), its HEALTHCHECK command run, and
 * every package the compiled code imports found among the production dependencies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
const dockerignore = await readFile(join(ROOT, '.dockerignore'), 'utf8');
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

/** Instructions (continuation lines joined, comments dropped), split into stages. */
function parse(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const ins = { op: op.toUpperCase(), args: rest.replace(/\s+/g, ' ') };
    if (ins.op === 'FROM') {
      const [, from = '', name = ''] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args) ?? [];
      stages.push({ name, from, body: [] });
    } else if (stages.length === 0 && ins.op === 'ARG') {
      const [k = '', v = ''] = ins.args.split('=');
      args[k] = v;
    } else {
      stages.at(-1)?.body.push(ins);
    }
  }
  return { args, stages };
}

const { args: globalArgs, stages } = parse(dockerfile);
const stage = (name: string) => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
};
const runtime = stages.at(-1)!;
const ops = (s: Stage, op: string) => s.body.filter((i) => i.op === op).map((i) => i.args);
/** The base image a stage starts from, through the global ARGs and earlier stages. */
const baseImage = (s: Stage): string => {
  const from = s.from.replace(/\$\{(\w+)\}/g, (_m, k: string) => globalArgs[k] ?? '');
  const parent = stages.find((x) => x.name === from);
  return parent ? baseImage(parent) : from;
};

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
}
const copies = (s: Stage): Copy[] =>
  ops(s, 'COPY').map((a) => {
    const words = a.split(' ');
    const flags = words.filter((w) => w.startsWith('--'));
    const paths = words.filter((w) => !w.startsWith('--'));
    const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
    return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });

/** .dockerignore rules as regular expressions over context-relative paths (no `!` rules used). */
const ignoreRules = dockerignore
  .split(/\r?\n/)
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((p) => {
    if (p.startsWith('!'))
      throw new Error(`.dockerignore: negated rules (${p}) are not handled by this test`);
    const re = p
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map((part) =>
        part === '**'
          ? '(?:.*)'
          : part
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
      )
      .join('/')
      .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
    return new RegExp(`^${re}$`);
  });
const ignored = (path: string) => {
  const parts = path.replace(/^\.\//, '').replace(/\/$/, '').split('/');
  return parts.some((_p, i) => ignoreRules.some((r) => r.test(parts.slice(0, i + 1).join('/'))));
};

/** The JSON (exec) form of CMD / HEALTHCHECK CMD. */
const execForm = (text: string): string[] => JSON.parse(text) as string[];
const healthcheck = ops(runtime, 'HEALTHCHECK')[0] ?? '';
const healthCmd = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4));
const cmd = execForm(ops(runtime, 'CMD')[0] ?? '[]');

describe('Dockerfile, statically', () => {
  it('is multi-stage: npm ci for the build, production dependencies only in a small runtime', () => {
    expect(stages.map((s) => s.name)).toEqual(['deps', 'build', 'prod-deps', 'runtime']);
    for (const s of stages) expect(baseImage(s)).toMatch(/^node:(22|24)[\w.-]*-(slim|alpine)/);
    expect(ops(stage('deps'), 'RUN').join(' ')).toMatch(/\bnpm ci\b/);
    expect(ops(stage('build'), 'RUN').join(' ')).toMatch(/\btsc\b.*--outDir build/);
    expect(ops(stage('prod-deps'), 'RUN').join(' ')).toMatch(/\bnpm ci\b.*--omit=dev/);
    // node_modules reach the runtime from prod-deps only; no npm install, no tsx, no compiler there.
    const rt = copies(runtime);
    expect(rt.filter((c) => c.dest.includes('node_modules'))).toEqual([
      { from: 'prod-deps', sources: ['/app/node_modules'], dest: './node_modules' },
    ]);
    expect(ops(runtime, 'RUN')).toEqual([]);
    expect(cmd).toEqual(['node', 'src/index.js']);
  });

  it('runs as a non-root user', () => {
    const users = ops(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    // Nothing after USER runs as root again.
    const lastUser = runtime.body.findLastIndex((i) => i.op === 'USER');
    expect(runtime.body.slice(lastUser).some((i) => i.op === 'RUN' || i.op === 'COPY')).toBe(false);
  });

  it('checks health on /healthz with node (no curl), listens on 0.0.0.0 and exposes 4000', () => {
    expect(healthcheck).toMatch(/--interval=\S+/);
    expect(healthCmd[0]).toBe('node');
    expect(healthCmd.join(' ')).toContain('/healthz');
    expect(healthCmd.join(' ')).toContain('fetch(');
    expect(healthCmd.join(' ')).not.toMatch(/curl|wget/);
    const env = ops(runtime, 'ENV').join(' ');
    expect(env).toMatch(/(^|\s)HOST=0\.0\.0\.0(\s|$)/);
    expect(env).toMatch(/(^|\s)PORT=4000(\s|$)/);
    expect(ops(runtime, 'EXPOSE')).toEqual(['4000']);
  });

  it('copies only files that exist in the repo and are not excluded by .dockerignore', () => {
    const names = new Set<string>();
    for (const s of stages) {
      for (const c of copies(s)) {
        if (c.from) {
          // From an earlier stage, by name.
          expect(stages.slice(0, stages.indexOf(s)).map((x) => x.name)).toContain(c.from);
          continue;
        }
        for (const src of c.sources) {
          names.add(src);
          expect(existsSync(join(ROOT, src)), `COPY ${src}: not in the repo`).toBe(true);
          expect(ignored(src), `COPY ${src}: excluded by .dockerignore`).toBe(false);
        }
      }
    }
    expect([...names].sort()).toEqual([
      'package-lock.json',
      'package.json',
      'schema',
      'src',
      'tsconfig.json',
    ]);
    for (const out of ['node_modules', '.git', 'test', 'coverage', '.env', 'src/x/node_modules'])
      expect(ignored(out), `${out} should be in .dockerignore`).toBe(true);
  });
});

describe('Dockerfile, its stages done by hand', () => {
  const children: ChildProcess[] = [];
  let work: string | undefined;
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('compiles with the build stage’s tsc command, boots the runtime layout, and the HEALTHCHECK passes', async () => {
    work = await mkdtemp(join(tmpdir(), 'dockerfile-'));
    // /app of deps + build: what they COPY from the context, and the repo's node_modules for deps.
    const buildApp = join(work, 'build-app');
    for (const c of [...copies(stage('deps')), ...copies(stage('build'))])
      for (const src of c.sources)
        await cp(join(ROOT, src), resolve(buildApp, c.dest.endsWith('/') ? src : c.dest), {
          recursive: true,
        });
    await symlink(join(ROOT, 'node_modules'), join(buildApp, 'node_modules'), 'dir');
    const tscRun = ops(stage('build'), 'RUN').find((r) => /^npx tsc /.test(r))!;
    // Types are `npm run typecheck`'s job; here only what tsc emits matters (and --noCheck halves the time).
    const tscArgs = [...tscRun.replace(/^npx tsc /, '').split(' '), '--noCheck'];
    const tsc = await run(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), ...tscArgs],
      buildApp,
    );
    expect(tsc.out, 'tsc').toBe('');
    expect(tsc.code).toBe(0);

    // /app of runtime.
    const app = join(work, 'runtime-app');
    await mkdir(app);
    const stageDirs: Record<string, string> = { build: buildApp, deps: buildApp, 'prod-deps': ROOT };
    for (const c of copies(runtime)) {
      for (const src of c.sources) {
        const dest = resolve(app, c.dest.endsWith('/') ? join(c.dest, src) : c.dest);
        if (!c.from) await cp(join(ROOT, src), dest, { recursive: true });
        else if (src === '/app/node_modules') await symlink(join(ROOT, 'node_modules'), dest, 'dir');
        else await cp(join(stageDirs[c.from]!, relative('/app', src)), dest, { recursive: true });
      }
    }
    expect(existsSync(join(app, cmd[1]!))).toBe(true);

    // Production dependencies are enough: every package the compiled code can load is one of them.
    const imported = await packagesImported(join(app, cmd[1]!));
    const notProd = [...imported].filter((p) => !(p in pkg.dependencies));
    expect(notProd, 'imported at run time but not in "dependencies"').toEqual([]);
    expect(imported.has('graphql-yoga')).toBe(true);

    // CMD, in demo mode (no Atlas credentials), on loopback: tests never listen elsewhere.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
    };
    const child = spawn(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), { cwd: app, env });
    children.push(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const url = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no listen line within 30 s:\n${output}`)), 30_000);
      const look = () => {
        const m = /on (http:\/\/127\.0\.0\.1:\d+)\/graphql/.exec(output);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      };
      child.stdout.on('data', look);
      child.once('exit', (code) => rej(new Error(`exited with ${code}:\n${output}`)));
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // schema/*.graphql and the simulator's openapi.json are found from the compiled files.
    const answer = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ projects { name } }' }),
    });
    expect(await answer.json()).toMatchObject({
      data: { projects: expect.arrayContaining([{ name: 'Payments' }]) },
    });

    // The HEALTHCHECK command itself, as Docker runs it in the container (PORT from the image's ENV).
    const port = new URL(url).port;
    const healthy = await run(process.execPath, healthCmd.slice(1), app, { PORT: port });
    expect(healthy.code).toBe(0);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((res) => child.once('exit', res));
    expect(code).toBe(0);
    const unhealthy = await run(process.execPath, healthCmd.slice(1), app, { PORT: port });
    expect(unhealthy.code).toBe(1);
  }, 120_000);
});

function run(file: string, argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number | null; out: string }>((res, rej) => {
    const child = spawn(file, argv, { cwd, env: { PATH: process.env.PATH, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', rej);
    child.once('exit', (code) => res({ code, out }));
  });
}

/** Bare packages reachable from `entry` through static and dynamic imports of relative files. */
async function packagesImported(entry: string): Promise<Set<string>> {
  const builtins = new Set(builtinModules);
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = [entry];
  for (let file = queue.pop(); file; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const code = await readFile(file, 'utf8');
    for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:') && !builtins.has(spec)) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
  }
  return packages;
}
