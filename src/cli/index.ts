#!/usr/bin/env node
// The einvit command line.
import { Command } from 'commander';
import { EinopsError } from '../errors.js';
import { ready } from '../backends/index.js';
import { explain } from './explain.js';
import { collectTargets, runJsonl, type Tally } from './conformance.js';
import { runVitFolder } from './vit-conformance.js';

const program = new Command();
program
  .name('einvit')
  .description('einops-style patterns on TensorFlow.js, and a Vision Transformer built with them')
  .option(
    '--backend <name>',
    'tfjs backend: tensorflow, webgpu, webgl, wasm, cpu (default: best available; env EINVIT_BACKEND)',
  );

async function start(): Promise<string> {
  const opts = program.opts<{ backend?: string }>();
  return ready(opts.backend);
}

program
  .command('explain')
  .description('print the tfjs steps a pattern compiles to')
  .argument('<pattern>', "e.g. 'b (h w) c -> b c h w'")
  .argument('[lengths...]', 'axis lengths such as h=2')
  .requiredOption('--shape <dims>', 'input shape, e.g. 2,3,4')
  .option('--op <op>', 'rearrange | reduce | repeat', 'rearrange')
  .option('--reduction <name>', 'reduction for --op reduce', 'sum')
  .action(
    async (pattern: string, lengths: string[], opts: { shape: string; op: string; reduction: string }) => {
      await start();
      for (const line of explain(pattern, opts, lengths)) console.log(line);
    },
  );

program
  .command('conformance')
  .description(
    'run einops JSON Lines vectors and ViT reference folders (config.json + model.safetensors + io.safetensors)',
  )
  .argument('<paths...>', 'files or folders')
  .action(async (paths: string[]) => {
    const backend = await start();
    const tally: Tally = { passed: 0, failed: 0, lines: [] };
    for (const target of collectTargets(paths)) {
      if (target.kind === 'jsonl') runJsonl(target.path, tally);
      else await runVitFolder(target.path, tally);
    }
    for (const line of tally.lines) console.log(line);
    console.log(`backend: ${backend}`);
    console.log(`${tally.passed} passed, ${tally.failed} failed`);
    process.exitCode = tally.failed > 0 ? 1 : 0;
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof EinopsError) {
    console.error(`einvit: ${e.message}`);
    process.exit(2);
  }
  throw e;
});
