// The seed tutorials' own checkpoints (test/seed-models, README there): import by source_code and by key
// names, logits within 1e-5 of what the tutorials' PyTorch code computes (eager and compiled), errors for
// folders that do not fit, export back under the tutorials' state_dict names, the quirk config fields'
// round trips, the presets and the IR gradients of the quirk network.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { CheckpointError } from '../../src/errors.js';
import { ViT } from '../../src/vit/model.js';
import { openSafetensors, writeSafetensors, type TensorData } from '../../src/vit/safetensors.js';
import {
  parseConfig,
  PRESETS,
  QUIRK_DEFAULTS,
  toHFConfigJson,
  type TutorialNaming,
  type ViTConfig,
} from '../../src/vit/config.js';
import { sincos1d, tutorialIncompatibilities } from '../../src/vit/tutorials.js';
import { traceViT } from '../../src/vit/trace.js';
import { mapParams } from '../../src/vit/params.js';
import { evaluate } from '../../src/ir/index.js';
import { grad } from '../../src/ir/grad.js';
import { rebuild } from '../../src/ir/builder.js';
import { conformanceCommand } from '../../src/cli/conformance.js';
import { relError } from '../helpers/rel-error.js';

const SEEDS = fileURLToPath(new URL('../seed-models/', import.meta.url));
const FOLDERS: [string, TutorialNaming][] = [
  ['seed-000-einops-vit', 'einops-tutorial'],
  ['seed-001-vit-from-scratch', 'scratch-tutorial'],
  ['seed-002-cifar-vit', 'cifar-tutorial'],
];
const TOL = 1e-5;

function readAll(file: string): Map<string, TensorData> {
  const f = openSafetensors(file);
  try {
    return new Map(f.keys().map((k) => [k, { shape: f.info(k).shape, data: f.readFloat32(k) }]));
  } finally {
    f.close();
  }
}

/** A copy of a seed folder in a temp dir, with config.json and model.safetensors editable. */
function copyFolder(folder: string, tmp: string, name = folder): string {
  const dir = join(tmp, name);
  cpSync(join(SEEDS, folder), dir, { recursive: true });
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(Error);
  return e as Error;
}

