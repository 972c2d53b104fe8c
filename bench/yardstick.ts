// The training-step yardstick: PyTorch's own forward + backward graph for the mnist-tiny and
// cifar-tiny ViTs (`test/peers/<config>/pytorch-train-step.onnx`, exported from PyTorch's AOT autograd),
// run on onnxruntime. Inputs: `p_<name>` per parameter (PyTorch module names), `x` [N,C,H,W],
// `y_onehot` [N,10], `tangent` (scalar 1); outputs: the label-smoothed (0.1) cross-entropy loss, then
// the gradient of every parameter in input order. No clipping, no optimizer update.
//
// The bench times it beside einvit's step; test/peers/yardstick.test.ts checks einvit's loss and
// gradients against it. Both feed it einvit's parameters, renamed below.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as OrtModule from 'onnxruntime-node';
import { CheckpointError } from '../src/errors.js';
import { PRESETS, type ViTConfig } from '../src/vit/config.js';
import type { TensorData } from '../src/vit/safetensors.js';

/** The two configs with a yardstick, and the batch its graph was exported for. */
export const YARDSTICK_CONFIGS = {
  'mnist-tiny': { cfg: PRESETS.tiny, batch: 64 },
  'cifar-tiny': { cfg: PRESETS['cifar-tiny'], batch: 256 },
} as const satisfies Record<string, { cfg: ViTConfig; batch: number }>;
export type YardstickConfig = keyof typeof YARDSTICK_CONFIGS;

/** onnxruntime-node as `loadOnnxruntime()` returns it. */
type Ort = typeof import('onnxruntime-node');

const FILE = 'pytorch-train-step.onnx';

/**
 * Path of a config's yardstick: `$EINVIT_PEERS/<config>/` when set and present (another copy of the
 * peers), else the copy committed in `test/peers/<config>/`.
 *
 * @example
 * yardstickPath('mnist-tiny'); // '/…/einvit/test/peers/mnist-tiny/pytorch-train-step.onnx'
 */
export function yardstickPath(config: YardstickConfig): string {
  const override = process.env.EINVIT_PEERS;
  if (override && existsSync(join(override, config, FILE))) return join(override, config, FILE);
  const path = fileURLToPath(new URL(`../test/peers/${config}/${FILE}`, import.meta.url));
  if (!existsSync(path)) throw new CheckpointError(`no yardstick at ${path}`, { rule: 'yardstick' });
  return path;
}

/**
 * The yardstick's input name for one of einvit's (timm) parameter names.
 *
 * @example
 * pytorchName('blocks.0.attn.qkv.weight'); // 'p_blocks.0.qkv.weight'
 * pytorchName('patch_embed.proj.weight'); // 'p_patch.lin.weight' ([D, C*p*p] there)
 */
export function pytorchName(timm: string): string {
  const name = timm
    .replace(/^cls_token$/, 'cls')
    .replace(/^pos_embed$/, 'pos')
    .replace(/^patch_embed\.proj\./, 'patch.lin.')
    .replace(/\.norm1\./, '.n1.')
    .replace(/\.norm2\./, '.n2.')
    .replace(/\.attn\.(qkv|proj)\./, '.$1.')
    .replace(/\.mlp\.(fc1|fc2)\./, '.$1.');
  return `p_${name}`;
}

/** A yardstick session with the feeds of one batch, ready to run. */
export interface Yardstick {
  readonly session: OrtModule.InferenceSession;
  readonly feeds: Record<string, OrtModule.Tensor>;
  /** Runs the graph once; returns the loss and the gradients under einvit's names and shapes. */
  run(): Promise<{ loss: number; grads: Map<string, Float32Array> }>;
  release(): Promise<void>;
}

/**
 * Opens a config's yardstick on onnxruntime and binds einvit's parameters (timm names, as
 * `ViT.state()` gives them), the pixels `[N, C, H, W]` and the labels. Throws CheckpointError when a
 * parameter has no input of its shape (the mapping no longer fits the graph).
 *
 * @example
 * const y = await openYardstick(ort, 'mnist-tiny', model.state(), pixels, labels, { threads: 2 });
 * const { loss, grads } = await y.run();
 */
export async function openYardstick(
  ort: Ort,
  config: YardstickConfig,
  params: ReadonlyMap<string, TensorData>,
  pixels: Float32Array,
  labels: Int32Array,
  opts: { threads?: number } = {},
): Promise<Yardstick> {
  const { cfg, batch } = YARDSTICK_CONFIGS[config];
  const session = await ort.InferenceSession.create(yardstickPath(config), {
    intraOpNumThreads: opts.threads ?? 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const meta = session.inputMetadata as unknown as ReadonlyArray<{ name: string; shape: number[] }>;
  const shapes = new Map(meta.map((m) => [m.name, m.shape]));
  const feeds: Record<string, OrtModule.Tensor> = {};
  const byInput = new Map<string, string>();
  for (const [name, t] of params) {
    const input = pytorchName(name);
    const shape = shapes.get(input);
    // The patch layer's [D, C*p*p] is the conv weight [D, C, p, p] flattened: same values, new shape.
    const data = Float32Array.from(t.data);
    if (!shape || shape.reduce((a, b) => a * b, 1) !== data.length) {
      await session.release();
      throw new CheckpointError(
        `yardstick ${config}: parameter '${name}' [${t.shape.join(', ')}] has no input '${input}' of its size`,
        { rule: 'yardstick' },
      );
    }
    feeds[input] = new ort.Tensor('float32', data, shape);
    byInput.set(input, name);
  }
  const n = cfg.num_labels;
  const onehot = new Float32Array(batch * n);
  labels.forEach((l, i) => (onehot[i * n + l] = 1));
  feeds.x = new ort.Tensor('float32', pixels, [batch, cfg.num_channels, cfg.image_size, cfg.image_size]);
  feeds.y_onehot = new ort.Tensor('float32', onehot, [batch, n]);
  feeds.tangent = new ort.Tensor('float32', Float32Array.of(1), []);
  const missing = session.inputNames.filter((k) => !(k in feeds));
  if (missing.length > 0) {
    await session.release();
    throw new CheckpointError(`yardstick ${config}: no value for input(s) ${missing.join(', ')}`, {
      rule: 'yardstick',
    });
  }
  // Outputs: the loss, then one gradient per parameter input, in input order.
  const paramInputs = session.inputNames.filter((k) => byInput.has(k));
  return {
    session,
    feeds,
    async run() {
      const out = await session.run(feeds);
      const names = session.outputNames;
      const loss = (out[names[0]].data as Float32Array)[0];
      const grads = new Map<string, Float32Array>();
      paramInputs.forEach((input, i) => {
        grads.set(byInput.get(input)!, out[names[i + 1]].data as Float32Array);
      });
      for (const t of Object.values(out)) t.dispose();
      return { loss, grads };
    },
    release: () => session.release(),
  };
}
