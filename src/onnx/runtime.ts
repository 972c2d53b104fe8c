// onnxruntime-node behind einvit's errors: loading is optional (a failed import gives a message and
// `null`, so callers fall back to tfjs), inputs are checked against the graph's declared shapes
// before onnxruntime sees them, and files that are not einvit's ONNX get a CheckpointError.
import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import { tf } from '../tf.js';
import { CheckpointError, CompileError, RuntimeFailure } from '../errors.js';
import { decodeModel, ONNX_DTYPE } from './proto.js';
import { PRODUCER } from './emit.js';
import type { DType } from '../ir/kinds.js';

type Ort = typeof import('onnxruntime-node');

let ortPromise: Promise<Ort | null> | undefined;
let unavailable: string | undefined;
let importer: () => Promise<unknown> = () => import('onnxruntime-node');

/**
 * Replaces how onnxruntime-node is imported (tests simulate a machine where it cannot load);
 * without an argument restores the real import.
 *
 * @example
 * setOnnxruntimeImporter(() => Promise.reject(new Error('no binary for this platform')));
 */
export function setOnnxruntimeImporter(fn?: () => Promise<unknown>): void {
  importer = fn ?? (() => import('onnxruntime-node'));
  ortPromise = undefined;
  unavailable = undefined;
}

/**
 * onnxruntime-node, or `null` when it cannot load on this machine (the reason is in
 * {@link onnxruntimeUnavailable}). Never throws.
 *
 * @example
 * const ort = await loadOnnxruntime();
 * if (!ort) console.warn(onnxruntimeUnavailable());
 */
export function loadOnnxruntime(): Promise<Ort | null> {
  ortPromise ??= importer().then(
    (m) => ((m as { default?: Ort }).default ?? m) as Ort,
    (e: unknown) => {
      unavailable = `onnxruntime-node could not be loaded (${(e as Error).message.split('\n')[0]}); using the tfjs path`;
      return null;
    },
  );
  return ortPromise;
}

/** Why onnxruntime is unavailable, after {@link loadOnnxruntime} returned null. */
export function onnxruntimeUnavailable(): string | undefined {
  return unavailable;
}

/** A declared graph input or output: name, dtype, dims (a string is a dynamic axis). */
export interface IoSpec {
  readonly name: string;
  readonly dtype: DType | 'int64';
  readonly dims: ReadonlyArray<number | string>;
}

/** Options of {@link OnnxSession.create}. */
export interface SessionOptions {
  /** Intra-op threads (default: every core); fixed so results do not depend on the machine's load. */
  readonly threads?: number;
  /** Reject models einvit did not write (default false). */
  readonly requireEinvit?: boolean;
  /** Where the model came from, for messages. */
  readonly source?: string;
}

const FROM_ONNX: Record<number, IoSpec['dtype']> = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool' };

function fmtDims(d: ReadonlyArray<number | string>): string {
  return `[${d.join(', ')}]`;
}

/** The declared inputs and outputs of a model, and whether einvit wrote it; CheckpointError if unreadable. */
export function inspectModel(
  bytes: Uint8Array,
  source: string,
): { inputs: IoSpec[]; outputs: IoSpec[]; einvit: boolean } {
  let m;
  try {
    m = decodeModel(bytes);
  } catch (e) {
    throw new CheckpointError(
      `${source} is not an ONNX model (protobuf decode failed: ${(e as Error).message})`,
      {
        rule: 'onnx-file',
        cause: e,
      },
    );
  }
  if (!m.graph || !m.graph.node || m.graph.node.length === 0 || !m.opsetImport?.length) {
    throw new CheckpointError(`${source} is not an ONNX model (no graph or no opset)`, { rule: 'onnx-file' });
  }
  const spec = (v: { name?: string; type?: unknown }): IoSpec => {
    const t = (
      v.type as {
        tensorType?: { elemType?: number; shape?: { dim?: Array<{ dimValue?: number; dimParam?: string }> } };
      }
    )?.tensorType;
    return {
      name: v.name ?? '',
      dtype: FROM_ONNX[t?.elemType ?? 1] ?? 'float32',
      dims: (t?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0))),
    };
  };
  const inits = new Set((m.graph.initializer ?? []).map((i) => (i as { name?: string }).name));
  return {
    inputs: (m.graph.input ?? []).filter((i) => !inits.has(i.name)).map(spec),
    outputs: (m.graph.output ?? []).map(spec),
    einvit: (m.metadataProps ?? []).some((p) => p.key === `${PRODUCER}.format`),
  };
}

/** Host data for one input. */
export type Feed =
  tf.Tensor | { data: Float32Array | Int32Array | Uint8Array | BigInt64Array; shape: readonly number[] };

/**
 * One onnxruntime inference session with einvit's checks.
 *
 * @example
 * const s = await OnnxSession.create(toOnnx(graph));
 * const { y } = await s.run({ x: tf.ones([2, 4]) });   // tfjs tensors
 * s.dispose();
 */
export class OnnxSession {
  private constructor(
    private readonly ort: Ort,
    private readonly session: import('onnxruntime-node').InferenceSession,
    readonly inputs: IoSpec[],
    readonly outputs: IoSpec[],
    readonly source: string,
  ) {}