let tmp: string;
beforeAll(async () => {
  await ready('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'einvit-tutorials-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the tutorials' checkpoints compute what their PyTorch code computes", () => {
  for (const [folder, naming] of FOLDERS) {
    it(`${folder}: eager and compiled logits within 1e-5`, async () => {
      const io = readAll(join(SEEDS, folder, 'io.safetensors'));
      const before = tf.memory().numTensors;
      const model = await ViT.fromPretrained(join(SEEDS, folder));
      expect(model.config.naming).toBe(naming);
      const pv = io.get('pixel_values')!;
      const pixels = tf.tensor(pv.data, pv.shape);
      const { logits } = model.forward(pixels);
      expect(logits.shape).toEqual(io.get('logits')!.shape);
      expect(relError(logits.dataSync(), io.get('logits')!.data)).toBeLessThan(TOL);
      logits.dispose();

      // The traced graph of the same definition, on onnxruntime.
      const fast = await model.compile({ threads: 1 });
      const out = await fast.forward(pixels);
      expect(relError(out.logits.dataSync(), io.get('logits')!.data)).toBeLessThan(TOL);
      out.logits.dispose();
      await fast.dispose();
      pixels.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('einvit conformance accepts the folders', async () => {
    const { lines, passed, failed } = await conformanceCommand([SEEDS], 'wasm');
    expect(failed, lines.join('\n')).toBe(0);
    expect(passed).toBe(3);
  });

  it('loads from the key names when config.json has only the constructor arguments', async () => {
    for (const [folder, naming] of FOLDERS) {
      const dir = copyFolder(folder, tmp, `${folder}-nosource`);
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      delete json.source_code;
      writeFileSync(join(dir, 'config.json'), JSON.stringify(json));
      const model = await ViT.fromPretrained(dir);
      expect(model.config.naming).toBe(naming);
      const io = readAll(join(dir, 'io.safetensors'));
      const pv = io.get('pixel_values')!;
      const logits = tf.tidy(() => model.forward(tf.tensor(pv.data, pv.shape)).logits);
      expect(relError(logits.dataSync(), io.get('logits')!.data)).toBeLessThan(TOL);
      logits.dispose();
      model.dispose();
    }
  });
});

describe('tutorial folders that do not fit', () => {
  it('an unknown source_code names the field, the value and the known ones', async () => {
    const dir = copyFolder('seed-000-einops-vit', tmp, 'unknown-source');
    const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...json, source_code: 'seed-009' }));
    const e = await rejection(ViT.fromPretrained(dir));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(
      `config ${join(dir, 'config.json')}: source_code "seed-009" is not a known tutorial (known: seed-000, seed-001, seed-002)`,
    );
  });

  it('constructor arguments against the weights: the field and both values', async () => {
    const dir = copyFolder('seed-001-vit-from-scratch', tmp, 'bad-args');
    const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...json, emb_size: 32, num_class: 7 }));
    const e = await rejection(ViT.fromPretrained(dir));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(
      `config ${join(dir, 'config.json')}: the constructor arguments do not fit the weights (scratch-tutorial): ` +
        'emb_size is 32 but patchemb.projection.0.weight has 64 output channels; ' +
        'num_class is 7 but ff.weight has 10 rows',
    );
    const dir2 = copyFolder('seed-002-cifar-vit', tmp, 'bad-heads');
    const j2 = JSON.parse(readFileSync(join(dir2, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir2, 'config.json'), JSON.stringify({ ...j2, num_attention_heads: 5 }));
    const e2 = await rejection(ViT.fromPretrained(dir2));
    expect(e2).toBeInstanceOf(CheckpointError);
    expect(e2.message).toBe(
      `config ${join(dir2, 'config.json')}: hidden_size 48 is not divisible by num_attention_heads 5`,
    );
  });

  it('every missing, unexpected or mis-shaped key in one error', async () => {
    const dir = copyFolder('seed-002-cifar-vit', tmp, 'bad-keys');
    const w = readAll(join(dir, 'model.safetensors'));
    w.delete('encoder.blocks.1.attention.heads.2.key.weight');
    w.delete('encoder.blocks.3.layernorm_2.bias');
    w.set('encoder.blocks.2.mlp.dense_1.bias', { shape: [100], data: new Float32Array(100) });
    w.set('encoder.blocks.0.attention.heads.4.query.weight', {
      shape: [12, 48],
      data: new Float32Array(576),
    });
    writeSafetensors(join(dir, 'model.safetensors'), w, { format: 'pt' });
    const e = await rejection(ViT.fromPretrained(dir));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(
      [
        `checkpoint ${join(dir, 'model.safetensors')} (cifar-tutorial names) does not fit the config: 4 problems`,
        '  missing     encoder.blocks.1.attention.heads.2.key.weight (for blocks.1.attn.qkv.weight): expected [12, 48]',
        '  wrong shape encoder.blocks.2.mlp.dense_1.bias (for blocks.2.mlp.fc1.bias): expected [192], got [100]',
        '  missing     encoder.blocks.3.layernorm_2.bias (for blocks.3.norm2.bias): expected [48]',
        '  unexpected  encoder.blocks.0.attention.heads.4.query.weight: got [12, 48] F32',
      ].join('\n'),
    );
  });
});

