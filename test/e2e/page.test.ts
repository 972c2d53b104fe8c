// The demo page in a real browser (Debian chromium, headless, driven by playwright-core): the
// playground, the ViT demo, bad input, and the WebGL and WebGPU backends running the einops
// conformance vectors and two PyTorch reference ViTs. Any console error fails the test. Screenshots
// go to test/e2e/artifacts/.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { explain } from '../../src/cli/explain.js';
import { EinopsError } from '../../src/errors.js';
import {
  ARTIFACTS,
  ROOT,
  browserAvailable,
  buildAndServe,
  launch,
  type Browser,
  type Served,
} from './browser.js';
import type {} from '../../web/src/hook.js';
import {
  ADAMW_STEP_TOLERANCE,
  GPU_GRADIENT_TOLERANCE,
  GPU_REFERENCE_TOLERANCE,
  KNOWN_GPU_DIFFERENCES,
} from '../gpu/expectations.js';
import type { LastRun } from '../../web/src/hook.js';

const available = browserAvailable();
const SLOW = 600_000;

let served: Served;
let b: Browser;
const timings: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Draws strokes (in pad pixels, 280x280) with the mouse. */
async function draw(page: Page, strokes: [number, number][][]): Promise<void> {
  await page.click('#clear');
  const box = (await page.locator('#pad').boundingBox())!;
  const sx = box.width / 280;
  const sy = box.height / 280;
  for (const stroke of strokes) {
    await page.mouse.move(box.x + stroke[0][0] * sx, box.y + stroke[0][1] * sy);
    await page.mouse.down();
    for (const [x, y] of stroke.slice(1)) await page.mouse.move(box.x + x * sx, box.y + y * sy, { steps: 6 });
    await page.mouse.up();
  }
  await page.evaluate(() => window.einvit.idle());
}

const ONE: [number, number][][] = [
  [
    [140, 50],
    [140, 230],
  ],
];
// A closed loop: an upright ellipse.
const ZERO: [number, number][][] = [
  Array.from({ length: 25 }, (_, i): [number, number] => {
    const t = (2 * Math.PI * i) / 24;
    return [140 + 55 * Math.sin(t), 140 - 85 * Math.cos(t)];
  }),
];

/** Drops a file on the drawing pad, as a drag from the desktop would. */
async function drop(page: Page, name: string, type: string, bytes: number[]): Promise<void> {
  const dt = await page.evaluateHandle(
    ([n, t, b]) => {
      const d = new DataTransfer();
      d.items.add(new File([new Uint8Array(b)], n, { type: t }));
      return d;
    },
    [name, type, bytes] as const,
  );
  await page.dispatchEvent('#pad', 'drop', { dataTransfer: dt });
}

async function topLabels(page: Page): Promise<string[]> {
  return page
    .locator('#top5 li')
    .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.label ?? ''));
}

async function useBackend(page: Page, name: string): Promise<string> {
  await page.selectOption('#backend', name);
  await page.waitForFunction((n) => document.getElementById('backend-active')?.dataset.backend === n, name, {
    timeout: SLOW,
  });
  await page.evaluate(() => window.einvit.idle());
  return page.evaluate(() => window.einvit.tf.getBackend());
}

async function useRuntime(page: Page, name: string): Promise<LastRun> {
  await page.selectOption('#runtime', name);
  await page.waitForFunction((n) => document.getElementById('runtime-active')?.dataset.runtime === n, name, {
    timeout: SLOW,
  });
  await page.evaluate(() => window.einvit.idle());
  return page.evaluate(() => window.einvit.lastRun());
}

/**
 * onnxruntime-web against tfjs on the same image: same top-5 labels, probabilities and attention map
 * within 1e-4 (both float32; onnxruntime fuses LayerNorm/GELU/attention and sums in its own order,
 * measured differences ~1e-6).
 */
function expectSameRun(ort: LastRun, tfjs: LastRun): void {
  expect(ort.top.map((t) => t.label)).toEqual(tfjs.top.map((t) => t.label));
  ort.top.forEach((t, i) => expect(Math.abs(t.prob - tfjs.top[i].prob)).toBeLessThan(1e-4));
  expect(ort.attention.length).toBe(tfjs.attention.length);
  expect(ort.attention.length).toBe(16);
  const worst = Math.max(...ort.attention.map((v, i) => Math.abs(v - tfjs.attention[i])));
  expect(worst).toBeLessThan(1e-4);
}

