// Data-parallel gradients over worker_threads. tfjs' wasm backend runs on one thread in Node, so a
// training step uses one core; here the main thread computes one shard of the batch while each worker
// thread (its own tfjs engine and ViT replica) computes another, and the shard gradients are averaged.
//
// Memory: parameters go to the workers through one SharedArrayBuffer (a region per parameter, written
// once per step and read by every worker); each worker has its own shared gradient and input buffers.
// Messages carry only small fields (sizes, labels, seeds, losses).
//
// Measured (bench/parallel.ts, wasm, 2 cores, load ~1-2, forward + backward + AdamW): tiny ViT at batch
// 128 153 -> 205 img/s (1.35x; per-op dispatch cost is paid by both threads), cifar-tiny at batch 256
// 58 -> 96 img/s (1.66x). On a machine whose cores are already busy it is slower than one thread.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tf } from '../tf.js';
import { DataError, RuntimeFailure, UsageError } from '../errors.js';
import type { ViT } from '../vit/model.js';
import type { ViTConfig } from '../vit/config.js';
import { expectedParameters } from '../vit/weights.js';

/** One batch as the trainer's `batches()` yields it: NCHW float32 pixels and int32 labels. */
export interface GradBatch {
  /** size*C*H*W values, NCHW. */
  images: Float32Array;
  labels: Int32Array;
  size: number;
}

export interface GradOptions {
  /** Label smoothing of the cross-entropy, as in `tf.losses.softmaxCrossEntropy`. */
  labelSmoothing: number;
  /** Dropout seed of the step; shard i runs `forward` with seed `seed * 16 + i`. */
  seed: number;
}

export interface GradResult {
  /** Mean loss over the batch (size-weighted mean of the shard means). */
  loss: number;
  /** Number of images whose arg-max logit equals the label. */
  correct: number;
  /** Gradient of the mean loss per parameter (timm names), in the main thread's engine; caller disposes. */
  grads: Map<string, tf.Tensor>;
}

export interface ParallelOptions {
  /** Extra worker threads (0 = everything on the main thread). On a 2-core machine: 1. */
  workers: number;
  /** Backend of the workers; default: the main thread's current backend. */
  backend?: string;
}

/** Loss, hits and gradients of one shard, as plain arrays (what a worker sends back). */
export interface ShardResult {
  loss: number;
  correct: number;
  /** Per parameter name, in `names` order: the gradient values, or undefined when it has none. */
  grads: (Float32Array | undefined)[];
}

/**
 * Mean cross-entropy loss, arg-max hits and gradients of `model` on one batch: the training step's
 * loss (training-mode forward with dropout seed `opts.seed`, `softmaxCrossEntropy` with label
 * smoothing). Serial training and every shard of `ParallelGrads` go through this one function.
 * Gradients are keyed by parameter name (timm names); the caller disposes them.
 *
 * @example
 * const { loss, correct, grads } = batchGradients(model, { images, labels, size: 64 }, { labelSmoothing: 0.1, seed: 3 });
 * tf.dispose([...grads.values()]);
 */
export function batchGradients(model: ViT, batch: GradBatch, opts: GradOptions): GradResult {
  const cfg = model.config;
  const params = model.parameters();
  const nameOf = new Map([...params].map(([name, v]) => [v.name, name]));
  const grads = new Map<string, tf.Tensor>();
  let loss = 0;
  let correct = 0;
  // Returns nothing: tf.tidy walks every element of typed arrays it is handed back (seconds per step).
  tf.tidy(() => {
    const x = tf.tensor4d(batch.images, [batch.size, cfg.num_channels, cfg.image_size, cfg.image_size]);
    const labelIds = tf.tensor1d(batch.labels, 'int32');
    const onehot = tf.oneHot(labelIds, cfg.num_labels);
    let hits: tf.Tensor | undefined;
    const { value, grads: byVariable } = tf.variableGrads(() => {
      const o = model.forward(x, { training: true, seed: opts.seed });
      // kept: variableGrads disposes everything else made in here
      hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(o.logits, 1), labelIds), 'float32')));
      return tf.losses.softmaxCrossEntropy(onehot, o.logits, undefined, opts.labelSmoothing) as tf.Scalar;
    }, [...params.values()]);
    for (const [key, g] of Object.entries(byVariable)) grads.set(nameOf.get(key)!, tf.keep(g));
    const both = tf.stack([value, hits!]).dataSync();
    hits!.dispose();
    loss = both[0];
    correct = both[1];
  });
  return { loss, correct, grads };
}

