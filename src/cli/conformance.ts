// `einvit conformance`: runs einops JSON Lines vectors and ViT reference folders.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { readCases, runCase } from '../conformance/einops.js';
import { runVitFolder } from './vit-conformance.js';

export interface Tally {
  passed: number;
  failed: number;
  lines: string[];
}

function isVitFolder(dir: string): boolean {
  return ['config.json', 'model.safetensors', 'io.safetensors'].every((f) => existsSync(join(dir, f)));
}

/**
 * Expands folders into the .jsonl files and ViT reference folders they hold. A path that does not
 * exist, or a folder holding neither, is a UsageError.
 *
 * @example
 * collectTargets(['test/conformance']); // [{ kind: 'jsonl', path: 'test/conformance/einsum.jsonl' }, ...]
 */
export function collectTargets(paths: readonly string[]): Array<{ kind: 'jsonl' | 'vit'; path: string }> {
  const out: Array<{ kind: 'jsonl' | 'vit'; path: string }> = [];
  const visit = (p: string, explicit: boolean) => {
    if (!existsSync(p)) throw new UsageError(`No such file or folder: ${p}`, { rule: 'no-such-path' });
    if (statSync(p).isDirectory()) {
      if (isVitFolder(p)) {
        out.push({ kind: 'vit', path: p });
        return;
      }
      for (const name of readdirSync(p).sort()) {
        const child = join(p, name);
        if (statSync(child).isDirectory() || name.endsWith('.jsonl')) visit(child, false);
      }
    } else if (p.endsWith('.jsonl') || explicit) {
      out.push({ kind: 'jsonl', path: p });
    }
  };
  for (const p of paths) {
    const found = out.length;
    visit(p, true);
    if (out.length === found) {
      throw new UsageError(
        `${p} is not a conformance folder: it holds no einops .jsonl vectors and no ViT reference folder ` +
          '(config.json + model.safetensors + io.safetensors)',
        { rule: 'not-conformance' },
      );
    }
  }
  return out;
}

/**
 * Runs one JSON Lines file of einops vectors, counting and reporting each case.
 *
 * @example
 * const tally: Tally = { passed: 0, failed: 0, lines: [] };
 * runJsonl('test/conformance/pack.jsonl', tally);
 */
export function runJsonl(path: string, tally: Tally): void {
  for (const c of readCases(path)) {
    const r = runCase(c);
    if (r.passed) {
      tally.passed++;
    } else if (r.backendDefined) {
      tally.passed++;
      tally.lines.push(`note ${r.id} (backend-defined) '${r.pattern}': ${r.detail}`);
    } else {
      tally.failed++;
      tally.lines.push(`FAIL ${r.id} '${r.pattern}': ${r.detail}`);
    }
  }
}

/**
 * `einvit conformance`: runs every target under `paths` and returns the report lines (ending with the
 * tally) and the failure count. Paths with no conformance vectors are a UsageError.
 *
 * @example
 * const { lines, failed } = await conformanceCommand(['test/conformance'], 'wasm');
 */
export async function conformanceCommand(
  paths: readonly string[],
  backend: string,
): Promise<{ lines: string[]; passed: number; failed: number }> {
  const tally: Tally = { passed: 0, failed: 0, lines: [] };
  for (const target of collectTargets(paths)) {
    if (target.kind === 'jsonl') runJsonl(target.path, tally);
    else await runVitFolder(target.path, tally);
  }
  if (tally.passed + tally.failed === 0) {
    throw new UsageError(
      `no conformance vectors in ${paths.join(', ')}: the einops .jsonl files hold no cases`,
      {
        rule: 'no-conformance-cases',
      },
    );
  }
  const lines = [...tally.lines, `backend: ${backend}`, `${tally.passed} passed, ${tally.failed} failed`];
  return { lines, passed: tally.passed, failed: tally.failed };
}
