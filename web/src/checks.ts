// Correctness checks that run on whatever tfjs backend is active, reading results asynchronously
// (WebGPU has no synchronous read in Node, and in the browser it is slow): the einops conformance
// vectors and the PyTorch ViT reference vectors. Used by the page's "check this backend" button,
// by the browser end-to-end test and by the Node WebGPU (Dawn) test.
import { EinopsError } from '../../src/errors.js';
import { tf } from '../../src/tf.js';
import {
  EXACT_OPS,
  runConformanceOp,
  type ConformanceCase,
  type TensorSpec,
} from '../../src/conformance/einops.js';
import { parseConfig } from '../../src/vit/config.js';
import { ViT } from '../../src/vit/model.js';
import { openSafetensors } from '../../src/vit/safetensors.js';
import { loadCheckpoint } from '../../src/vit/weights.js';

/** Tolerance of one comparison: |a - b| <= atol + rtol * |b|. */
export interface Tolerance {
  rtol: number;
  atol: number;
}

/** The vectors' own default tolerance (test/conformance/manifest.json). */
export const VECTOR_TOLERANCE: Tolerance = { rtol: 1e-5, atol: 1e-6 };

/**
 * A looser tolerance for hardware GPUs, offered by the page's "check this backend" button: their
 * drivers may fuse multiply-adds, flush denormals and reduce in other tree shapes. On the software
 * GPUs of CI (llvmpipe WebGL, SwiftShader and Dawn-on-llvmpipe WebGPU) every case meets the vectors'
 * own tolerance, so the tests use that. Copies (rearrange, repeat, pack, unpack) and
 * max/min/any/all are compared exactly either way.
 */
export const GPU_TOLERANCE: Tolerance = { rtol: 1e-4, atol: 1e-5 };

// tfjs' GPU backends run an op on the CPU when its inputs are small and still on the CPU ("CPU
// forwarding"): the conformance vectors (at most 512 elements) would then never reach a shader.
const CPU_FORWARD_FLAGS = ['WEBGL_CPU_FORWARD', 'WEBGPU_CPU_FORWARD'];

/**
 * Runs `fn` with CPU forwarding off, so every op of a check runs the GPU backend's own kernels.
 *
 * @example
 * const results = await onGpuKernels(() => runConformanceCases(cases));
 */
export async function onGpuKernels<T>(fn: () => Promise<T>): Promise<T> {
  const env = tf.env();
  const registry = (env as unknown as { flagRegistry: Record<string, unknown> }).flagRegistry;
  const flags = CPU_FORWARD_FLAGS.filter((f) => registry[f] !== undefined);
  const saved = flags.map((f) => env.getBool(f));
  for (const f of flags) env.set(f, false);
  try {
    return await fn();
  } finally {
    flags.forEach((f, i) => env.set(f, saved[i]));
  }
}

/** One conformance case's outcome. */
export interface CheckResult {
  id: string;
  passed: boolean;
  detail?: string;
}

type Value = number | boolean | string;

function toNumber(v: Value): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return Number(v);
}

function makeTensor(spec: TensorSpec): tf.Tensor {
  const dtype = spec.dtype === 'bool' ? 'bool' : spec.dtype === 'int32' ? 'int32' : 'float32';
  const values = spec.data.map(toNumber);
  return tf.tensor(dtype === 'bool' ? values.map((v) => v !== 0) : values, spec.shape, dtype);
}

async function compare(
  c: ConformanceCase,
  got: tf.Tensor,
  want: TensorSpec,
  given: Tolerance | undefined,
  what: string,
): Promise<string | undefined> {
  const tol = given ?? c.tolerance ?? VECTOR_TOLERANCE;
  if (got.shape.join(',') !== want.shape.join(',')) {
    return `${what}: shape [${got.shape}] != expected [${want.shape}]`;
  }
  const a = Array.from(await got.data(), Number);
  const b = want.data.map(toNumber);
  const exact = EXACT_OPS.has(c.op) || ['max', 'min', 'any', 'all'].includes(c.reduction ?? '');
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    const ok = exact
      ? a[i] === b[i]
      : a[i] === b[i] || Math.abs(a[i] - b[i]) <= tol.atol + tol.rtol * Math.abs(b[i]);
    if (!ok) return `${what}: element ${i} is ${a[i]}, expected ${b[i]}`;
  }
  return undefined;
}

function disposeAll(x: unknown): void {
  if (x instanceof tf.Tensor) x.dispose();
  else if (Array.isArray(x)) x.forEach(disposeAll);
}

/**
 * Runs einops conformance cases on the active backend's own kernels (CPU forwarding off), each
 * within `tol` (default: the case's own tolerance). Cases tagged `backend-defined` (numpy decides, not einops) are skipped. Never throws;
 * leaks no tensors.
 *
 * @example
 * const failed = (await runConformance(cases)).filter((r) => !r.passed);
 */
export async function runConformance(
  cases: readonly ConformanceCase[],
  tol?: Tolerance,
): Promise<CheckResult[]> {
  return onGpuKernels(() => runCases(cases, tol));
}

