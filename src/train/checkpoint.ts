// A training run's checkpoints, each one atomic unit on disk.
//
//   <run>/config.json, model.safetensors, preprocessor_config.json   the latest model (a model folder:
//   <run>/metrics.jsonl, timings.jsonl                                `--model <run>` loads it)
//   <run>/checkpoints/latest              one line: the folder of the latest complete checkpoint
//   <run>/checkpoints/step-<N>/           config.json, model.safetensors, preprocessor_config.json,
//                                         optimizer.safetensors, trainer_state.json, metrics.jsonl,
//                                         timings.jsonl
//
// A save stages every file in a fresh `checkpoints/.staging-*` folder, fsyncs them and the folder,
// renames it to `step-<N>`, then rewrites `latest` atomically (the commit point). Only then are the
// run-level files replaced (hard links to the new checkpoint's files, each by an atomic rename) and the
// previous checkpoint removed. A crash at any moment leaves the previous or the new checkpoint whole;
// `openRun` removes what a crash left behind and re-links the run-level files to `latest`.
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CheckpointError } from '../errors.js';
import { ViT } from '../vit/model.js';
import { openSafetensors, writeSafetensors } from '../vit/safetensors.js';
import { PREPROCESSOR_FILE } from '../vit/preprocessor.js';
import { AdamW, type OptimizerState } from './optimizer.js';
import { writeFileAtomic } from './atomic.js';

export const CHECKPOINTS_DIR = 'checkpoints';
export const LATEST_FILE = 'latest';
export const STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const METRICS_FILE = 'metrics.jsonl';
export const TIMINGS_FILE = 'timings.jsonl';
/** Files of a checkpoint that are also shown at the top of the run folder. */
const PUBLISHED = ['config.json', 'model.safetensors', PREPROCESSOR_FILE, METRICS_FILE, TIMINGS_FILE];
const STAGING_PREFIX = '.staging-';

/** What a checkpoint holds besides the model and the optimizer. */
export interface RunFiles {
  /** trainer_state.json (must carry a numeric `step`). */
  state: { step: number };
  /** preprocessor_config.json. */
  preprocessor: Record<string, unknown>;
  /** metrics.jsonl and timings.jsonl, one JSON object per line. */
  metrics: Record<string, unknown>[];
  timings: Record<string, unknown>[];
}

/** Forces a file or folder to disk; folders cannot be opened on some platforms (Windows): skipped. */
function fsyncPath(path: string, folder = false): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if (folder) return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    if (!folder) throw e;
  } finally {
    closeSync(fd);
  }
}

// Test hook: EINVIT_TEST_SAVE_DELAY_MS pauses each stage of a save (and reports it on stderr), so that
// a test can kill the process inside a save.
function stage(name: string): void {
  const ms = Number(process.env.EINVIT_TEST_SAVE_DELAY_MS ?? 0);
  if (!(ms > 0)) return;
  process.stderr.write(`[save] ${name}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function jsonl(rows: Record<string, unknown>[]): string {
  return rows.map((r) => JSON.stringify(r) + '\n').join('');
}

function io<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${what}: ${(e as Error).message}`, { cause: e });
  }
}

/** The folder `latest` names, or undefined when the run has no complete checkpoint yet. */
export function latestCheckpoint(run: string): string | undefined {
  const pointer = join(run, CHECKPOINTS_DIR, LATEST_FILE);
  if (!existsSync(pointer)) return undefined;
  const name = readFileSync(pointer, 'utf8').trim();
  const dir = join(run, CHECKPOINTS_DIR, name);
  if (!/^step-\d+(-\d+)?$/.test(name) || !existsSync(dir)) {
    throw new CheckpointError(`${pointer} names '${name}', which is not a checkpoint folder of ${run}`);
  }
  return dir;
}

/**
 * Prepares a run folder: creates it, removes what an interrupted save left behind (staging folders,
 * temporary files, checkpoints other than `latest`) and re-links the run-level files to `latest`.
 * Returns the latest checkpoint's folder, if any.
 *
 * @example
 * const dir = openRun('runs/mnist'); // 'runs/mnist/checkpoints/step-1875' or undefined
 */
export function openRun(run: string): string | undefined {
  return io(`cannot prepare the run folder ${run}`, () => {
    const root = join(run, CHECKPOINTS_DIR);
    mkdirSync(root, { recursive: true });
    for (const name of readdirSync(run)) {
      if (/\.tmp(-\d+)?$|\.tmp-|^\..*\.tmp$/.test(name)) rmSync(join(run, name), { force: true });
    }
    const latest = latestCheckpoint(run);
    for (const name of readdirSync(root)) {
      const path = join(root, name);
      if (name === LATEST_FILE || (latest !== undefined && path === latest)) continue;
      if (name.startsWith(STAGING_PREFIX) || /^step-/.test(name) || /\.tmp$/.test(name)) {
        rmSync(path, { recursive: true, force: true });
      }
    }
    if (latest !== undefined) publish(run, latest);
    return latest;
  });
}

