// The ViT demo: a drawing pad (or a dropped image) -> top-5 classes and the class token's attention.
import type { RgbImage } from '../../src/image/decode.js';
import { overlayHeatmap, upscaleNearest } from '../../src/image/draw.js';
import { resizeBilinear } from '../../src/image/resize.js';
import { CheckpointError, DataError } from '../../src/errors.js';
import { tf } from '../../src/tf.js';
import {
  classify,
  classifyOrt,
  describeError,
  fetchViT,
  loadViTFromFiles,
  type Classification,
  type LoadedModel,
} from './model.js';
import type { LastRun, Runtime } from './hook.js';
import { compileForOrt, releaseOrt, type OrtModel, type OrtProvider } from './ort.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

let loaded: LoadedModel | undefined;
/** The image last classified, kept so a backend switch can re-run it. */
let lastImage: RgbImage | undefined;
let warmBackend = '';

let runtime: Runtime = 'tfjs';
/** The onnxruntime-web session of the loaded model, for one provider (built on first use). */
let compiled: { for: LoadedModel; provider: OrtProvider; model: Promise<OrtModel> } | undefined;
/** Serialises runs: a backend switch or a new stroke waits for the running classification. */
let queue: Promise<void> = Promise.resolve();

function message(text: string): void {
  $('demo-message').textContent = text;
}

function canvasImage(canvas: HTMLCanvasElement): RgbImage {
  const { width, height } = canvas;
  const rgba = canvas.getContext('2d')!.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    data[i * 3] = rgba[i * 4];
    data[i * 3 + 1] = rgba[i * 4 + 1];
    data[i * 3 + 2] = rgba[i * 4 + 2];
  }
  return { width, height, data };
}

/**
 * MNIST's own normalisation of a drawing: the ink's bounding box scaled to fit 20x20 (aspect kept),
 * then centred by its centre of mass in a 28x28 frame. Returns undefined for an empty pad.
 */
export function mnistFrame(img: RgbImage): RgbImage | undefined {
  const { width, height, data } = img;
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 3] > 32) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return undefined;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const crop = new Uint8Array(bw * bh * 3);
  for (let y = 0; y < bh; y++) {
    crop.set(data.subarray(((y0 + y) * width + x0) * 3, ((y0 + y) * width + x1 + 1) * 3), y * bw * 3);
  }
  const scale = 20 / Math.max(bw, bh);
  const sw = Math.max(1, Math.round(bw * scale));
  const sh = Math.max(1, Math.round(bh * scale));
  const small = resizeBilinear({ width: bw, height: bh, data: crop }, sw, sh);
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const v = small.data[(y * sw + x) * 3];
      mass += v;
      cx += v * x;
      cy += v * y;
    }
  }
  const ox = Math.round(14 - cx / mass);
  const oy = Math.round(14 - cy / mass);
  const out = new Uint8Array(28 * 28 * 3);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const tx = x + ox;
      const ty = y + oy;
      if (tx < 0 || ty < 0 || tx >= 28 || ty >= 28) continue;
      for (let c = 0; c < 3; c++) out[(ty * 28 + tx) * 3 + c] = small.data[(y * sw + x) * 3 + c];
    }
  }
  return { width: 28, height: 28, data: out };
}