async function runCases(
  cases: readonly ConformanceCase[],
  tol: Tolerance | undefined,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const c of cases) {
    if ((c.tags ?? []).includes('backend-defined')) continue;
    let inputs: tf.Tensor[] = [];
    let result: ReturnType<typeof runConformanceOp> | undefined;
    let detail: string | undefined;
    try {
      inputs = c.inputs.map(makeTensor);
      try {
        result = runConformanceOp(c, inputs);
      } catch (e) {
        detail = c.expect.error
          ? e instanceof EinopsError
            ? undefined
            : `threw ${(e as Error).name} instead of EinopsError: ${(e as Error).message}`
          : `threw ${(e as Error).name}: ${(e as Error).message}`;
        out.push({ id: c.id, passed: detail === undefined, detail });
        continue;
      }
      if (c.expect.error) {
        detail = `returned a result; expected an error (${c.expect.rule})`;
      } else if (c.op === 'parse_shape') {
        const sort = (o: Record<string, number>): string =>
          JSON.stringify(Object.fromEntries(Object.entries(o).sort()));
        if (sort(result as Record<string, number>) !== sort(c.expect.dict ?? {})) detail = 'dict differs';
      } else if (c.op === 'pack') {
        const [packed, shapes] = result as [tf.Tensor, number[][]];
        detail = await compare(c, packed, c.expect.outputs![0], tol, 'packed');
        if (!detail && JSON.stringify(shapes) !== JSON.stringify(c.expect.packed_shapes)) {
          detail = 'packed shapes differ';
        }
      } else if (c.op === 'unpack') {
        const outs = result as tf.Tensor[];
        const want = c.expect.outputs ?? [];
        if (outs.length !== want.length) detail = `${outs.length} outputs != expected ${want.length}`;
        for (let i = 0; !detail && i < outs.length; i++) {
          detail = await compare(c, outs[i], want[i], tol, `output ${i}`);
        }
      } else {
        detail = await compare(c, result as tf.Tensor, c.expect as TensorSpec, tol, 'result');
      }
    } catch (e) {
      detail = `runner failed: ${(e as Error).message}`;
    } finally {
      disposeAll(inputs);
      if (result !== undefined && c.op !== 'parse_shape') disposeAll(result);
    }
    out.push({ id: c.id, passed: detail === undefined, detail });
  }
  return out;
}

/** Parses JSON Lines text of conformance cases. */
export function parseCases(text: string): ConformanceCase[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ConformanceCase);
}

/** Largest error of each ViT output against the PyTorch reference: max |a - ref| / max |ref|. */
export type ReferenceErrors = Record<string, number>;

async function relError(
  got: tf.Tensor,
  ref: { shape: number[]; data: Float32Array },
  name: string,
): Promise<number> {
  if (got.shape.join(',') !== ref.shape.join(',')) {
    throw new EinopsError(`${name}: shape [${got.shape}] != reference [${ref.shape}]`);
  }
  const a = await got.data();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref.data[i]));
    scale = Math.max(scale, Math.abs(ref.data[i]));
  }
  return diff / scale;
}

/**
 * Runs one test/vit-reference model on the active backend's own kernels and returns the relative error of its
 * logits, pre-logits, last hidden state and every attention map.
 *
 * @example
 * const errs = await checkReference(configText, modelBytes, ioBytes);
 */
export async function checkReference(
  configText: string,
  modelBytes: Uint8Array,
  ioBytes: Uint8Array,
): Promise<ReferenceErrors> {
  return onGpuKernels(() => referenceErrors(configText, modelBytes, ioBytes));
}

async function referenceErrors(
  configText: string,
  modelBytes: Uint8Array,
  ioBytes: Uint8Array,
): Promise<ReferenceErrors> {
  const cfg = parseConfig(JSON.parse(configText));
  const mf = openSafetensors(modelBytes);
  let model: ViT;
  try {
    model = ViT.fromParameters(cfg, loadCheckpoint(mf, cfg));
  } finally {
    mf.close();
  }
  const io = openSafetensors(ioBytes);
  const ref = (k: string): { shape: number[]; data: Float32Array } => ({
    shape: io.info(k).shape,
    data: io.readFloat32(k),
  });
  const pixels = io.readTensor('pixel_values');
  const out = model.forward(pixels, {
    outputAttentions: true,
    outputPreLogits: true,
    outputLastHiddenState: true,
  });
  try {
    const errs: ReferenceErrors = {
      logits: await relError(out.logits, ref('logits'), 'logits'),
      pre_logits: await relError(out.preLogits!, ref('pre_logits'), 'pre_logits'),
      last_hidden_state: await relError(out.lastHiddenState!, ref('last_hidden_state'), 'last_hidden_state'),
    };
    for (let i = 0; i < out.attentions!.length; i++) {
      errs[`attentions.${i}`] = await relError(out.attentions![i], ref(`attentions.${i}`), `attentions.${i}`);
    }
    return errs;
  } finally {
    pixels.dispose();
    out.logits.dispose();
    out.preLogits?.dispose();
    out.lastHiddenState?.dispose();
    out.attentions?.forEach((t) => t.dispose());
    model.dispose();
    io.close();
  }
}
