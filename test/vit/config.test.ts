import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import {
  PRESETS,
  headDim,
  numPatches,
  numTokens,
  parseConfig,
  toHFConfigJson,
  type ViTConfig,
} from '../../src/vit/config.js';

const REF = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'vit-reference');
const refConfig = (name: string): unknown =>
  JSON.parse(fs.readFileSync(path.join(REF, name, 'config.json'), 'utf8'));

function errorOf(fn: () => unknown): CheckpointError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return e as CheckpointError;
  }
  throw new Error('expected a CheckpointError');
}

describe('parseConfig on the reference configs', () => {
  it('reads the HF cifar-tiny config', () => {
    const cfg = parseConfig(refConfig('cifar-tiny'), 'cifar-tiny/config.json');
    expect(cfg).toMatchObject({
      image_size: 32,
      patch_size: 4,
      num_channels: 3,
      hidden_size: 48,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      intermediate_size: 192,
      hidden_act: 'gelu',
      layer_norm_eps: 1e-12,
      qkv_bias: true,
      num_labels: 10,
      pooling: 'cls',
      class_token: true,
      position_embedding: 'learned',
      final_norm: true,
      fc_norm: false,
      layer_scale: false,
      naming: 'hf',
    });
    expect(cfg.id2label['3']).toBe('LABEL_3');
    expect(numPatches(cfg)).toBe(64);
    expect(numTokens(cfg)).toBe(65);
    expect(headDim(cfg)).toBe(12);
  });

  it('reads the timm vit-ti-16 config', () => {
    const cfg = parseConfig(refConfig('vit-ti-16'));
    expect(cfg).toMatchObject({
      image_size: 224,
      patch_size: 16,
      hidden_size: 192,
      num_hidden_layers: 2,
      num_attention_heads: 3,
      layer_norm_eps: 1e-6,
      num_labels: 1000,
      naming: 'timm',
      final_norm: true,
      fc_norm: false,
    });
    expect(Object.keys(cfg.id2label)).toHaveLength(1000);
    expect(numTokens(cfg)).toBe(197);
    expect(headDim(cfg)).toBe(64);
  });

  it('reads the HF vit-s-16 config', () => {
    const cfg = parseConfig(refConfig('vit-s-16-hf'));
    expect([
      cfg.hidden_size,
      cfg.num_attention_heads,
      cfg.num_hidden_layers,
      headDim(cfg),
      numTokens(cfg),
    ]).toEqual([384, 6, 1, 64, 197]);
  });
});