describe.skipIf(!available)('the demo page in chromium', () => {
  beforeAll(async () => {
    served = await buildAndServe();
    b = await launch();
    // The reference models are served to the page only for this test, not shipped with it.
    await b.page.route('**/ref/**', async (route) => {
      const rel = new URL(route.request().url()).pathname.replace(/^.*\/ref\//, '');
      await route.fulfill({ body: readFileSync(join(ROOT, 'test', 'vit-reference', rel)) });
    });
    await b.page.goto(`${served.url}?backend=wasm`);
    await b.page.evaluate(() => window.einvit.started);
  }, SLOW);

  afterEach(() => {
    // Every test fails on a console error or an uncaught exception in the page.
    const errors = b.errors.splice(0);
    expect(errors).toEqual([]);
  });

  afterAll(async () => {
    await b?.close();
    await served?.close();
  });

  it('shows the output shape and the plan of a pattern, as `einvit explain` prints them', async () => {
    const { page } = b;
    await page.fill('#pg-pattern', 'b (h p1) (w p2) c -> b h w (p1 p2 c)');
    await page.fill('#pg-shape', '2, 8, 12, 3');
    await page.fill('#pg-lengths', 'p1=4 p2=4');
    const cli = explain('b (h p1) (w p2) c -> b h w (p1 p2 c)', { shape: '2,8,12,3' }, ['p1=4', 'p2=4']);
    await expect.poll(() => page.textContent('#pg-output-shape'), { timeout: 60_000 }).toBe('[2, 2, 3, 48]');
    expect(cli[cli.length - 1]).toBe('output [2, 2, 3, 48]');
    expect(await page.textContent('#pg-plan')).toBe(cli.slice(0, -1).join('\n'));
    expect(await page.textContent('#pg-plan')).toContain('2. tf.transpose(x, [0, 2, 1, 3])');
    expect(await page.textContent('#pg-error')).toBe('');
    await shot(page, 'playground');
  });

  it('shows a bad pattern as our error with the caret, not an exception', async () => {
    const { page } = b;
    await page.fill('#pg-shape', '2, 3, 4');
    await page.fill('#pg-lengths', '');
    await page.fill('#pg-pattern', 'b (h w -> b h w');
    let expected = '';
    try {
      explain('b (h w -> b h w', { shape: '2,3,4' }, []);
    } catch (e) {
      expect(e).toBeInstanceOf(EinopsError);
      expected = (e as Error).message;
    }
    await expect.poll(() => page.textContent('#pg-error'), { timeout: 60_000 }).toBe(expected);
    expect(expected).toMatch(/\n {2}b \(h w -> b h w\n {2}\s*\^/);
    expect(await page.textContent('#pg-output-shape')).toBe('—');
    await page.click('#grammar summary');
    await page.frameLocator('#grammar-frame').locator('text=pattern').first().waitFor();
    await shot(page, 'bad-pattern');
  });

  it('classifies a drawn digit with the shipped model, with the attention overlay', async () => {
    const { page } = b;
    await page.locator('#vit').scrollIntoViewIfNeeded();
    await draw(page, ONE);
    expect((await topLabels(page))[0]).toBe('1');
    expect(await page.locator('#top5 li').count()).toBe(5);
    await shot(page, 'digit-1-wasm');
    await draw(page, ZERO);
    expect((await topLabels(page))[0]).toBe('0');
    expect(await page.getAttribute('#ms', 'data-backend')).toBe('wasm');
    // The overlay is drawn: not all one colour.
    const colours = await page.evaluate(() => {
      const c = document.getElementById('overlay') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      return new Set(
        Array.from({ length: d.length / 4 }, (_, i) => d[i * 4] * 65536 + d[i * 4 + 1] * 256 + d[i * 4 + 2]),
      ).size;
    });
    expect(colours).toBeGreaterThan(10);
    timings.push(`wasm: ${await page.textContent('#ms')}`);
    await shot(page, 'digit-0-wasm');
  });

  it.each(['ort-wasm', 'ort-webgpu'] as const)(
    'runs the digit on onnxruntime-web (%s): the model traced in the page, same prediction and attention as tfjs',
    async (runtime) => {
      const { page } = b;
      await page.locator('#vit').scrollIntoViewIfNeeded();
      await draw(page, ONE);
      const tfjs = await page.evaluate(() => window.einvit.lastRun());
      expect(tfjs.runtime).toBe('tfjs');
      expect(tfjs.top[0].label).toBe('1');
      const ort = await useRuntime(page, runtime);
      expect(ort.runtime).toBe(runtime);
      expect(await page.getAttribute('#ms', 'data-runtime')).toBe(runtime);
      expect(await page.textContent('#ms')).toMatch(/ms per image on onnxruntime-web (wasm|webgpu)$/);
      expect(await page.textContent('#demo-message')).toBe('');
      expect(await page.textContent('#runtime-detail')).toMatch(/ONNX traced and emitted in the page/);
      expectSameRun(ort, tfjs);
      if (runtime === 'ort-webgpu') {
        // The WebGPU provider's profiler saw the model's heavy kernels run as shaders.
        for (const k of ['MatMul', 'Softmax', 'LayerNormalization']) expect(ort.gpuKernels).toContain(k);
      } else {
        expect(ort.gpuKernels).toEqual([]);
      }
      // A new drawing runs on onnxruntime-web too, and matches tfjs on it.
      await draw(page, ZERO);
      const ortZero = await page.evaluate(() => window.einvit.lastRun());
      expect(ortZero.runtime).toBe(runtime);
      expect(ortZero.top[0].label).toBe('0');
      timings.push(
        `${runtime}: ${await page.textContent('#ms')} (${await page.textContent('#runtime-detail')})`,
      );
      await shot(page, `digit-0-${runtime}`);
      const back = await useRuntime(page, 'tfjs');
      expect(back.runtime).toBe('tfjs');
      expectSameRun(ortZero, back);
    },
    SLOW,
  );

  it('takes dropped images, and says on the page when a file is not an image or a folder has no config.json', async () => {
    const { page } = b;
    await page.setInputFiles('#image-file', {
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('not a picture'),
    });
    await expect
      .poll(() => page.textContent('#demo-message'), { timeout: 60_000 })
      .toMatch(/notes\.txt: not an image/);
    // The same through a real drop on the pad, then a dropped PNG of a "1" (a white bar on black).
    await drop(page, 'dropped.txt', 'text/plain', [...Buffer.from('plain text')]);
    await expect
      .poll(() => page.textContent('#demo-message'), { timeout: 60_000 })
      .toMatch(/dropped\.txt: not an image/);
    const png = new PNG({ width: 56, height: 56 });
    for (let y = 0; y < 56; y++) {
      for (let x = 0; x < 56; x++) {
        const v = x >= 25 && x < 31 && y >= 8 && y < 48 ? 255 : 0;
        png.data.set([v, v, v, 255], (y * 56 + x) * 4);
      }
    }
    await drop(page, 'one.png', 'image/png', [...PNG.sync.write(png)]);
    await page.evaluate(() => window.einvit.idle());
    expect(await page.textContent('#demo-message')).toBe('');
    expect((await topLabels(page))[0]).toBe('1');
    await page.setInputFiles('#files', {
      name: 'model.safetensors',
      mimeType: 'application/octet-stream',
      buffer: readFileSync(join(ROOT, 'web', 'public', 'model', 'model.safetensors')),
    });
    await expect
      .poll(() => page.textContent('#demo-message'), { timeout: 60_000 })
      .toMatch(/no config\.json/);
    await shot(page, 'bad-input');
  });

  it('loads a checkpoint folder from disk (HF cifar-tiny) and classifies with it', async () => {
    const { page } = b;
    const dir = join(ROOT, 'test', 'vit-reference', 'cifar-tiny');
    await page.setInputFiles(
      '#files',
      readdirSync(dir)
        .filter((f) => f !== 'io.safetensors')
        .map((f) => join(dir, f)),
    );
    await expect
      .poll(() => page.textContent('#model-name'), { timeout: 60_000 })
      .toMatch(/32px, patch 4, 4 layers, D 48, 10 classes/);
    await page.evaluate(() => window.einvit.idle());
    expect(await page.textContent('#demo-message')).toBe('');
    expect(await page.locator('#top5 li').count()).toBe(5);
    await shot(page, 'cifar-tiny-loaded');
    await page.click('#shipped');
    await expect.poll(() => page.textContent('#model-name'), { timeout: 60_000 }).toMatch(/MNIST/);
    await page.evaluate(() => window.einvit.idle());
  });

  afterAll(() => {
    if (timings.length) writeFileSync(join(ARTIFACTS, 'timings.txt'), timings.join('\n') + '\n');
  });

  describe.each(['webgl', 'webgpu'] as const)('on the %s backend', (name) => {
    it(
      'switches backend, reports the device, and predicts the same digits',
      async () => {
        const { page } = b;
        expect(await useBackend(page, name)).toBe(name);
        const device = await page.textContent('#backend-device');
        expect(device).toMatch(name === 'webgl' ? /^WebGL2: / : /^WebGPU: /);
        await draw(page, ONE);
        expect((await topLabels(page))[0]).toBe('1');
        expect(await page.getAttribute('#ms', 'data-backend')).toBe(name);
        await draw(page, ZERO);
        expect((await topLabels(page))[0]).toBe('0');
        timings.push(`${name} (${device}): ${await page.textContent('#ms')}`);
        await shot(page, `digit-0-${name}`);
      },
      SLOW,
    );

    it(
      'passes the einops conformance vectors',
      async () => {
        const { page } = b;
        await useBackend(page, name);
        const files = readdirSync(join(ROOT, 'test', 'conformance')).filter((f) => f.endsWith('.jsonl'));
        const text = files.map((f) => readFileSync(join(ROOT, 'test', 'conformance', f), 'utf8')).join('\n');
        const known = [...KNOWN_GPU_DIFFERENCES[name].keys()];
        const results = await page.evaluate(
          async ([t, skip]) => {
            const before = window.einvit.tf.memory().numTensors;
            const backend = window.einvit.tf.getBackend();
            // Each case within its own tolerance, as on wasm (see web/src/checks.ts).
            const cases = window.einvit.parseCases(t).filter((c) => !skip.includes(c.id));
            const r = await window.einvit.runConformance(cases);
            return { r, backend, leaked: window.einvit.tf.memory().numTensors - before };
          },
          [text, known] as const,
        );
        expect(results.backend).toBe(name);
        expect(results.leaked).toBe(0);
        const failed = results.r.filter((x) => !x.passed);
        expect(failed.map((x) => `${x.id}: ${x.detail}`)).toEqual([]);
        expect(results.r.length).toBeGreaterThan(300);
      },
      SLOW,
    );

    it(
      "computes one training step's gradients and AdamW update as wasm does",
      async () => {
        const { page } = b;
        const r = await page.evaluate((n) => window.einvit.gradientCheck(n, 'wasm'), name);
        // The check leaves wasm active; give the page back the backend this block runs on.
        expect(await useBackend(page, name)).toBe(name);
        expect(r.backend).toBe(name);
        expect(r.missing).toEqual([]);
        expect(r.diffs.length).toBe(56);
        expect(r.leaked).toBe(0);
        expect(Math.abs(r.loss.gpu - r.loss.reference)).toBeLessThan(1e-5);
        for (const d of r.diffs) expect(d.grad, d.name).toBeLessThan(GPU_GRADIENT_TOLERANCE);
        for (const d of r.diffs) expect(d.param, d.name).toBeLessThanOrEqual(ADAMW_STEP_TOLERANCE.maxInLr);
        const off = r.diffs.reduce((a, d) => a + d.paramOff, 0);
        const size = r.diffs.reduce((a, d) => a + d.size, 0);
        expect(off / size).toBeLessThan(ADAMW_STEP_TOLERANCE.offFraction);
        const worst = r.diffs.reduce((a, d) => (d.grad > a.grad ? d : a));
        timings.push(
          `${name} training step: ${r.ms.gpu.toFixed(0)} ms (wasm ${r.ms.reference.toFixed(0)} ms); ` +
            `worst gradient ${worst.grad.toExponential(2)} (${worst.name}); ` +
            `AdamW: ${off}/${size} elements off by > 1% of lr, max ${Math.max(...r.diffs.map((d) => d.param)).toFixed(3)} lr`,
        );
      },
      SLOW,
    );

    it.each(['cifar-tiny', 'vit-ti-16'])(
      'matches the PyTorch reference ViT %s',
      async (folder) => {
        const { page } = b;
        await useBackend(page, name);
        const errs = await page.evaluate(async (f) => {
          const get = async (file: string): Promise<Response> => fetch(`./ref/${f}/${file}`);
          const [config, model, io] = await Promise.all([
            get('config.json').then((r) => r.text()),
            get('model.safetensors').then(async (r) => new Uint8Array(await r.arrayBuffer())),
            get('io.safetensors').then(async (r) => new Uint8Array(await r.arrayBuffer())),
          ]);
          return {
            backend: window.einvit.tf.getBackend(),
            errs: await window.einvit.checkReference(config, model, io),
          };
        }, folder);
        expect(errs.backend).toBe(name);
        timings.push(`${name} ${folder} max relative error: ${JSON.stringify(errs.errs)}`);
        for (const [k, v] of Object.entries(errs.errs)) expect(v, k).toBeLessThan(GPU_REFERENCE_TOLERANCE);
      },
      SLOW,
    );
  });
});