function drawRgb(canvas: HTMLCanvasElement, img: RgbImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d')!;
  const out = ctx.createImageData(img.width, img.height);
  for (let i = 0; i < img.width * img.height; i++) {
    out.data[i * 4] = img.data[i * 3];
    out.data[i * 4 + 1] = img.data[i * 3 + 1];
    out.data[i * 4 + 2] = img.data[i * 3 + 2];
    out.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

/** The model's input size as a square side (the preprocessor's, else the config's). */
function inputSide(m: LoadedModel): number {
  return typeof m.pre.size === 'number' ? m.pre.size : m.pre.size[0];
}

/** The session for `m` on `provider`, traced and compiled on first use. */
function ortModel(m: LoadedModel, provider: OrtProvider): Promise<OrtModel> {
  if (compiled?.for !== m || compiled.provider !== provider) {
    const old = compiled?.model;
    compiled = { for: m, provider, model: compileForOrt(m.model, provider) };
    // Release the old session; if it failed to start there is nothing to release.
    void old?.then(releaseOrt, () => undefined);
    const mine = compiled;
    // A session that failed to start is retried on the next run, not cached.
    compiled.model.catch(() => {
      if (compiled === mine) compiled = undefined;
    });
  }
  return compiled.model;
}

/** What ran, as the page shows it. */
export function runtimeLabel(): string {
  return runtime === 'tfjs' ? `tfjs ${tf.getBackend()}` : `onnxruntime-web ${runtime.slice(4)}`;
}

async function classifyWith(m: LoadedModel, img: RgbImage): Promise<Classification> {
  if (runtime === 'tfjs') {
    // The first run on a backend compiles its shaders: run once untimed so ms shows the steady state.
    if (warmBackend !== tf.getBackend()) {
      await classify(m, img);
      warmBackend = tf.getBackend();
    }
    return classify(m, img);
  }
  const provider = runtime === 'ort-wasm' ? 'wasm' : 'webgpu';
  const session = await ortModel(m, provider);
  const info = `ONNX traced and emitted in the page: ${(session.onnxBytes / 1e6).toFixed(2)} MB in ${session.compileMs.toFixed(0)} ms`;
  $('runtime-detail').textContent = info;
  // As on tfjs: the first run of a session is its warm-up (kernel and shader set-up).
  await classifyOrt(m, session, img);
  const result = await classifyOrt(m, session, img);
  lastGpuKernels = [...session.gpuKernels].sort();
  if (provider === 'webgpu') {
    $('runtime-detail').textContent = `${info}; ${lastGpuKernels.length} kernel types ran on the GPU`;
  }
  return result;
}

/** Kernel types the WebGPU provider ran in the last onnxruntime-web run (for the e2e test). */
let lastGpuKernels: string[] = [];

/** What ran the last classification. */
export function lastRun(): LastRun {
  return {
    runtime,
    label: runtimeLabel(),
    gpuKernels: runtime === 'ort-webgpu' ? lastGpuKernels : [],
    top: lastResult?.top ?? [],
    attention: lastResult?.attention ? Array.from(lastResult.attention.data) : [],
  };
}

let lastResult: Classification | undefined;

async function runModel(img: RgbImage): Promise<void> {
  if (!loaded) return;
  const m = loaded;
  const result = await classifyWith(m, img);
  lastResult = result;
  const list = $('top5');
  list.replaceChildren(
    ...result.top.map((t) => {
      const li = document.createElement('li');
      li.textContent = `${t.label}  ${(100 * t.prob).toFixed(1)}%`;
      li.dataset.label = t.label;
      return li;
    }),
  );
  $('ms').textContent = `${result.ms.toFixed(1)} ms per image on ${runtimeLabel()}`;
  $('ms').dataset.backend = tf.getBackend();
  $('ms').dataset.runtime = runtime;
  $('runtime-active').textContent = runtimeLabel();
  $('runtime-active').dataset.runtime = runtime;
  const side = inputSide(m);
  const seen = img.width === side && img.height === side ? img : resizeBilinear(img, side, side);
  const shown = result.attention
    ? overlayHeatmap(seen, result.attention.data, result.attention.width, result.attention.height, 0.45)
    : seen;
  drawRgb($('overlay'), upscaleNearest(shown, Math.max(1, Math.floor(224 / side))));
}

/** Classifies `img` (already framed for the model), reporting errors on the page. */
function submit(img: RgbImage): Promise<void> {
  lastImage = img;
  queue = queue.then(async () => {
    try {
      await runModel(img);
      message('');
    } catch (e) {
      message(describeError(e));
    }
  });
  return queue;
}

/** Re-runs the last image (after a backend switch), so the ms shown is the new backend's. */
export function rerun(): Promise<void> {
  return lastImage ? submit(lastImage) : queue;
}

/**
 * Switches the runtime of the demo and re-runs the last image on it.
 *
 * @example
 * await setRuntime('ort-wasm');
 */
export function setRuntime(next: Runtime): Promise<void> {
  runtime = next;
  if (next === 'tfjs') $('runtime-detail').textContent = '';
  return rerun();
}

/** A dropped or picked image being decoded: not queued yet, but idle() must wait for it too. */
let opening: Promise<void> = Promise.resolve();

/** Waits for the classification in flight (used by the end-to-end test through window.einvit). */
export async function idle(): Promise<void> {
  await opening;
  await queue;
}

function classifyPad(): void {
  const frame = mnistFrame(canvasImage($('pad')));
  if (!frame) return;
  if (loaded && loaded.model.config.num_channels === 1 && inputSide(loaded) === 28) void submit(frame);
  else void submit(canvasImage($('pad')));
}

function clearPad(): void {
  const ctx = $<HTMLCanvasElement>('pad').getContext('2d')!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, 280, 280);
}

function initPad(): void {
  const pad = $<HTMLCanvasElement>('pad');
  const ctx = pad.getContext('2d', { willReadFrequently: true })!;
  clearPad();
  let drawing = false;
  let last: [number, number] | undefined;
  const at = (e: PointerEvent): [number, number] => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    last = at(e);
    pad.setPointerCapture(e.pointerId);
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing || !last) return;
    const p = at(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 22;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const end = (): void => {
    if (!drawing) return;
    drawing = false;
    classifyPad();
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => {
    clearPad();
    $('top5').replaceChildren();
    $('ms').textContent = '';
  });
}

/** Decodes an image file with the browser; anything else is a DataError on the page. */
async function decodeFile(file: File): Promise<RgbImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new DataError(
      `${file.name}: not an image the browser can decode (${file.type || 'unknown type'})`,
      {
        rule: 'not-an-image',
      },
    );
  }
  // Big photos are shrunk first; the model resizes to its own input size anyway.
  const scale = Math.min(1, 512 / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d', { willReadFrequently: true })!.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvasImage(canvas);
}