/**
 * `batchGradients` on one shard, downloaded as plain arrays in `names` order (what a worker sends
 * back). Gradients are written into `into[i]` when given (a shared-memory region), else into fresh
 * arrays.
 *
 * @example
 * const r = shardGradients(model, images, labels, 6, { labelSmoothing: 0.1, seed: 16 }, [...names]);
 */
export function shardGradients(
  model: ViT,
  images: Float32Array,
  labels: Int32Array,
  size: number,
  opts: GradOptions,
  names: readonly string[],
  into?: readonly Float32Array[],
): ShardResult {
  const r = batchGradients(model, { images, labels, size }, opts);
  try {
    const grads = names.map((name, i) => {
      const g = r.grads.get(name);
      if (!g) return undefined;
      const data = g.dataSync() as Float32Array;
      if (!into) return data.slice();
      into[i].set(data);
      return into[i];
    });
    return { loss: r.loss, correct: r.correct, grads };
  } finally {
    tf.dispose([...r.grads.values()]);
  }
}

/**
 * Contiguous shard sizes for `size` images over `parts` threads: as equal as possible, the larger
 * shards last (shard 0 runs on the main thread, which also combines and steps the optimiser; it is
 * empty only when the batch has fewer images than threads).
 *
 * @example
 * shardSizes(13, 2); // [6, 7]
 */
export function shardSizes(size: number, parts: number): number[] {
  const base = Math.floor(size / parts);
  const rem = size % parts;
  return Array.from({ length: parts }, (_, i) => base + (i >= parts - rem ? 1 : 0));
}

/** One parameter's place in the shared buffers. */
interface Slot {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

/** What grad-worker.ts receives as workerData. */
export interface WorkerInit {
  cfg: ViTConfig;
  backend: string;
  slots: Slot[];
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
}

/** main -> worker: compute one shard. The input buffer is resent so it can grow. */
export interface StepMessage {
  type: 'step';
  input: SharedArrayBuffer;
  labels: Int32Array;
  size: number;
  labelSmoothing: number;
  seed: number;
}

/** worker -> main. */
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'done'; loss: number; correct: number; has: boolean[] }
  | { type: 'error'; message: string };

interface Pending {
  resolve: (r: ShardResult) => void;
  reject: (e: Error) => void;
}

class GradWorker {
  readonly worker: Worker;
  input = new SharedArrayBuffer(0);
  readonly grads: Float32Array[];
  private pending?: Pending;
  private failure?: string;
  private readyWait: Promise<void>;

  constructor(url: URL, init: WorkerInit, gradViews: Float32Array[]) {
    this.grads = gradViews;
    this.worker = startWorker(url, init);
    this.worker.unref();
    this.worker.ref(); // held until ready; compute() refs it again while a step is pending
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.readyWait = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    const fail = (message: string) => {
      this.failure ??= message;
      const e = new RuntimeFailure(`ParallelGrads: gradient worker failed: ${this.failure}`);
      readyReject(e);
      this.settle()?.reject(e);
    };
    this.worker.on('message', (m: WorkerReply) => {
      if (m.type === 'ready') {
        this.worker.unref();
        readyResolve();
      } else if (m.type === 'error') fail(m.message);
      else {
        const p = this.settle();
        p?.resolve({
          loss: m.loss,
          correct: m.correct,
          grads: m.has.map((h, i) => (h ? this.grads[i] : undefined)),
        });
      }
    });
    this.worker.on('error', (e: Error) => fail(e.message));
    this.worker.on('exit', (code) => fail(`the worker thread exited (code ${code})`));
  }

  ready(): Promise<void> {
    return this.readyWait;
  }

  private settle(): Pending | undefined {
    const p = this.pending;
    this.pending = undefined;
    if (p) this.worker.unref();
    return p;
  }

  run(images: Float32Array, labels: Int32Array, size: number, opts: GradOptions & { seed: number }) {
    if (this.failure !== undefined) {
      return Promise.reject(new RuntimeFailure(`ParallelGrads: gradient worker failed: ${this.failure}`));
    }
    if (this.input.byteLength < images.byteLength) this.input = new SharedArrayBuffer(images.byteLength);
    new Float32Array(this.input, 0, images.length).set(images);
    const msg: StepMessage = {
      type: 'step',
      input: this.input,
      labels,
      size,
      labelSmoothing: opts.labelSmoothing,
      seed: opts.seed,
    };
    return new Promise<ShardResult>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.ref(); // an unref'd worker would not keep the process alive while we wait for it
      this.worker.postMessage(msg);
    });
  }

  terminate(): Promise<number> {
    this.failure ??= 'disposed';
    this.settle()?.reject(new RuntimeFailure('ParallelGrads: disposed while a step was running'));
    return this.worker.terminate();
  }
}