  /**
   * Loads a model from bytes. Throws RuntimeFailure when onnxruntime is unavailable (check
   * {@link loadOnnxruntime} first to fall back), CheckpointError for a corrupt or foreign model.
   */
  static async create(bytes: Uint8Array, options: SessionOptions = {}): Promise<OnnxSession> {
    const source = options.source ?? 'the ONNX model';
    const info = inspectModel(bytes, source);
    if (options.requireEinvit && !info.einvit) {
      throw new CheckpointError(
        `${source} was not written by einvit (no einvit.format metadata); export it with einvit export-onnx`,
        {
          rule: 'onnx-foreign',
        },
      );
    }
    const ort = await loadOnnxruntime();
    if (!ort)
      throw new RuntimeFailure(unavailable ?? 'onnxruntime-node is unavailable', {
        rule: 'onnxruntime-unavailable',
      });
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: options.threads ?? availableParallelism(),
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (e) {
      throw new CheckpointError(`onnxruntime cannot load ${source}: ${(e as Error).message.split('\n')[0]}`, {
        rule: 'onnx-file',
        cause: e,
      });
    }
    return new OnnxSession(ort, session, info.inputs, info.outputs, source);
  }

  /**
   * Loads an `.onnx` file (einvit's by default: `requireEinvit` true).
   *
   * @example
   * const s = await OnnxSession.load('model.onnx');
   */
  static async load(path: string, options: SessionOptions = {}): Promise<OnnxSession> {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (e) {
      throw new CheckpointError(`Cannot read ONNX file ${path}: ${(e as Error).message}`, {
        rule: 'onnx-file',
        cause: e,
      });
    }
    return OnnxSession.create(bytes, { requireEinvit: true, source: path, ...options });
  }

  private check(feeds: Record<string, Feed>): void {
    const bound = new Map<string, number>();
    for (const spec of this.inputs) {
      const f = feeds[spec.name];
      if (!f)
        throw new CompileError(`${this.source}: input '${spec.name}' ${fmtDims(spec.dims)} is missing`, {
          rule: 'input-shape',
        });
      const shape = f.shape;
      const ok =
        shape.length === spec.dims.length &&
        spec.dims.every((d, i) => {
          if (typeof d === 'number') return d === shape[i];
          const prev = bound.get(d);
          bound.set(d, shape[i]);
          return prev === undefined || prev === shape[i];
        });
      if (!ok) {
        throw new CompileError(
          `input '${spec.name}' has shape ${fmtDims(shape)} but the compiled graph takes ${fmtDims(spec.dims)}`,
          { rule: 'input-shape' },
        );
      }
    }
    for (const k of Object.keys(feeds)) {
      if (!this.inputs.some((s) => s.name === k)) {
        throw new CompileError(
          `${this.source} has no input '${k}' (inputs: ${this.inputs.map((s) => s.name).join(', ')})`,
          {
            rule: 'input-shape',
          },
        );
      }
    }
  }

  /** Runs with named inputs; returns raw onnxruntime tensors by output name (caller owns nothing to free). */
  async runRaw(feeds: Record<string, Feed>): Promise<Record<string, import('onnxruntime-node').Tensor>> {
    this.check(feeds);
    const ortFeeds: Record<string, import('onnxruntime-node').Tensor> = {};
    for (const spec of this.inputs) {
      const f = feeds[spec.name];
      const data = f instanceof tf.Tensor ? f.dataSync() : f.data;
      const dims = [...f.shape];
      const type = spec.dtype === 'bool' ? 'bool' : spec.dtype;
      let arr: Float32Array | Int32Array | Uint8Array | BigInt64Array;
      if (spec.dtype === 'float32')
        arr = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
      else if (spec.dtype === 'int32')
        arr = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
      else if (spec.dtype === 'int64')
        arr =
          data instanceof BigInt64Array
            ? data
            : BigInt64Array.from(Array.from(data as ArrayLike<number>, (v) => BigInt(v)));
      else arr = Uint8Array.from(data as ArrayLike<number>, (v) => (v ? 1 : 0));
      ortFeeds[spec.name] = new this.ort.Tensor(type, arr as never, dims);
    }
    try {
      return (await this.session.run(ortFeeds)) as Record<string, import('onnxruntime-node').Tensor>;
    } catch (e) {
      throw new RuntimeFailure(
        `onnxruntime failed running ${this.source}: ${(e as Error).message.split('\n')[0]}`,
        {
          rule: 'onnxruntime-run',
          cause: e,
        },
      );
    }
  }

  /**
   * Runs with named inputs (tfjs tensors or typed arrays with shapes); returns tfjs tensors by
   * output name. Input shapes are checked against the graph (CompileError with both shapes).
   */
  async run(feeds: Record<string, Feed>): Promise<Record<string, tf.Tensor>> {
    const raw = await this.runRaw(feeds);
    const out: Record<string, tf.Tensor> = {};
    for (const spec of this.outputs) {
      const t = raw[spec.name];
      const dims = t.dims as number[];
      if (t.type === 'bool')
        out[spec.name] = tf.tensor(
          Array.from(t.data as Uint8Array, (v) => v !== 0),
          dims,
          'bool',
        );
      else if (t.type === 'int64')
        out[spec.name] = tf.tensor(Int32Array.from(t.data as BigInt64Array, Number), dims, 'int32');
      else
        out[spec.name] = tf.tensor(t.data as Float32Array | Int32Array, dims, t.type as 'float32' | 'int32');
      t.dispose();
    }
    return out;
  }

  /** Releases the native session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}

export { ONNX_DTYPE };