async function openImage(file: File): Promise<void> {
  try {
    const img = await decodeFile(file);
    // Show it on the pad (letterboxed) so what is classified is visible.
    const pad = $<HTMLCanvasElement>('pad');
    const ctx = pad.getContext('2d')!;
    clearPad();
    const s = Math.min(280 / img.width, 280 / img.height);
    const tmp = document.createElement('canvas');
    drawRgb(tmp, img);
    ctx.drawImage(tmp, (280 - img.width * s) / 2, (280 - img.height * s) / 2, img.width * s, img.height * s);
    await submit(img);
  } catch (e) {
    message(describeError(e));
  }
}

function initDrop(): void {
  const pad = $('pad');
  pad.addEventListener('dragover', (e) => {
    e.preventDefault();
    pad.classList.add('drop');
  });
  pad.addEventListener('dragleave', () => pad.classList.remove('drop'));
  pad.addEventListener('drop', (e) => {
    e.preventDefault();
    pad.classList.remove('drop');
    const file = e.dataTransfer?.files[0];
    if (file) opening = openImage(file);
  });
  $<HTMLInputElement>('image-file').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) opening = openImage(file);
  });
}

/** Loads a checkpoint from picked files (a folder's, or files chosen one by one). */
async function loadPicked(files: FileList): Promise<void> {
  const byName = new Map<string, File>();
  for (const f of Array.from(files)) byName.set(f.name, f);
  const first = files[0] as (File & { webkitRelativePath?: string }) | undefined;
  const folder = first?.webkitRelativePath?.split('/')[0] || 'picked files';
  try {
    if (!byName.has('config.json')) {
      throw new CheckpointError(
        `${folder}: no config.json among ${files.length} file(s); a checkpoint folder holds config.json and model.safetensors`,
        { rule: 'config-file' },
      );
    }
    const next = loadViTFromFiles({
      name: folder,
      config: await byName.get('config.json')!.text(),
      weights: byName.has('model.safetensors')
        ? new Uint8Array(await byName.get('model.safetensors')!.arrayBuffer())
        : undefined,
      preprocessor: await byName.get('preprocessor_config.json')?.text(),
    });
    setModel(next);
  } catch (e) {
    message(describeError(e));
  }
}

function setModel(next: LoadedModel): void {
  const old = loaded;
  loaded = next;
  warmBackend = '';
  const oldSession = compiled?.model;
  compiled = undefined;
  void queue.then(() => oldSession?.then(releaseOrt, () => undefined));
  const c = next.model.config;
  $('model-name').textContent =
    `${next.name} (${c.image_size}px, patch ${c.patch_size}, ${c.num_hidden_layers} layers, ` +
    `D ${c.hidden_size}, ${c.num_labels} classes)`;
  message('');
  // Dispose the old one only once nothing is running on it.
  void queue.then(() => old?.model.dispose());
  void rerun();
}

/** Loads the shipped MNIST model and wires the demo. */
export async function initDemo(): Promise<void> {
  initPad();
  initDrop();
  for (const id of ['folder', 'files']) {
    $<HTMLInputElement>(id).addEventListener('change', (e) => {
      const files = (e.target as HTMLInputElement).files;
      if (files && files.length > 0) void loadPicked(files);
    });
  }
  const loadShipped = async (): Promise<void> => {
    try {
      setModel(await fetchViT('./model', 'MNIST ViT (shipped, tiny)'));
    } catch (e) {
      message(describeError(e));
    }
  };
  $('shipped').addEventListener('click', () => void loadShipped());
  await loadShipped();
}