describe('defaults, aliases and presets', () => {
  it('fills HF defaults', () => {
    const cfg = parseConfig({});
    expect(cfg).toMatchObject({
      image_size: 224,
      patch_size: 16,
      hidden_size: 768,
      num_hidden_layers: 12,
      num_attention_heads: 12,
      intermediate_size: 3072,
      layer_norm_eps: 1e-12,
      num_labels: 2,
      id2label: { '0': 'LABEL_0', '1': 'LABEL_1' },
    });
    expect(parseConfig({ naming: 'timm' }).layer_norm_eps).toBe(1e-6);
  });

  it('accepts timm aliases: global_pool avg gives mean pooling with fc_norm and no pre-pool norm', () => {
    const cfg = parseConfig({
      global_pool: 'avg',
      num_classes: 0,
      init_values: 1e-5,
      class_token: false,
      num_prefix_tokens: 0,
    });
    expect(cfg).toMatchObject({
      pooling: 'mean',
      fc_norm: true,
      final_norm: false,
      layer_scale: true,
      num_labels: 0,
    });
    expect(numTokens(cfg)).toBe(196);
  });

  it('accepts square [h, w] pairs and final_norm strings', () => {
    const cfg = parseConfig({ image_size: [32, 32], patch_size: [4, 4], final_norm: 'none', fc_norm: false });
    expect([cfg.image_size, cfg.patch_size, cfg.final_norm]).toEqual([32, 4, false]);
  });

  it('has the presets the CLI trains', () => {
    const t = PRESETS.tiny;
    expect([t.image_size, t.num_channels, t.patch_size, t.hidden_size, t.num_hidden_layers]).toEqual([
      28, 1, 7, 96, 4,
    ]);
    expect([t.num_attention_heads, t.intermediate_size, t.num_labels, t.layer_norm_eps]).toEqual([
      4, 192, 10, 1e-6,
    ]);
    expect([t.hidden_act, t.qkv_bias, t.pooling]).toEqual(['gelu', true, 'cls']);
    expect(numTokens(t)).toBe(17);
    expect(numTokens(PRESETS.small)).toBe(50);
    expect([PRESETS.small.hidden_size, PRESETS.small.intermediate_size]).toEqual([64, 128]);
    const c = PRESETS['cifar-tiny'];
    expect([c.image_size, c.num_channels, c.patch_size, c.hidden_size, c.intermediate_size]).toEqual([
      32, 3, 4, 48, 192,
    ]);
    expect(Object.values(c.id2label)).toEqual([
      'airplane',
      'automobile',
      'bird',
      'cat',
      'deer',
      'dog',
      'frog',
      'horse',
      'ship',
      'truck',
    ]);
    expect(Object.values(t.id2label)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (const p of Object.values(PRESETS)) expect(parseConfig(p)).toEqual(p);
    expect(Object.isFrozen(PRESETS.tiny)).toBe(true);
  });
});

describe('rejections', () => {
  const cases: [string, unknown, string[]][] = [
    ['patch does not divide', { image_size: 30, patch_size: 7 }, ['image_size', '30', '7']],
    ['heads do not divide', { hidden_size: 100, num_attention_heads: 3 }, ['hidden_size', '100', '3']],
    ['bad act', { hidden_act: 'relu' }, ['hidden_act', 'relu', 'gelu_new']],
    ['string size', { hidden_size: '64' }, ['hidden_size', '"64"']],
    ['zero layers', { num_hidden_layers: 0 }, ['num_hidden_layers', '0']],
    ['non-square', { image_size: [32, 64] }, ['image_size', 'square']],
    [
      'labels disagree',
      { num_labels: 3, id2label: { '0': 'a', '1': 'b' } },
      ['num_labels', '3', '2 entries'],
    ],
    ['bad label keys', { id2label: { a: 'x' } }, ['id2label', '"a"']],
    ['cls without token', { class_token: false }, ['pooling', 'class_token']],
    ['registers', { num_prefix_tokens: 5 }, ['num_prefix_tokens', '5']],
    ['bad eps', { layer_norm_eps: -1 }, ['layer_norm_eps']],
    ['bad bool', { qkv_bias: 'yes' }, ['qkv_bias']],
    [
      'sincos width',
      { position_embedding: 'sinusoidal', hidden_size: 6, num_attention_heads: 2 },
      ['hidden_size', '6', '4'],
    ],
  ];
  for (const [name, json, fragments] of cases) {
    it(`rejects ${name}`, () => {
      const e = errorOf(() => parseConfig(json, 'my.json'));
      for (const f of ['my.json', ...fragments]) expect(e.message).toContain(f);
    });
  }
  it('rejects a non-object', () => {
    expect(errorOf(() => parseConfig([1])).message).toContain('array');
    expect(errorOf(() => parseConfig(null)).message).toContain('object');
  });
});

describe('toHFConfigJson', () => {
  it('writes what transformers reads and parses back to the same config', () => {
    const cfg: ViTConfig = { ...PRESETS['cifar-tiny'], naming: 'hf' };
    const json = toHFConfigJson(cfg);
    expect(json.model_type).toBe('vit');
    expect(json.architectures).toEqual(['ViTForImageClassification']);
    expect(json.id2label).toMatchObject({ '0': 'airplane', '9': 'truck' });
    expect(json.label2id).toMatchObject({ airplane: 0, truck: 9 });
    expect(json.qkv_bias).toBe(true);
    const text = JSON.stringify(json);
    expect(parseConfig(JSON.parse(text))).toEqual(cfg);
  });

  it('refuses configs HF cannot hold', () => {
    const e = errorOf(() =>
      toHFConfigJson({ ...PRESETS.tiny, pooling: 'mean', fc_norm: true, layer_scale: true }),
    );
    expect(e.message).toContain("pooling is 'mean'");
    expect(e.message).toContain('fc_norm');
    expect(e.message).toContain('layer_scale');
  });
});
