#!/usr/bin/env node
// The einvit command line.
import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { EinvitError, UsageError } from '../errors.js';
import { ready } from '../backends/index.js';
import { explain, explainModel } from './explain.js';
import { conformanceCommand } from './conformance.js';
import { numberFlag } from './options.js';
import { evalCommand } from './run.js';
import { invertMode, predictCommand } from './predict.js';
import { attentionCommand } from './attention.js';
import { parseRuntime } from './runtime.js';
import { exportOnnxCommand } from './export-onnx.js';
import { epochs, train } from '../train/trainer.js';

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
  .description('print the tfjs steps a pattern compiles to, or the graph of a whole model (--model)')
  .argument('[pattern]', "e.g. 'b (h w) c -> b c h w'")
  .argument('[lengths...]', 'axis lengths such as h=2')
  .option('--shape <dims>', 'input shape, e.g. 2,3,4')
  .option(
    '--model <dir>',
    'print the whole forward graph of a model folder (config.json + model.safetensors)',
  )
  .option('--op <op>', 'rearrange | reduce | repeat', 'rearrange')
  .option('--reduction <name>', 'reduction for --op reduce', 'sum')
  .option('--graph', 'print the IR graph (a name in --shape, e.g. N,3,32,32, is a symbolic batch)')
  .action(
    async (
      pattern: string | undefined,
      lengths: string[],
      opts: { shape?: string; op: string; reduction: string; graph?: boolean; model?: string },
    ) => {
      await start();
      if (opts.model !== undefined) {
        if (pattern !== undefined)
          throw new UsageError('explain takes a pattern or --model <dir>, not both', {
            rule: 'bad-argument',
          });
        for (const line of await explainModel(opts.model)) console.log(line);
        return;
      }
      if (pattern === undefined || opts.shape === undefined)
        throw new UsageError(
          "explain needs a pattern and --shape (e.g. explain 'b c h w -> b h w c' --shape 2,3,4,4), or --model <dir>",
          { rule: 'bad-argument' },
        );
      for (const line of explain(pattern, { ...opts, shape: opts.shape }, lengths)) console.log(line);
    },
  );

program
  .command('conformance')
  .description(
    'run einops JSON Lines vectors and ViT reference folders (config.json + model.safetensors + io.safetensors)',
  )
  .argument('<paths...>', 'files or folders')
  .option('--runtime <name>', 'ViT folders on tfjs (default) or onnxruntime (the compiled model)', 'tfjs')
  .action(async (paths: string[], o: { runtime: string }) => {
    const backend = await start();
    const { lines, failed } = await conformanceCommand(paths, backend, parseRuntime(o.runtime));
    for (const line of lines) console.log(line);
    process.exitCode = failed > 0 ? 1 : 0;
  });

/** `--engine`: onnxruntime | tfjs (`auto` or absent: the default). */
function parseEngine(name: string | undefined): 'onnxruntime' | 'tfjs' | undefined {
  if (name === undefined || name === 'auto') return undefined;
  if (name === 'onnxruntime' || name === 'tfjs') return name;
  throw new UsageError(`--engine must be onnxruntime, tfjs or auto, got '${name}'`, { rule: 'bad-argument' });
}

const positiveInt = (flag: string) => numberFlag(flag, { integer: true, min: 1 });
const nonNegative = (flag: string) => numberFlag(flag, { min: 0 });

