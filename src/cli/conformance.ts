// `einvit conformance`: runs einops JSON Lines vectors and ViT reference folders.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EinopsError } from '../errors.js';
import { readCases, runCase } from '../conformance/einops.js';

export interface Tally {
  passed: number;
  failed: number;
  lines: string[];
}

function isVitFolder(dir: string): boolean {
  return ['config.json', 'model.safetensors', 'io.safetensors'].every((f) => existsSync(join(dir, f)));
}

/** Expands folders into the .jsonl files and ViT reference folders they hold. */
export function collectTargets(paths: readonly string[]): Array<{ kind: 'jsonl' | 'vit'; path: string }> {
  const out: Array<{ kind: 'jsonl' | 'vit'; path: string }> = [];
  const visit = (p: string, explicit: boolean) => {
    if (!existsSync(p)) throw new EinopsError(`No such file or folder: ${p}`);
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
  for (const p of paths) visit(p, true);
  return out;
}

/** Runs one JSON Lines file, appending report lines. */
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
