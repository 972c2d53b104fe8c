import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { ViT } from '../../src/vit/model.js';
import { sincosPosEmbed2d, sincosTable } from '../../src/vit/posembed.js';
import { type ViTConfig, headDim, numTokens, parseConfig } from '../../src/vit/config.js';
import { type TensorData, openSafetensors, writeSafetensors } from '../../src/vit/safetensors.js';
import {
  detectNaming,
  expectedParameters,
  fromHuggingFace,
  loadCheckpoint,
  readCheckpoint,
  toHuggingFace,
  toNaming,
} from '../../src/vit/weights.js';
import { relError } from '../helpers/rel-error.js';

const REF = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'vit-reference');
const MODELS = ['cifar-tiny', 'vit-ti-16', 'vit-s-16-hf'] as const;
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'einvit-w-'));
  await ready('cpu');
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const refConfig = (name: string): ViTConfig =>
  parseConfig(
    JSON.parse(fs.readFileSync(path.join(REF, name, 'config.json'), 'utf8')),
    `${name}/config.json`,
  );
const refModel = (name: string) => path.join(REF, name, 'model.safetensors');

/** Every tensor of a file, as stored. */
function readAll(file: string): Map<string, TensorData> {
  const f = openSafetensors(file);
  try {
    return new Map(f.keys().map((k) => [k, { shape: f.info(k).shape, data: f.readFloat32(k) }]));
  } finally {
    f.close();
  }
}

function errorOf(fn: () => unknown): CheckpointError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return e as CheckpointError;
  }
  throw new Error('expected a CheckpointError');
}

/** The sin-cos table of a square-grid config, as the model and HF export compute it. */
function sincosOf(cfg: ViTConfig): Float32Array {
  const g = cfg.image_size / cfg.patch_size;
  return sincosTable(cfg.hidden_size, g, g, cfg.class_token ? 1 : 0);
}

/** Bitwise equality of two float arrays (fast, and stricter than toEqual: -0 and NaN bits count). */
function expectSame(a: Float32Array | undefined, b: Float32Array | undefined, what = ''): void {
  expect(a, what).toBeInstanceOf(Float32Array);
  expect(b, what).toBeInstanceOf(Float32Array);
  const ba = Buffer.from(a!.buffer, a!.byteOffset, a!.byteLength);
  const bb = Buffer.from(b!.buffer, b!.byteOffset, b!.byteLength);
  expect(ba.equals(bb), what).toBe(true);
}

/**
 * Plain-JS embeddings and block-0 attention probabilities from loaded (internal) parameters, for image
 * n of the reference io file. Matching hidden_states.0 and attentions.0 checks the patch-weight layout,
 * cls/pos mapping and the q/k row order of the fused qkv by value.
 */
