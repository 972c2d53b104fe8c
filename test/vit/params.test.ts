// The typed parameter tree: built from the config's timm names, walked back to the same names, and
// the names the optimizer's no-decay rules key on.
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { PRESETS, parseConfig } from '../../src/vit/config.js';
import {
  buildParams,
  expectedParameters,
  flattenParams,
  mapParams,
  paramAt,
  paramPath,
} from '../../src/vit/params.js';

const FULL = parseConfig({
  ...PRESETS.tiny,
  num_hidden_layers: 2,
  pooling: 'mean',
  fc_norm: true,
  layer_scale: true,
  naming: 'timm',
});

describe('parameter tree', () => {
  it('maps timm names to tree paths', () => {
    expect(paramPath('blocks.11.attn.qkv.weight')).toEqual(['blocks', 11, 'attn', 'qkv', 'weight']);
    expect(paramPath('cls_token')).toEqual(['clsToken']);
    expect(paramPath('patch_embed.proj.bias')).toEqual(['patchEmbed', 'proj', 'bias']);
    expect(paramPath('fc_norm.weight')).toEqual(['fcNorm', 'weight']);
  });

  it('builds the typed tree and walks it back in the same order', () => {
    const shapes = buildParams(FULL, (_name, shape) => shape);
    const D = FULL.hidden_size;
    expect(shapes.clsToken).toEqual([1, 1, D]);
    expect(shapes.posEmbed).toEqual([1, 17, D]);
    expect(shapes.patchEmbed.proj.weight).toEqual([D, 1, 7, 7]);
    expect(shapes.blocks).toHaveLength(2);
    expect(shapes.blocks[1].attn.qkv.weight).toEqual([3 * D, D]);
    expect(shapes.blocks[1].attn.qkv.bias).toEqual([3 * D]);
    expect(shapes.blocks[0].ls1!.gamma).toEqual([D]);
    expect(shapes.blocks[0].mlp.fc2.weight).toEqual([D, FULL.intermediate_size]);
    expect(shapes.fcNorm!.bias).toEqual([D]);
    expect(shapes.head!.weight).toEqual([10, D]);
    const names = buildParams(FULL, (name) => name);
    const flat = flattenParams(FULL, names);
    expect([...flat.keys()]).toEqual([...expectedParameters(FULL).keys()]);
    for (const [name, leaf] of flat) expect(leaf).toBe(name);
    expect(paramAt(names, 'blocks.1.norm2.bias')).toBe('blocks.1.norm2.bias');
    expect(paramAt(names, 'blocks.2.norm2.bias')).toBeUndefined();
    expect(paramAt(names, 'constructor')).toBeUndefined();
  });

  it('leaves out what the config does not have', () => {
    const cfg = parseConfig({
      ...PRESETS.tiny,
      qkv_bias: false,
      position_embedding: 'sinusoidal',
      num_labels: 0,
      id2label: {},
      naming: 'timm',
    });
    const t = buildParams(cfg, (_n, s) => s);
    expect(t.posEmbed).toBeUndefined();
    expect(t.head).toBeUndefined();
    expect(t.blocks[0].attn.qkv.bias).toBeUndefined();
    expect(t.blocks[0].ls1).toBeUndefined();
    expect(t.fcNorm).toBeUndefined();
  });

  it('mapParams keeps names; flattenParams lists every missing leaf in one error', () => {
    const sizes = mapParams(
      FULL,
      buildParams(FULL, (_n, s) => s),
      (s) => s.reduce((a, b) => a * b, 1),
    );
    expect(sizes.blocks[0].attn.proj?.weight).toBe(FULL.hidden_size ** 2);
    const broken = buildParams(FULL, (n) => n);
    delete broken.blocks[1].attn.qkv.bias;
    delete broken.head;
    let err: unknown;
    try {
      flattenParams(FULL, broken);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toBe(
      'parameter tree lacks 3 parameters: blocks.1.attn.qkv.bias, head.weight, head.bias',
    );
  });
});