/** URL of tsx's ESM API module (the `import` condition of its `./esm/api` export). */
function tsxEsmApi(): string {
  const pkgPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as {
    exports: Record<string, { import: { default: string } }>;
  };
  return new URL(pkg.exports['./esm/api'].import.default, pathToFileURL(pkgPath)).href;
}

/** The worker script: compiled JS next to this file, or the .ts source under tsx / vitest. */
function startWorker(base: URL, init: WorkerInit): Worker {
  if (base.pathname.endsWith('.ts')) {
    // Node 20 does not apply `execArgv: ['--import', 'tsx']` hooks to a worker's entry module, so a
    // tiny bootstrap registers tsx's ESM hooks (its `tsx/esm/api` register()), then imports the worker.
    const script = new URL('./grad-worker.ts', base).href;
    const boot =
      `import(${JSON.stringify(tsxEsmApi())}).then((m) => { m.register(); ` +
      `return import(${JSON.stringify(script)}); });`;
    return new Worker(boot, { eval: true, workerData: init });
  }
  return new Worker(new URL('./grad-worker.js', base), { workerData: init });
}

/**
 * Data-parallel loss and gradients: the main thread computes shard 0 with the caller's model while
 * `workers` worker threads compute the others on their own ViT replicas, then the shard gradients are
 * averaged weighted by shard size (= the full-batch gradient of the mean loss, up to float rounding).
 * Shards are contiguous and deterministic (`shardSizes`); shard i uses dropout seed `seed * 16 + i`.
 * Call `dispose()` to stop the threads (they are unref'd, so a forgotten dispose does not hang Node).
 *
 * @example
 * const pg = await ParallelGrads.create(cfg, { workers: 1 });
 * const { loss, correct, grads } = await pg.compute(model, batch, { labelSmoothing: 0.1, seed: step });
 * opt.step(clipByGlobalNorm(grads, 1).grads, lr); // then dispose the gradients
 * await pg.dispose();
 */
export class ParallelGrads {
  /** Milliseconds spent in the phases of the last compute() (for benchmarks). */
  readonly timings = { send: 0, local: 0, wait: 0, combine: 0 };
  private busy = false;
  private disposed = false;
  private readonly checked = new WeakSet<ViT>();

  private constructor(
    readonly config: ViTConfig,
    private readonly slots: Slot[],
    private readonly paramViews: Float32Array[],
    private readonly workers: GradWorker[],
  ) {}