function referenceCheck(
  cfg: ViTConfig,
  params: Map<string, TensorData>,
  io: Map<string, TensorData>,
  n: number,
) {
  const D = cfg.hidden_size;
  const C = cfg.num_channels;
  const P = cfg.patch_size;
  const S = cfg.image_size;
  const G = S / P;
  const T = numTokens(cfg);
  const get = (k: string) => params.get(k)!.data;
  const W = get('patch_embed.proj.weight');
  const bias = get('patch_embed.proj.bias');
  const pos = get('pos_embed');
  const cls = get('cls_token');
  const px = io.get('pixel_values')!.data.subarray(n * C * S * S, (n + 1) * C * S * S);
  const x = new Float64Array(T * D);
  for (let d = 0; d < D; d++) x[d] = cls[d] + pos[d];
  for (let t = 1; t < T; t++) {
    const r = Math.floor((t - 1) / G);
    const c = (t - 1) % G;
    for (let d = 0; d < D; d++) {
      let s = bias[d];
      for (let ch = 0; ch < C; ch++)
        for (let p1 = 0; p1 < P; p1++)
          for (let p2 = 0; p2 < P; p2++)
            s += W[((d * C + ch) * P + p1) * P + p2] * px[(ch * S + r * P + p1) * S + c * P + p2];
      x[t * D + d] = s + pos[t * D + d];
    }
  }
  const h0 = io.get('hidden_states.0')!.data.subarray(n * T * D, (n + 1) * T * D);
  expect(relError(x, h0)).toBeLessThan(1e-5);

  // LayerNorm 1, then q and k from the fused qkv rows [0, D) and [D, 2D).
  const g = get('blocks.0.norm1.weight');
  const b = get('blocks.0.norm1.bias');
  const qkvW = get('blocks.0.attn.qkv.weight');
  const qkvB = get('blocks.0.attn.qkv.bias');
  const ln = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += x[t * D + d];
    mean /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[t * D + d] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + cfg.layer_norm_eps);
    for (let d = 0; d < D; d++) ln[t * D + d] = (x[t * D + d] - mean) * inv * g[d] + b[d];
  }
  const proj = (row0: number) => {
    const out = new Float64Array(T * D);
    for (let t = 0; t < T; t++)
      for (let o = 0; o < D; o++) {
        let s = qkvB[row0 + o];
        for (let i = 0; i < D; i++) s += ln[t * D + i] * qkvW[(row0 + o) * D + i];
        out[t * D + o] = s;
      }
    return out;
  };
  const q = proj(0);
  const k = proj(D);
  const H = cfg.num_attention_heads;
  const hd = headDim(cfg);
  const probs = new Float64Array(H * T * T);
  for (let h = 0; h < H; h++)
    for (let i = 0; i < T; i++) {
      const row = new Float64Array(T);
      let max = -Infinity;
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let e = 0; e < hd; e++) s += q[i * D + h * hd + e] * k[j * D + h * hd + e];
        row[j] = s / Math.sqrt(hd);
        max = Math.max(max, row[j]);
      }
      let sum = 0;
      for (let j = 0; j < T; j++) sum += row[j] = Math.exp(row[j] - max);
      for (let j = 0; j < T; j++) probs[(h * T + i) * T + j] = row[j] / sum;
    }
  const a0 = io.get('attentions.0')!.data.subarray(n * H * T * T, (n + 1) * H * T * T);
  expect(relError(probs, a0)).toBeLessThan(1e-5);
}

describe('reference checkpoints', () => {
  for (const name of MODELS) {
    it(`${name} loads with its config, right shapes, and reproduces embeddings and attention`, () => {
      const cfg = refConfig(name);
      const params = readCheckpoint(refModel(name), cfg);
      const expected = expectedParameters(cfg);
      expect([...params.keys()]).toEqual([...expected.keys()]);
      for (const [k, shape] of expected) {
        expect(params.get(k)!.shape, k).toEqual(shape);
        expect(params.get(k)!.data.length, k).toBe(shape.reduce((a, d) => a * d, 1));
      }
      referenceCheck(cfg, params, readAll(path.join(REF, name, 'io.safetensors')), 1);
    });
  }

  it('detects the naming of each file', () => {
    expect(MODELS.map((m) => detectNaming(openSafetensors(refModel(m)).keys()))).toEqual([
      'hf',
      'timm',
      'hf',
    ]);
    expect(errorOf(() => detectNaming(['foo.weight', 'bar'])).message).toContain('foo.weight');
  });

  it('timm keys load unchanged', () => {
    const cfg = refConfig('vit-ti-16');
    const raw = readAll(refModel('vit-ti-16'));
    const params = readCheckpoint(refModel('vit-ti-16'), cfg);
    expect(params.size).toBe(raw.size);
    for (const [k, t] of raw) expectSame(params.get(k)!.data, t.data);
  });

  it('qkv rows are query, then key, then value (by value against the HF file)', () => {
    const cfg = refConfig('cifar-tiny');
    const raw = readAll(refModel('cifar-tiny'));
    const params = readCheckpoint(refModel('cifar-tiny'), cfg);
    const D = cfg.hidden_size;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const w = params.get(`blocks.${i}.attn.qkv.weight`)!;
      const b = params.get(`blocks.${i}.attn.qkv.bias`)!;
      expect(w.shape).toEqual([3 * D, D]);
      ['query', 'key', 'value'].forEach((part, j) => {
        const hw = raw.get(`vit.encoder.layer.${i}.attention.attention.${part}.weight`)!.data;
        const hb = raw.get(`vit.encoder.layer.${i}.attention.attention.${part}.bias`)!.data;
        expectSame(w.data.subarray(j * D * D, (j + 1) * D * D), hw);
        expectSame(b.data.subarray(j * D, (j + 1) * D), hb);
      });
      // row 5 of k is row D + 5 of qkv
      expect(w.data[(D + 5) * D + 7]).toBe(
        raw.get(`vit.encoder.layer.${i}.attention.attention.key.weight`)!.data[5 * D + 7],
      );
    }
    expectSame(params.get('head.weight')!.data, raw.get('classifier.weight')!.data);
    expectSame(params.get('norm.bias')!.data, raw.get('vit.layernorm.bias')!.data);
    expectSame(
      params.get('blocks.2.mlp.fc2.weight')!.data,
      raw.get('vit.encoder.layer.2.output.dense.weight')!.data,
    );
  });
});

