// What makes a folder trained by einvit load in HuggingFace transformers
// (`ViTForImageClassification.from_pretrained`), pinned: the config.json fields transformers' ViTConfig
// reads and every state_dict key with its shape and dtype, compared with the folders transformers'
// own `save_pretrained` wrote (test/peers/<config>/config.json, model.safetensors). The mnist-tiny
// folder comes from a 1-step run through the real trainer and its save path; cifar-tiny from
// `ViT.save(dir, { naming: 'hf' })`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { train } from '../../src/train/trainer.js';
import { PRESETS, type ViTConfig } from '../../src/vit/config.js';
import { ViT } from '../../src/vit/model.js';
import { openSafetensors } from '../../src/vit/safetensors.js';

const peers = (config: string, file: string) =>
  fileURLToPath(new URL(`../peers/${config}/${file}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'einvit-hf-compat-'));

beforeAll(async () => {
  await ready('wasm');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The fields transformers' ViTConfig builds ViTForImageClassification from (besides the labels). */
const ARCHITECTURE_FIELDS = [
  'model_type',
  'architectures',
  'hidden_size',
  'num_hidden_layers',
  'num_attention_heads',
  'intermediate_size',
  'hidden_act',
  'hidden_dropout_prob',
  'attention_probs_dropout_prob',
  'layer_norm_eps',
  'image_size',
  'patch_size',
  'num_channels',
  'qkv_bias',
] as const;

/** HF ViTForImageClassification's state_dict keys per layer (transformers' names, no pooler). */
const LAYER_KEYS = [
  'attention.attention.query.weight',
  'attention.attention.query.bias',
  'attention.attention.key.weight',
  'attention.attention.key.bias',
  'attention.attention.value.weight',
  'attention.attention.value.bias',
  'attention.output.dense.weight',
  'attention.output.dense.bias',
  'intermediate.dense.weight',
  'intermediate.dense.bias',
  'output.dense.weight',
  'output.dense.bias',
  'layernorm_before.weight',
  'layernorm_before.bias',
  'layernorm_after.weight',
  'layernorm_after.bias',
];

/** Every key of an HF ViTForImageClassification checkpoint with its shape, for `cfg`. */
function hfKeys(cfg: ViTConfig): Record<string, number[]> {
  const D = cfg.hidden_size;
  const M = cfg.intermediate_size;
  const p = cfg.patch_size;
  const tokens = (cfg.image_size / p) ** 2 + 1;
  const out: Record<string, number[]> = {
    'vit.embeddings.cls_token': [1, 1, D],
    'vit.embeddings.position_embeddings': [1, tokens, D],
    'vit.embeddings.patch_embeddings.projection.weight': [D, cfg.num_channels, p, p],
    'vit.embeddings.patch_embeddings.projection.bias': [D],
    'vit.layernorm.weight': [D],
    'vit.layernorm.bias': [D],
    'classifier.weight': [cfg.num_labels, D],
    'classifier.bias': [cfg.num_labels],
  };
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    for (const k of LAYER_KEYS) {
      const shape = k.startsWith('intermediate.dense.weight')
        ? [M, D]
        : k === 'intermediate.dense.bias'
          ? [M]
          : k === 'output.dense.weight'
            ? [D, M]
            : k.endsWith('.weight') && !k.startsWith('layernorm')
              ? [D, D]
              : [D];
      out[`vit.encoder.layer.${i}.${k}`] = shape;
    }
  }
  return out;
}

/** Keys -> `dtype [shape]` of a safetensors file (what from_pretrained matches against the model). */
function keysOf(path: string): Record<string, string> {
  const f = openSafetensors(path);
  try {
    return Object.fromEntries(
      f
        .keys()
        .sort()
        .map((k) => [k, `${f.info(k).dtype} [${f.info(k).shape.join(', ')}]`]),
    );
  } finally {
    f.close();
  }
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/** config.json must give transformers the same architecture as the peer's, and labels it accepts. */
function expectHFConfig(ours: Record<string, unknown>, peer: Record<string, unknown>, cfg: ViTConfig): void {
  for (const field of ARCHITECTURE_FIELDS) expect(ours[field], field).toEqual(peer[field]);
  const id2label = ours.id2label as Record<string, string>;
  const label2id = ours.label2id as Record<string, number>;
  expect(Object.keys(id2label)).toEqual(Array.from({ length: cfg.num_labels }, (_, i) => String(i)));
  expect(Object.keys(id2label)).toEqual(Object.keys(peer.id2label as object));
  for (const [id, name] of Object.entries(id2label)) expect(label2id[name]).toBe(Number(id));
  if ('num_labels' in ours) expect(ours.num_labels).toBe(cfg.num_labels);
}

describe('HF compatibility of checkpoints einvit writes', () => {
  it('the pinned key list is what transformers wrote for the peers (mnist-tiny, cifar-tiny)', () => {
    for (const [config, cfg] of [
      ['mnist-tiny', PRESETS.tiny],
      ['cifar-tiny', PRESETS['cifar-tiny']],
    ] as const) {
      const expected = Object.fromEntries(
        Object.entries(hfKeys(cfg))
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, s]) => [k, `F32 [${s.join(', ')}]`]),
      );
      expect(keysOf(peers(config, 'model.safetensors'))).toEqual(expected);
      const peer = readJson(peers(config, 'config.json'));
      expect(peer.model_type).toBe('vit');
      expect(peer.architectures).toEqual(['ViTForImageClassification']);
    }
  });

  it('a 1-step run of the trainer (mnist tiny) writes the keys, shapes and config fields transformers loads', async () => {
    const before = tf.memory().numTensors;
    const out = join(dir, 'mnist');
    const r = await train({
      out,
      config: 'tiny',
      epochs: 1,
      batchSize: 64,
      limitTrain: 64,
      limitTest: 64,
      plots: false,
      log: () => undefined,
      progress: false,
    });
    const cfg = r.model.config;
    const trained = r.model.state();
    r.model.dispose();
    expect(tf.memory().numTensors).toBe(before);

    expect(keysOf(join(out, 'model.safetensors'))).toEqual(keysOf(peers('mnist-tiny', 'model.safetensors')));
    expectHFConfig(readJson(join(out, 'config.json')), readJson(peers('mnist-tiny', 'config.json')), cfg);

    // The values under HF names are the trained ones: q, k, v are the row blocks of the fused qkv.
    const D = cfg.hidden_size;
    const f = openSafetensors(join(out, 'model.safetensors'));
    try {
      const qkv = trained.get('blocks.2.attn.qkv.weight')!.data;
      const parts = ['query', 'key', 'value'].map((n) =>
        f.readFloat32(`vit.encoder.layer.2.attention.attention.${n}.weight`),
      );
      parts.forEach((w, i) => expect(w).toEqual(qkv.slice(i * D * D, (i + 1) * D * D)));
      expect(f.readFloat32('classifier.weight')).toEqual(trained.get('head.weight')!.data);
      expect(f.readFloat32('vit.embeddings.position_embeddings')).toEqual(trained.get('pos_embed')!.data);
      expect(f.readFloat32('vit.encoder.layer.0.layernorm_after.weight')).toEqual(
        trained.get('blocks.0.norm2.weight')!.data,
      );
      expect(f.metadata.format).toBe('pt');
    } finally {
      f.close();
    }
  });

  it("ViT.save(dir, { naming: 'hf' }) writes cifar-tiny as transformers does", async () => {
    const before = tf.memory().numTensors;
    const out = join(dir, 'cifar');
    const model = ViT.create(PRESETS['cifar-tiny'], 3);
    await model.save(out, { naming: 'hf' });
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(keysOf(join(out, 'model.safetensors'))).toEqual(keysOf(peers('cifar-tiny', 'model.safetensors')));
    expectHFConfig(
      readJson(join(out, 'config.json')),
      readJson(peers('cifar-tiny', 'config.json')),
      PRESETS['cifar-tiny'],
    );
  });
});