describe("export back under the tutorials' names", () => {
  for (const [folder, naming] of FOLDERS) {
    it(`${folder}: same keys, shapes and values as the tutorial's state_dict; reloads`, async () => {
      const model = await ViT.fromPretrained(join(SEEDS, folder));
      const out = join(tmp, `save-${naming}`);
      await model.save(out, { naming });
      const ref = readAll(join(SEEDS, folder, 'model.safetensors'));
      const got = readAll(join(out, 'model.safetensors'));
      expect([...got.keys()].sort()).toEqual([...ref.keys()].sort());
      for (const [k, t] of ref) {
        expect(got.get(k)!.shape, k).toEqual(t.shape);
        expect(Buffer.from(got.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
      }
      // config.json: the tutorial's constructor arguments and source_code (plus id2label).
      const json = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
      const seed = JSON.parse(readFileSync(join(SEEDS, folder, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect({ ...json, id2label: undefined }).toEqual({ ...seed, id2label: undefined });
      const again = await ViT.fromPretrained(out);
      expect(again.config).toEqual(model.config);
      // 'auto' keeps a tutorial model in its tutorial's names.
      await again.save(join(out, 'auto'));
      expect([...readAll(join(out, 'auto', 'model.safetensors')).keys()].sort()).toEqual(
        [...ref.keys()].sort(),
      );
      again.dispose();
      model.dispose();
    });
  }

  it("a model the tutorial's code cannot compute is refused before anything is written", async () => {
    const model = ViT.create({ ...PRESETS['cifar-tiny'], num_hidden_layers: 1 });
    const e = await rejection(model.save(join(tmp, 'refused'), { naming: 'cifar-tutorial' }));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(
      'the cifar-tutorial code cannot hold this model: hidden_act is "gelu", the tutorial\'s code has "gelu_new"; ' +
        "layer_norm_eps is 0.000001, the tutorial's code has 0.00001; final_norm is true, the tutorial's code has false",
    );
    model.dispose();
  });
});

describe('quirk config fields', () => {
  it('standard models write exactly the config they wrote before', async () => {
    expect(Object.keys(toHFConfigJson(PRESETS.tiny)).sort()).toEqual(
      [
        'architectures',
        'model_type',
        'attention_probs_dropout_prob',
        'encoder_stride',
        'hidden_act',
        'hidden_dropout_prob',
        'hidden_size',
        'id2label',
        'image_size',
        'initializer_range',
        'intermediate_size',
        'label2id',
        'layer_norm_eps',
        'num_attention_heads',
        'num_channels',
        'num_hidden_layers',
        'num_labels',
        'patch_size',
        'qkv_bias',
        'naming',
        'pooling',
        'class_token',
        'num_prefix_tokens',
        'position_embedding',
        'final_norm',
        'fc_norm',
        'layer_scale',
      ].sort(),
    );
    const model = ViT.create({ ...PRESETS.tiny, pooling: 'mean', fc_norm: true, final_norm: false });
    await model.save(join(tmp, 'timm-std'));
    const json = JSON.parse(readFileSync(join(tmp, 'timm-std', 'config.json'), 'utf8')) as object;
    for (const k of Object.keys(QUIRK_DEFAULTS)) expect(json).not.toHaveProperty(k);
    model.dispose();
  });

  it('round-trip through config.json (timm save) and parseConfig', async () => {
    const cfg: ViTConfig = parseConfig({
      ...PRESETS['scratch-tutorial'],
      image_size: 16,
      patch_size: 8,
      hidden_size: 16,
      intermediate_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_channels: 1, // the tutorial's code is fixed at 3: saved as timm
      attention_scale_dim: 'hidden_size',
      attention_scale_at: 'probs',
      pooling: 'mean_all',
      fc_norm: true,
    });
    const model = ViT.create(cfg);
    await model.save(join(tmp, 'quirks'));
    const json = JSON.parse(readFileSync(join(tmp, 'quirks', 'config.json'), 'utf8')) as ViTConfig;
    expect(json.naming).toBe('timm');
    const again = await ViT.fromPretrained(join(tmp, 'quirks'));
    expect(again.config).toEqual({ ...cfg, naming: 'timm' });
    // A fresh model of the same config computes the same logits after the round trip.
    const x = tf.randomUniform([2, 1, 16, 16], -1, 1, 'float32', 3);
    const a = tf.tidy(() => model.forward(x).logits);
    const b = tf.tidy(() => again.forward(x).logits);
    expect(relError(a.dataSync(), b.dataSync())).toBe(0);
    tf.dispose([x, a, b]);
    again.dispose();
    model.dispose();
  });

  it('bad quirk values name the field', () => {
    expect(() => parseConfig({ attention_softmax: 'rows' }, 'c.json')).toThrow(CheckpointError);
    expect(() => parseConfig({ attention_softmax: 'rows' }, 'c.json')).toThrow(
      `config c.json: attention_softmax must be one of 'keys', 'queries', got "rows"`,
    );
    expect(() =>
      parseConfig({ pos_embed_init: 'sincos_1d', position_embedding: 'sinusoidal' }, 'c.json'),
    ).toThrow("config c.json: pos_embed_init 'sincos_1d' needs position_embedding 'learned'");
  });
});

describe('presets to train the tutorials from scratch', () => {
  it("build each tutorial's architecture (its code can hold them)", () => {
    for (const [, naming] of FOLDERS) expect(tutorialIncompatibilities(PRESETS[naming], naming)).toEqual([]);
    // CIFAR tutorial = cifar-tiny + tanh GELU + per-head naming, and the tutorial's own LayerNorm setup.
    const diff = Object.entries(PRESETS['cifar-tutorial'])
      .filter(([k, v]) => JSON.stringify(PRESETS['cifar-tiny'][k as keyof ViTConfig]) !== JSON.stringify(v))
      .map(([k]) => k);
    expect(diff.sort()).toEqual(['final_norm', 'hidden_act', 'layer_norm_eps', 'naming']);
    expect(PRESETS['cifar-tutorial'].hidden_act).toBe('gelu_new');
  });

  it("the from-scratch tutorial's positions start as the README's 1-D sin-cos table, and train", () => {
    const cfg = parseConfig({
      ...PRESETS['scratch-tutorial'],
      image_size: 32,
      patch_size: 8,
      hidden_size: 64,
      intermediate_size: 256,
      num_hidden_layers: 1,
      num_attention_heads: 4,
    });
    const model = ViT.create(cfg, 7);
    const pos = model.params.posEmbed!;
    expect(pos.shape).toEqual([1, 17, 64]);
    expect(pos.trainable).toBe(true);
    const got = pos.dataSync();
    // README: sin(i / 10000^(j/E)) for even j, cos(i / 10000^((j-1)/E)) for odd j, N+1 positions.
    for (let i = 0; i < 17; i++) {
      for (let j = 0; j < 64; j++) {
        const want = j % 2 === 0 ? Math.sin(i / 10000 ** (j / 64)) : Math.cos(i / 10000 ** ((j - 1) / 64));
        expect(Math.abs(got[i * 64 + j] - want), `${i},${j}`).toBeLessThan(1e-6);
      }
    }
    expect(sincos1d(17, 64)).toEqual(Float32Array.from(got));
    // The table is a trainable parameter: the loss has a gradient with respect to it.
    const x = tf.randomUniform([2, 3, 32, 32], -1, 1, 'float32', 1);
    const { grads, value } = tf.variableGrads(
      () => tf.sum(model.forward(x, { training: true, seed: 1 }).logits) as tf.Scalar,
    );
    const g = grads[pos.name];
    expect(tf.max(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([x, value, ...Object.values(grads)]);
    model.dispose();
  });
});

describe('IR gradients of the quirk networks match tfjs', () => {
  // Every quirk at once: scale after softmax, softmax over queries, shared q/k/v, no projection,
  // shared norm, no activation, mean over all tokens, fc_norm.
  for (const [folder] of FOLDERS.slice(0, 2)) {
    it(`${folder}: traced graph + grad against tf.variableGrads`, async () => {
      const model = await ViT.fromPretrained(join(SEEDS, folder));
      const io = readAll(join(SEEDS, folder, 'io.safetensors'));
      const pv = io.get('pixel_values')!;
      const before = tf.memory().numTensors;
      const cfg = model.config;
      const data = mapParams(cfg, model.params, (v) => ({
        shape: [...v.shape],
        data: v.dataSync() as Float32Array,
      }));
      const graph = traceViT(cfg, data, { batch: 3 });
      const { g, syms } = rebuild(graph);
      const weights = tf.randomNormal([3, cfg.num_labels], 0, 1, 'float32', 5);
      const w = g.constant(weights.dataSync() as Float32Array, [3, cfg.num_labels]);
      const logits = syms[graph.outputs.find((o) => o.name === 'logits')!.id];
      const loss = logits.mul(w).sum([0, 1]);
      const names = [...model.parameters().keys()];
      const params = new Map<string, number>();
      for (const n of graph.nodes) if (n.op.kind === 'param') params.set(n.op.name, n.id);
      const grads = grad(
        loss,
        names.map((n) => syms[params.get(n)!]),
      );
      const withGrads = g.build({ loss, ...Object.fromEntries(names.map((n, i) => [`d.${n}`, grads[i]])) });
      const pixels = tf.tensor(pv.data, pv.shape);
      const out = evaluate(withGrads, { pixel_values: pixels });
      const ref = tf.variableGrads(
        () => tf.sum(tf.mul(model.forward(pixels).logits, weights)) as tf.Scalar,
        [...model.parameters().values()],
      );
      expect(relError(out.loss.dataSync(), ref.value.dataSync())).toBeLessThan(1e-5);
      for (const n of names) {
        const want = ref.grads[model.parameters().get(n)!.name];
        const got = out[`d.${n}`];
        expect(got.shape, n).toEqual(want.shape);
        expect(relError(got.dataSync(), want.dataSync()), n).toBeLessThan(1e-4);
      }
      tf.dispose([pixels, weights, ref.value, ...Object.values(ref.grads), ...Object.values(out)]);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });
  }
});