  /** Number of threads a batch is split over (workers + the main thread). */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Starts `opts.workers` threads, each loading tfjs, the backend and a ViT built from `cfg`.
   *
   * @example
   * const pg = await ParallelGrads.create(PRESETS.tiny, { workers: 1, backend: 'wasm' });
   */
  static async create(cfg: ViTConfig, opts: ParallelOptions): Promise<ParallelGrads> {
    const n = opts.workers;
    if (!Number.isSafeInteger(n) || n < 0 || n > 64) {
      throw new UsageError(`ParallelGrads: workers must be an integer in 0..64, got ${n}`);
    }
    const slots: Slot[] = [];
    let total = 0;
    for (const [name, shape] of expectedParameters(cfg)) {
      const length = shape.reduce((a, b) => a * b, 1);
      slots.push({ name, shape, offset: total, length });
      total += length;
    }
    const params = new SharedArrayBuffer(total * 4);
    const views = (buf: SharedArrayBuffer) => slots.map((s) => new Float32Array(buf, s.offset * 4, s.length));
    const backend = opts.backend ?? tf.getBackend();
    const workers: GradWorker[] = [];
    const url = new URL(import.meta.url);
    for (let i = 0; i < n; i++) {
      const grads = new SharedArrayBuffer(total * 4);
      workers.push(new GradWorker(url, { cfg: { ...cfg }, backend, slots, params, grads }, views(grads)));
    }
    try {
      await Promise.all(workers.map((w) => w.ready()));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new ParallelGrads(cfg, slots, views(params), workers);
  }

  /**
   * Loss, hits and gradients of the mean loss over `batch` (see the class comment).
   *
   * @example
   * const { loss, grads } = await pg.compute(model, { images, labels, size: 128 }, { labelSmoothing: 0, seed: 0 });
   * for (const g of grads.values()) g.dispose();
   */
  async compute(model: ViT, batch: GradBatch, opts: GradOptions): Promise<GradResult> {
    if (this.disposed) throw new UsageError('ParallelGrads: compute() after dispose()');
    if (this.busy) throw new UsageError('ParallelGrads: compute() called while another is running');
    this.checkModel(model);
    const cfg = this.config;
    const pixels = cfg.num_channels * cfg.image_size * cfg.image_size;
    const { images, labels, size } = batch;
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new UsageError(`ParallelGrads: batch size must be a positive integer, got ${size}`);
    }
    if (images.length !== size * pixels) {
      throw new DataError(
        `ParallelGrads: batch.images has ${images.length} values, ${size} images of ` +
          `${cfg.num_channels}x${cfg.image_size}x${cfg.image_size} need ${size * pixels}`,
      );
    }
    if (labels.length !== size) {
      throw new DataError(`ParallelGrads: batch.labels has ${labels.length} entries, batch size is ${size}`);
    }
    const names = this.slots.map((s) => s.name);
    this.busy = true;
    let t = performance.now();
    const lap = () => {
      const now = performance.now();
      const dt = now - t;
      t = now;
      return dt;
    };
    try {
      const sizes = shardSizes(size, this.threads);
      const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
      let jobs: Promise<ShardResult | undefined>[] = [];
      if (sizes.slice(1).some((s) => s > 0)) {
        const params = model.parameters();
        this.slots.forEach((s, i) => this.paramViews[i].set(params.get(s.name)!.dataSync()));
        // Workers first, so they run while this thread computes shard 0.
        jobs = this.workers.map((w, k) => {
          const i = k + 1;
          if (sizes[i] === 0) return Promise.resolve(undefined);
          const a = starts[i];
          return w.run(
            images.subarray(a * pixels, (a + sizes[i]) * pixels),
            labels.slice(a, a + sizes[i]),
            sizes[i],
            {
              labelSmoothing: opts.labelSmoothing,
              seed: opts.seed * 16 + i,
            },
          );
        });
      }
      this.timings.send = lap();
      let local: ShardResult | undefined;
      let localError: unknown;
      try {
        if (sizes[0] > 0) {
          local = shardGradients(
            model,
            images.subarray(0, sizes[0] * pixels),
            labels.subarray(0, sizes[0]),
            sizes[0],
            { labelSmoothing: opts.labelSmoothing, seed: opts.seed * 16 },
            names,
          );
        }
      } catch (e) {
        localError = e;
      }
      // Wait for every worker even after a failure, so none is still busy when compute() returns.
      this.timings.local = lap();
      const settled = await Promise.allSettled(jobs);
      this.timings.wait = lap();
      if (localError !== undefined) throw localError;
      const results: (ShardResult | undefined)[] = [local];
      for (const r of settled) {
        if (r.status === 'rejected') throw r.reason;
        results.push(r.value);
      }
      const out = this.combine(results, sizes, size);
      this.timings.combine = lap();
      return out;
    } finally {
      this.busy = false;
    }
  }

  // Size-weighted average in a fixed order (shard 0, 1, ...), so results repeat run to run.
  private combine(results: (ShardResult | undefined)[], sizes: number[], size: number): GradResult {
    let loss = 0;
    let correct = 0;
    results.forEach((r, i) => {
      if (!r) return;
      loss += (r.loss * sizes[i]) / size;
      correct += r.correct;
    });
    const grads = new Map<string, tf.Tensor>();
    this.slots.forEach((s, p) => {
      const parts: [Float32Array, number][] = [];
      results.forEach((r, i) => {
        const g = r?.grads[p];
        if (g) parts.push([g, sizes[i] / size]);
      });
      if (parts.length === 0) return; // no gradient in any shard (as variableGrads omits it)
      // Float64 sums in shard order, rounded to float32 once.
      const acc = new Float64Array(s.length);
      for (const [g, w] of parts) for (let j = 0; j < s.length; j++) acc[j] += w * g[j];
      const out = Float32Array.from(acc);
      grads.set(s.name, tf.tensor(out, s.shape, 'float32'));
    });
    return { loss, correct, grads };
  }

  private checkModel(model: ViT): void {
    if (this.checked.has(model)) return;
    const params = model.parameters();
    for (const s of this.slots) {
      const v = params.get(s.name);
      if (!v || v.shape.length !== s.shape.length || v.shape.some((d, k) => d !== s.shape[k])) {
        throw new UsageError(
          `ParallelGrads: the model does not match the config it was created with: parameter "${s.name}" ` +
            (v ? `has shape [${v.shape.join(', ')}], expected [${s.shape.join(', ')}]` : 'is missing'),
        );
      }
    }
    if (params.size !== this.slots.length) {
      throw new UsageError(
        `ParallelGrads: the model has ${params.size} parameters, the config ${this.slots.length}`,
      );
    }
    this.checked.add(model);
  }

  /**
   * Terminates the worker threads; a step still running rejects.
   *
   * @example
   * await pg.dispose();
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