describe('HuggingFace roundtrip', () => {
  it('HF -> internal -> HF is exact, in memory and through ViT.save', async () => {
    for (const name of ['cifar-tiny', 'vit-s-16-hf']) {
      const cfg = refConfig(name);
      const raw = readAll(refModel(name));
      const internal = fromHuggingFace(raw, cfg);
      const back = toHuggingFace(internal, cfg);
      expect([...back.keys()].sort()).toEqual([...raw.keys()].sort());
      for (const [k, t] of raw) {
        expect(back.get(k)!.shape, k).toEqual(t.shape);
        expectSame(back.get(k)!.data, t.data, k);
      }
      const model = ViT.fromParameters(cfg, internal);
      await model.save(path.join(dir, `${name}-hf`), { naming: 'hf', metadata: { step: '3' } });
      model.dispose();
      const f = openSafetensors(path.join(dir, `${name}-hf`, 'model.safetensors'));
      try {
        expect(f.metadata).toEqual({ format: 'pt', step: '3' });
        expect(f.keys()).toEqual([...raw.keys()].sort());
        for (const [k, t] of raw) expectSame(f.readFloat32(k), t.data, k);
      } finally {
        f.close();
      }
    }
  });

  it('ViT.save writes an HF folder whose config and weights read back', async () => {
    const cfg = refConfig('cifar-tiny');
    const params = readCheckpoint(refModel('cifar-tiny'), cfg);
    const out = path.join(dir, 'hf-folder');
    const model = ViT.fromParameters(cfg, params);
    await model.save(out);
    model.dispose();
    // One atomic writer: no temporary file is left beside the two files.
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors']);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(json.model_type).toBe('vit');
    expect(parseConfig(json)).toEqual(cfg);
    const again = readCheckpoint(path.join(out, 'model.safetensors'), cfg);
    for (const [k, t] of params) expectSame(again.get(k)!.data, t.data, k);
  });

  it('timm naming saves internal names as they are', async () => {
    const cfg = refConfig('cifar-tiny');
    const params = readCheckpoint(refModel('cifar-tiny'), cfg);
    const folder = path.join(dir, 'timm');
    const model = ViT.fromParameters(cfg, params);
    await model.save(folder, { naming: 'timm' });
    model.dispose();
    expect(JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')).naming).toBe('timm');
    const out = path.join(folder, 'model.safetensors');
    const f = openSafetensors(out);
    expect(f.keys()).toEqual([...params.keys()].sort());
    f.close();
    expectSame(
      readCheckpoint(out, cfg).get('blocks.3.attn.qkv.weight')!.data,
      params.get('blocks.3.attn.qkv.weight')!.data,
    );
  });

  it('torchvision names roundtrip too', () => {
    const cfg = refConfig('vit-ti-16');
    const params = readCheckpoint(refModel('vit-ti-16'), cfg);
    const tv = toNaming(params, cfg, 'torchvision');
    expect(tv.has('encoder.layers.encoder_layer_1.self_attention.in_proj_weight')).toBe(true);
    expect(tv.has('heads.head.weight')).toBe(true);
    const out = path.join(dir, 'tv.safetensors');
    writeSafetensors(out, tv);
    const f = openSafetensors(out);
    try {
      expect(detectNaming(f.keys())).toBe('torchvision');
      const back = loadCheckpoint(f, cfg);
      for (const [k, t] of params) expectSame(back.get(k)!.data, t.data, k);
    } finally {
      f.close();
    }
  });

  it('refuses to write HF names for a model HF cannot hold', () => {
    const cfg = { ...refConfig('cifar-tiny'), layer_scale: true };
    const e = errorOf(() => toHuggingFace(new Map(), cfg));
    expect(e.message).toContain('layer_scale');
  });
});

describe('mismatches', () => {
  it('one error names the missing, the unexpected and the wrong-shaped key', () => {
    const cfg = refConfig('cifar-tiny');
    const raw = readAll(refModel('cifar-tiny'));
    raw.delete('vit.encoder.layer.1.attention.attention.key.weight');
    raw.set('vit.encoder.layer.0.extra.weight', { shape: [3], data: new Float32Array(3) });
    raw.set('vit.layernorm.bias', { shape: [47], data: new Float32Array(47) });
    const file = path.join(dir, 'broken.safetensors');
    writeSafetensors(file, raw, { format: 'pt' });
    const e = errorOf(() => readCheckpoint(file, cfg));
    const m = e.message;
    expect(m).toContain('broken.safetensors');
    expect(m).toContain('3 problems');
    expect(m).toMatch(
      /missing\s+vit\.encoder\.layer\.1\.attention\.attention\.key\.weight \(for blocks\.1\.attn\.qkv\.weight\): expected \[48, 48\]/,
    );
    expect(m).toMatch(/unexpected\s+vit\.encoder\.layer\.0\.extra\.weight: got \[3\]/);
    expect(m).toMatch(/wrong shape vit\.layernorm\.bias \(for norm\.bias\): expected \[48\], got \[47\]/);
    // the same checks on the in-memory path
    expect(errorOf(() => fromHuggingFace(raw, cfg)).message).toContain('3 problems');
  });

  it('config switches the file does not have are listed too', () => {
    const raw = readAll(refModel('cifar-tiny'));
    const noBias = errorOf(() =>
      fromHuggingFace(raw, { ...refConfig('cifar-tiny'), qkv_bias: false }),
    ).message;
    expect(noBias).toContain('12 problems');
    expect(noBias).toContain('unexpected  vit.encoder.layer.3.attention.attention.value.bias: got [48] F32');
    const ls = errorOf(() => fromHuggingFace(raw, { ...refConfig('cifar-tiny'), layer_scale: true })).message;
    expect(ls).toContain('unsupported blocks.0.ls1.gamma');
  });

  it('ignoreHead loads everything but the classifier', () => {
    const cfg10 = refConfig('cifar-tiny');
    const cfg5 = parseConfig({
      ...cfg10,
      num_labels: 5,
      id2label: { 0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e' },
    });
    const e = errorOf(() => readCheckpoint(refModel('cifar-tiny'), cfg5));
    expect(e.message).toContain(
      'wrong shape classifier.weight (for head.weight): expected [5, 48], got [10, 48]',
    );
    expect(e.message).toContain('ignoreHead');
    const params = readCheckpoint(refModel('cifar-tiny'), cfg5, { ignoreHead: true });
    expect(params.has('head.weight')).toBe(false);
    expect(params.has('head.bias')).toBe(false);
    expect(params.size).toBe(expectedParameters(cfg5).size - 2);
    const full = readCheckpoint(refModel('cifar-tiny'), cfg10);
    expectSame(params.get('blocks.0.attn.qkv.weight')!.data, full.get('blocks.0.attn.qkv.weight')!.data);
  });

  it('HF ViTModel files (no prefix, pooler, no classifier) load with ignoreHead', () => {
    const cfg = refConfig('cifar-tiny');
    const raw = readAll(refModel('cifar-tiny'));
    const base = new Map<string, TensorData>();
    for (const [k, t] of raw) if (k.startsWith('vit.')) base.set(k.slice(4), t);
    base.set('pooler.dense.weight', { shape: [48, 48], data: new Float32Array(48 * 48) });
    base.set('pooler.dense.bias', { shape: [48], data: new Float32Array(48) });
    const file = path.join(dir, 'vitmodel.safetensors');
    writeSafetensors(file, base, { format: 'pt' });
    const f = openSafetensors(file);
    try {
      expect(detectNaming(f.keys())).toBe('hf-base');
      const e = errorOf(() => loadCheckpoint(f, cfg));
      expect(e.message).toContain('missing     classifier.weight');
      expect(e.message).toContain('ViTModel');
      expect(e.message).not.toContain('pooler');
      const params = loadCheckpoint(f, cfg, { ignoreHead: true });
      const full = readCheckpoint(refModel('cifar-tiny'), cfg);
      expect(params.size).toBe(full.size - 2);
      for (const [k, t] of params) expectSame(t.data, full.get(k)!.data, k);
    } finally {
      f.close();
    }
  });

  it('malformed in-memory tensors are rejected', () => {
    const bad = new Map([['vit.embeddings.cls_token', { shape: [1, 1, 48], data: new Float32Array(3) }]]);
    expect(errorOf(() => fromHuggingFace(bad, refConfig('cifar-tiny'))).message).toContain(
      'vit.embeddings.cls_token',
    );
  });
});

describe('sinusoidal positions', () => {
  it('builds the 2-D sin-cos table with a zero class row', () => {
    const cfg = parseConfig({
      image_size: 8,
      patch_size: 2,
      hidden_size: 8,
      num_attention_heads: 2,
      position_embedding: 'sinusoidal',
    });
    const t = sincosOf(cfg);
    expect(t.length).toBe(17 * 8);
    expect(Array.from(t.subarray(0, 8))).toEqual(new Array(8).fill(0));
    // token for grid row 1, col 2 = 1 + 1*4 + 2 = 7; frequencies 1 and 10000^-0.5 = 0.01
    const row = Array.from(t.subarray(7 * 8, 8 * 8));
    // column first, then row (MAE)
    const [c, r] = [2, 1];
    const w = [1, 0.01];
    const want = [...w.map((x) => Math.sin(c * x)), ...w.map((x) => Math.cos(c * x))];
    want.push(...w.map((x) => Math.sin(r * x)), ...w.map((x) => Math.cos(r * x)));
    row.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });

  it('is the table the model computes (posembed.sincosPosEmbed2d)', () => {
    const cfg = refConfig('cifar-tiny');
    const before = tf.memory().numTensors;
    const t = sincosPosEmbed2d(cfg.hidden_size, 8, 8, 1);
    expect(t.shape).toEqual([1, numTokens(cfg), cfg.hidden_size]);
    expectSame(sincosOf(cfg), t.dataSync() as Float32Array);
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a sinusoidal config skips the stored table and HF export writes it', () => {
    const cfg = { ...refConfig('cifar-tiny'), position_embedding: 'sinusoidal' as const };
    const params = readCheckpoint(refModel('cifar-tiny'), cfg);
    expect(params.has('pos_embed')).toBe(false);
    const hf = toHuggingFace(params, cfg);
    expectSame(hf.get('vit.embeddings.position_embeddings')!.data, sincosOf(cfg));
    expect(fromHuggingFace(hf, cfg).size).toBe(params.size);
  });
});
