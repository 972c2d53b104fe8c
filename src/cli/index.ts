#!/usr/bin/env node
// The einvit command line.
import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { EinopsError, EinvitError } from '../errors.js';
import { ready } from '../backends/index.js';
import { explain } from './explain.js';
import { collectTargets, runJsonl, type Tally } from './conformance.js';
import { runVitFolder } from './vit-conformance.js';
import { evalCommand } from './run.js';
import { invertMode, predictCommand } from './predict.js';
import { attentionCommand } from './attention.js';
import { train } from '../train/trainer.js';

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

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new EinopsError(`--${name} must be a number, got '${v}'`);
    return n;
  };
}

program
  .command('train', { isDefault: false })
  .description('train a ViT (default: the tiny ViT on the embedded MNIST)')
  .option('--data <spec>', 'mnist | cifar10:<dir> | folder:<dir>', 'mnist')
  .option('--config <name>', 'tiny | small | cifar-tiny | <config.json>', 'tiny')
  .option('--epochs <n>', 'epochs (default: the recipe of the config)', num('epochs'))
  .option('--batch-size <n>', 'batch size', num('batch-size'))
  .option('--lr <x>', 'peak learning rate (one-cycle schedule)', num('lr'))
  .option('--weight-decay <x>', 'AdamW weight decay', num('weight-decay'))
  .option('--label-smoothing <x>', 'label smoothing', num('label-smoothing'))
  .option('--clip <x>', 'gradient norm clip (0: off)', num('clip'))
  .option('--shift <px>', 'random shift augmentation in pixels (0: off)', num('shift'))
  .option('--seed <n>', 'random seed', num('seed'), 0)
  .option(
    '--workers <n>',
    'extra threads computing gradients (data parallel; default: 1 with 2 or more CPUs, else 0)',
    num('workers'),
  )
  .option('--out <dir>', 'output folder (default: runs/<timestamp>)')
  .option('--resume', 'continue the run in --out where it stopped')
  .option('--limit-train <n>', 'use only this many training images', num('limit-train'))
  .option('--limit-test <n>', 'use only this many test images', num('limit-test'))
  .action(async (o: Record<string, unknown>) => {
    const backend = await start();
    const out = (o.out as string | undefined) ?? `runs/${new Date().toISOString().replace(/[:.]/g, '-')}`;
    if (o.resume && o.out === undefined)
      throw new EinopsError('--resume needs --out <dir> of the run to continue');
    const started = performance.now();
    const result = await train({
      data: o.data as string,
      config: o.config as string,
      epochs: o.epochs as number | undefined,
      batchSize: o.batchSize as number | undefined,
      lr: o.lr as number | undefined,
      weightDecay: o.weightDecay as number | undefined,
      labelSmoothing: o.labelSmoothing as number | undefined,
      clip: o.clip as number | undefined,
      shift: o.shift as number | undefined,
      seed: o.seed as number,
      workers: (o.workers as number | undefined) ?? (availableParallelism() >= 2 ? 1 : 0),
      out,
      resume: Boolean(o.resume),
      limitTrain: o.limitTrain as number | undefined,
      limitTest: o.limitTest as number | undefined,
    });
    const last = result.metrics.at(-1);
    const wall = (performance.now() - started) / 1000;
    if (last) {
      console.log(
        `done on ${backend} in ${wall.toFixed(1)} s: test accuracy ${(100 * last.test_acc).toFixed(2)}% after ${last.epoch} epochs`,
      );
    }
    console.log(`checkpoint, metrics.jsonl, curves.png and attention.png are in ${out}`);
    result.model.dispose();
  });

program
  .command('eval')
  .description('accuracy, per-class accuracy and confusion matrix of a model on a test set')
  .requiredOption('--model <dir>', 'folder with config.json + model.safetensors')
  .option('--data <spec>', 'mnist | cifar10:<dir> | folder:<dir>', 'mnist')
  .action(async (o: { model: string; data: string }) => {
    await start();
    for (const line of await evalCommand(o.model, o.data)) console.log(line);
  });

const INVERT_HELP =
  'auto: invert images whose polarity (dark/light background) differs from the training data; always; never';

program
  .command('predict')
  .description('top-5 classes of images')
  .requiredOption('--model <dir>', 'folder with config.json + model.safetensors')
  .option('--top <k>', 'how many classes', num('top'), 5)
  .option('--invert <mode>', INVERT_HELP, 'auto')
  .argument('<images...>', 'PNG or JPEG files')
  .action(async (images: string[], o: { model: string; top: number; invert: string }) => {
    await start();
    for (const line of await predictCommand(o.model, images, o.top, invertMode(o.invert))) console.log(line);
  });

program
  .command('attention')
  .description('class-token attention maps (last layer and rollout) overlaid on images, as a PNG')
  .requiredOption('--model <dir>', 'folder with config.json + model.safetensors')
  .requiredOption('--out <file>', 'PNG to write')
  .option('--invert <mode>', INVERT_HELP, 'auto')
  .argument('<images...>', 'PNG or JPEG files')
  .action(async (images: string[], o: { model: string; out: string; invert: string }) => {
    await start();
    for (const line of await attentionCommand(o.model, images, o.out, invertMode(o.invert)))
      console.log(line);
    console.log(`wrote ${o.out}`);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof EinvitError) {
    console.error(`einvit: ${e.message}`);
    process.exit(2);
  }
  throw e;
});