/** Points `<run>/<file>` at `<ckpt>/<file>` (hard link, or a copy where links fail), atomically. */
function publish(run: string, ckpt: string): void {
  for (const file of PUBLISHED) {
    const src = join(ckpt, file);
    if (!existsSync(src)) continue;
    const dst = join(run, file);
    if (existsSync(dst) && sameFile(src, dst)) continue;
    const tmp = join(run, `.${file}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      linkSync(src, tmp);
    } catch {
      copyFileSync(src, tmp);
      fsyncPath(tmp);
    }
    renameSync(tmp, dst);
  }
  fsyncPath(run, true);
}

function sameFile(a: string, b: string): boolean {
  const sa = statSync(a);
  const sb = statSync(b);
  return sa.ino === sb.ino && sa.dev === sb.dev;
}

/**
 * Saves a complete checkpoint of a run as one atomic unit (see the layout at the top of this file):
 * stage, fsync, rename, switch `latest`, then show it at the top of the run folder and drop the
 * previous checkpoint. Returns the new checkpoint's folder. `opt` is an `AdamW` or anything giving
 * its state in the same format (the onnxruntime engine's `StepState`), so every engine writes the
 * same files.
 *
 * @example
 * await saveRunCheckpoint('runs/mnist', model, opt, { state, preprocessor, metrics, timings });
 */
export async function saveRunCheckpoint(
  run: string,
  model: ViT,
  opt: { exportState(): OptimizerState },
  files: RunFiles,
): Promise<string> {
  const root = join(run, CHECKPOINTS_DIR);
  const staging = join(root, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  const tag = { step: String(files.state.step) };
  io(`cannot create ${staging}`, () => mkdirSync(staging, { recursive: true }));
  stage('begin');
  await model.save(staging, { metadata: tag });
  stage('model');
  const previous = io(`cannot save a checkpoint in ${run}`, () => {
    writeFileSync(join(staging, PREPROCESSOR_FILE), JSON.stringify(files.preprocessor, null, 2) + '\n');
    const o = opt.exportState();
    writeSafetensors(join(staging, OPTIMIZER_FILE), o.tensors, { ...tag, adamw_step: String(o.step) });
    writeFileSync(join(staging, METRICS_FILE), jsonl(files.metrics));
    writeFileSync(join(staging, TIMINGS_FILE), jsonl(files.timings));
    writeFileSync(join(staging, STATE_FILE), JSON.stringify(files.state, null, 2) + '\n');
    stage('files');
    for (const name of readdirSync(staging)) fsyncPath(join(staging, name));
    fsyncPath(staging, true);
    stage('fsync');
    let name = `step-${files.state.step}`;
    for (let k = 2; existsSync(join(root, name)); k++) name = `step-${files.state.step}-${k}`;
    renameSync(staging, join(root, name));
    fsyncPath(root, true);
    stage('renamed');
    const before = latestCheckpoint(run);
    writeFileAtomic(join(root, LATEST_FILE), name + '\n'); // the commit point
    stage('committed');
    publish(run, join(root, name));
    stage('published');
    return { before, now: join(root, name) };
  });
  if (previous.before !== undefined && previous.before !== previous.now) {
    rmSync(previous.before, { recursive: true, force: true });
  }
  stage('end');
  return previous.now;
}

/** A checkpoint read back: the model, the optimizer (moments restored) and the raw trainer state. */
export interface LoadedCheckpoint {
  model: ViT;
  opt: AdamW;
  state: unknown;
}

/**
 * Loads the checkpoint folder `dir` (from `openRun`); `weightDecay` builds the optimizer. Every file
 * must carry the step of trainer_state.json.
 *
 * @example
 * const dir = openRun('runs/mnist');
 * if (dir) ({ model, opt, state } = await loadRunCheckpoint(dir, (s) => s.weightDecay));
 */
export async function loadRunCheckpoint(
  dir: string,
  weightDecayOf: (state: unknown) => number,
): Promise<LoadedCheckpoint> {
  const statePath = join(dir, STATE_FILE);
  const state = io(`cannot read ${statePath}`, () => JSON.parse(readFileSync(statePath, 'utf8')) as unknown);
  const step = (state as { step?: unknown }).step;
  if (typeof step !== 'number') throw new CheckpointError(`${statePath} has no step`);
  const model = await ViT.fromPretrained(dir);
  try {
    const file = openSafetensors(join(dir, 'model.safetensors'));
    const optFile = openSafetensors(join(dir, OPTIMIZER_FILE));
    try {
      for (const [name, f] of [
        ['model.safetensors', file],
        [OPTIMIZER_FILE, optFile],
      ] as const) {
        if (f.metadata.step !== String(step)) {
          throw new CheckpointError(
            `${join(dir, name)} is from step ${f.metadata.step}, ${STATE_FILE} from step ${step}`,
          );
        }
      }
      const opt = new AdamW(model.parameters(), { weightDecay: weightDecayOf(state) });
      const tensors = new Map(
        optFile.keys().map((k) => [k, { shape: optFile.info(k).shape, data: optFile.readFloat32(k) }]),
      );
      opt.importState({ step: Number(optFile.metadata.adamw_step), tensors });
      return { model, opt, state };
    } finally {
      file.close();
      optFile.close();
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
}