program
  .command('train', { isDefault: false })
  .description('train a ViT (default: the tiny ViT on the embedded MNIST)')
  .option('--data <spec>', 'mnist | cifar10:<dir> | folder:<dir> (default: mnist)')
  .option(
    '--config <name>',
    'tiny | small | cifar-tiny | einops-tutorial | scratch-tutorial | cifar-tutorial | <config.json> (default: tiny)',
  )
  .option('--epochs <n>', 'epochs (default: the recipe of the config)', positiveInt('epochs'))
  .option('--batch-size <n>', 'batch size', positiveInt('batch-size'))
  .option('--lr <x>', 'peak learning rate (one-cycle schedule)', numberFlag('lr', { above: 0 }))
  .option('--weight-decay <x>', 'AdamW weight decay', nonNegative('weight-decay'))
  .option('--label-smoothing <x>', 'label smoothing', numberFlag('label-smoothing', { min: 0, below: 1 }))
  .option('--clip <x>', 'gradient norm clip (0: off)', nonNegative('clip'))
  .option(
    '--shift <px>',
    'random shift augmentation in pixels (0: off)',
    numberFlag('shift', { integer: true, min: 0 }),
  )
  .option(
    '--rotate <deg>',
    'random rotation augmentation, up to this many degrees either way (0: off)',
    numberFlag('rotate', { min: 0 }),
  )
  .option(
    '--scale <x>',
    'random zoom augmentation by a factor in [1 - x, 1 + x] (0: off)',
    numberFlag('scale', { min: 0, below: 1 }),
  )
  .option('--seed <n>', 'random seed (default: 0)', numberFlag('seed', { integer: true }))
  .option(
    '--engine <name>',
    'onnxruntime: the whole training step as one compiled graph (default where onnxruntime-node loads; ' +
      'else tfjs, with a note) | tfjs: eager, on the --backend; on --resume: the run keeps its engine unless this is given',
  )
  .option(
    '--workers <n>',
    'extra threads (default: 1 with 2 or more CPUs, else 0): tfjs engine: worker threads computing ' +
      'gradients (data parallel); onnxruntime engine: onnxruntime runs workers + 1 threads',
    numberFlag('workers', { integer: true, min: 0 }),
  )
  .option('--out <dir>', 'output folder (default: runs/<timestamp>)')
  .option('--resume', 'continue the run in --out where it stopped, with its own options')
  .option('--limit-train <n>', 'use only this many training images', positiveInt('limit-train'))
  .option('--limit-test <n>', 'use only this many test images', positiveInt('limit-test'))
  .action(async (o: Record<string, unknown>) => {
    // Ctrl-C from here on stops training cleanly (a checkpoint is saved once training has begun).
    const stop = new AbortController();
    const onSigint = () => stop.abort();
    process.on('SIGINT', onSigint);
    try {
      const backend = await start();
      const out = (o.out as string | undefined) ?? `runs/${new Date().toISOString().replace(/[:.]/g, '-')}`;
      if (o.resume && o.out === undefined)
        throw new UsageError('--resume needs --out <dir> of the run to continue');
      if (stop.signal.aborted) {
        console.log('interrupted before training started: nothing was written');
        return;
      }
      const started = performance.now();
      const result = await train({
        data: o.data as string | undefined,
        config: o.config as string | undefined,
        epochs: o.epochs as number | undefined,
        batchSize: o.batchSize as number | undefined,
        lr: o.lr as number | undefined,
        weightDecay: o.weightDecay as number | undefined,
        labelSmoothing: o.labelSmoothing as number | undefined,
        clip: o.clip as number | undefined,
        shift: o.shift as number | undefined,
        rotate: o.rotate as number | undefined,
        scale: o.scale as number | undefined,
        seed: o.seed as number | undefined,
        engine: parseEngine(o.engine as string | undefined),
        // a resumed run keeps its own number of workers unless --workers is given
        workers:
          (o.workers as number | undefined) ?? (o.resume ? undefined : availableParallelism() >= 2 ? 1 : 0),
        out,
        resume: Boolean(o.resume),
        limitTrain: o.limitTrain as number | undefined,
        limitTest: o.limitTest as number | undefined,
        signal: stop.signal,
      });
      result.model.dispose();
      if (result.alreadyFinished || result.interrupted) return;
      const last = result.metrics.at(-1);
      const wall = (performance.now() - started) / 1000;
      if (last) {
        console.log(
          `done on ${result.engine === 'tfjs' ? `tfjs (${backend})` : 'onnxruntime'} in ${wall.toFixed(1)} s: test accuracy ${(100 * last.test_acc).toFixed(2)}% after ${epochs(last.epoch)}`,
        );
      }
      console.log(`model, checkpoint, metrics.jsonl, curves.png and attention.png are in ${out}`);
    } finally {
      process.off('SIGINT', onSigint);
    }
  });

program
  .command('eval')
  .description('accuracy, per-class accuracy and confusion matrix of a model on a test set')
  .requiredOption('--model <dir>', 'folder with config.json + model.safetensors')
  .option('--data <spec>', 'mnist | cifar10:<dir> | folder:<dir>', 'mnist')
  .option('--runtime <name>', 'auto (onnxruntime where it loads, else tfjs) | onnxruntime | tfjs', 'auto')
  .action(async (o: { model: string; data: string; runtime: string }) => {
    await start();
    for (const line of await evalCommand(o.model, o.data, parseRuntime(o.runtime))) console.log(line);
  });

const INVERT_HELP =
  'auto: invert images whose polarity (dark/light background) differs from the training data; always; never';

program
  .command('predict')
  .description('top-5 classes of images')
  .requiredOption('--model <dir>', 'folder with config.json + model.safetensors')
  .option('--top <k>', 'how many classes (at most the number of classes)', positiveInt('top'), 5)
  .option('--invert <mode>', INVERT_HELP, 'auto')
  .option('--runtime <name>', 'auto (onnxruntime where it loads, else tfjs) | onnxruntime | tfjs', 'auto')
  .argument('<images...>', 'PNG or JPEG files')
  .action(async (images: string[], o: { model: string; top: number; invert: string; runtime: string }) => {
    await start();
    const lines = await predictCommand(o.model, images, o.top, invertMode(o.invert), parseRuntime(o.runtime));
    for (const line of lines) console.log(line);
  });

program
  .command('attention')
  .description('class-token attention maps (last layer and rollout) overlaid on images, as a PNG')
  .requiredOption('--model <dir>', 'folder with config.json + model.safetensors')
  .requiredOption('--out <file>', 'PNG to write')
  .option('--invert <mode>', INVERT_HELP, 'auto')
  .argument('<images...>', 'PNG or JPEG files')
  .option('--runtime <name>', 'auto (onnxruntime where it loads, else tfjs) | onnxruntime | tfjs', 'auto')
  .action(async (images: string[], o: { model: string; out: string; invert: string; runtime: string }) => {
    await start();
    const lines = await attentionCommand(
      o.model,
      images,
      o.out,
      invertMode(o.invert),
      parseRuntime(o.runtime),
    );
    for (const line of lines) console.log(line);
    console.log(`wrote ${o.out}`);
  });

program
  .command('export-onnx')
  .description('write a model folder as one ONNX file (opset 17, dynamic batch) for onnxruntime')
  .requiredOption('--model <dir>', 'folder with config.json + model.safetensors')
  .requiredOption('--out <file>', '.onnx file to write')
  .option('--batch <n>', "'dynamic' or a fixed batch size", 'dynamic')
  .option('--hidden-states', 'also output every hidden state')
  .option('--attentions', 'also output every attention map')
  .action(
    async (o: {
      model: string;
      out: string;
      batch: string;
      hiddenStates?: boolean;
      attentions?: boolean;
    }) => {
      await start();
      for (const line of await exportOnnxCommand(o.model, o.out, o)) console.log(line);
    },
  );

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof EinvitError) {
    console.error(`einvit: ${e.message}`);
    process.exit(2);
  }
  throw e;
});
