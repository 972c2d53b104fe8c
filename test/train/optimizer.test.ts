import { beforeAll, describe, expect, it } from 'vitest';
import { ready } from '../../src/backends/index.js';
import { tf } from '../../src/tf.js';
import { EinopsError } from '../../src/errors.js';
import { AdamW, clipByGlobalNorm, defaultNoDecay } from '../../src/train/optimizer.js';

beforeAll(async () => {
  await ready('wasm');
});

/** PyTorch torch.optim.AdamW (amsgrad=False) on plain arrays, in float64. */
function torchAdamW(
  p: number[],
  grads: number[][],
  lrs: number[],
  wd: number,
  b1 = 0.9,
  b2 = 0.999,
  eps = 1e-8,
): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const out = [...p];
  grads.forEach((g, s) => {
    const t = s + 1;
    const lr = lrs[s];
    for (let i = 0; i < out.length; i++) {
      out[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + eps;
      out[i] -= (lr / bc1) * (m[i] / denom);
    }
  });
  return out;
}

describe.each(['js', 'tensor', 'auto'] as const)('AdamW (impl %s)', (impl) => {
  it('first step equals the hand value p(1 - lr wd) - lr g/(|g| + eps)', () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]));
    const opt = new AdamW([['w', w]], { weightDecay: 0.01, impl });
    const g = tf.tensor2d([[0.5, 0.25]]);
    opt.step(new Map([['w', g]]), 0.1);
    const got = w.dataSync();
    expect(got[0]).toBeCloseTo(1 * 0.999 - 0.1, 6); // 0.899
    expect(got[1]).toBeCloseTo(-2 * 0.999 - 0.1, 6); // -2.098
    g.dispose();
    opt.dispose();
    w.dispose();
  });

  it('matches the PyTorch formula over several steps, with and without weight decay', () => {
    const p0 = [0.3, -1.2, 2.5, 0.01, -0.7, 1.1];
    const grads = [
      [0.1, -0.2, 0.3, 0.0, 1.5, -0.05],
      [-0.3, 0.1, 0.2, 0.4, -1.0, 0.02],
      [0.05, 0.05, -0.6, 0.1, 0.3, 0.0],
      [0.2, -0.4, 0.1, -0.2, 0.0, 0.3],
    ];
    const lrs = [1e-3, 2e-3, 5e-3, 1e-2];
    const w = tf.variable(tf.tensor2d(p0, [2, 3]));
    const b = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(
      new Map<string, tf.Variable>([
        ['blocks.0.mlp.fc1.weight', w],
        ['blocks.0.mlp.fc1.bias', b],
      ]),
      { weightDecay: 0.05, impl },
    );
    expect(opt.impl).toBe(impl);
    expect(opt.decayedNames()).toEqual(['blocks.0.mlp.fc1.weight']);
    grads.forEach((g, s) => {
      const gw = tf.tensor2d(g, [2, 3]);
      const gb = tf.tensor1d(g);
      opt.step(
        new Map<string, tf.Tensor>([
          ['blocks.0.mlp.fc1.weight', gw],
          ['blocks.0.mlp.fc1.bias', gb],
        ]),
        lrs[s],
      );
      tf.dispose([gw, gb]);
    });
    const wantW = torchAdamW(p0, grads, lrs, 0.05);
    const wantB = torchAdamW(p0, grads, lrs, 0);
    [...w.dataSync()].forEach((v, i) => expect(v).toBeCloseTo(wantW[i], 6));
    [...b.dataSync()].forEach((v, i) => expect(v).toBeCloseTo(wantB[i], 6));
    expect(opt.stepCount).toBe(4);
    opt.dispose();
    tf.dispose([w, b]);
  });

  it('does not leak tensors over 10 steps (with clipping)', () => {
    const w = tf.variable(tf.randomNormal([4, 5]));
    const b = tf.variable(tf.zeros([5]));
    const opt = new AdamW(
      new Map([
        ['w', w],
        ['b', b],
      ]),
      { impl },
    );
    const x = tf.randomNormal([8, 4]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) {
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.square(tf.add(tf.matMul(x, w), b))) as tf.Scalar,
      );
      const named = new Map<string, tf.Tensor>([
        ['w', grads[w.name]],
        ['b', grads[b.name]],
      ]);
      const clipped = clipByGlobalNorm(named, 1);
      opt.step(clipped.grads, 1e-2);
      tf.dispose([value, ...named.values(), ...clipped.grads.values()]);
    }
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    tf.dispose([w, b, x]);
  });

  it('exports and imports its state, so a resumed run continues identically', () => {
    const make = () => tf.variable(tf.tensor2d([1, 2, 3, 4], [2, 2]));
    const gs = [
      [0.1, 0.2, -0.3, 0.4],
      [0.5, -0.1, 0.0, 0.2],
      [-0.2, 0.3, 0.1, 0.1],
    ];
    const stepWith = (opt: AdamW, g: number[]) => {
      const t = tf.tensor2d(g, [2, 2]);
      opt.step(new Map([['w', t]]), 0.01);
      t.dispose();
    };
    const a = make();
    const optA = new AdamW([['w', a]], { impl });
    gs.forEach((g) => stepWith(optA, g));

    const b = make();
    const optB = new AdamW([['w', b]], { impl });
    stepWith(optB, gs[0]);
    const state = optB.exportState();
    expect([...state.tensors.keys()]).toEqual(['w.exp_avg', 'w.exp_avg_sq']);
    expect(state.step).toBe(1);
    expect(state.tensors.get('w.exp_avg')!.data[0]).toBeCloseTo(0.01, 7);
    const saved = tf.tensor(b.dataSync(), [2, 2]);
    optB.dispose();

    const c = tf.variable(saved);
    const optC = new AdamW([['w', c]], { impl });
    optC.importState(state);
    stepWith(optC, gs[1]);
    stepWith(optC, gs[2]);
    [...c.dataSync()].forEach((v, i) => expect(v).toBeCloseTo(a.dataSync()[i], 7));

    expect(() => optC.importState({ step: 1, tensors: new Map() })).toThrow(/missing 'w.exp_avg'/);
    const bad = new Map(state.tensors);
    bad.set('w.exp_avg', { shape: [4], data: new Float32Array(4) });
    expect(() => optC.importState({ step: 1, tensors: bad })).toThrow(/shape \[4\]/);
    tf.dispose([a, b, c, saved]);
    optA.dispose();
    optC.dispose();
  });

  it('rejects unknown names and wrong shapes', () => {
    const w = tf.variable(tf.zeros([2, 2]));
    const opt = new AdamW([['w', w]], { impl });
    const g = tf.zeros([3]);
    expect(() => opt.step(new Map([['v', g]]), 0.1)).toThrow(/unknown parameter 'v'/);
    expect(() => opt.step(new Map([['w', g]]), 0.1)).toThrow(EinopsError);
    expect(() => new AdamW([['w', w]], { beta1: 1 })).toThrow(/beta1/);
    g.dispose();
    opt.dispose();
    w.dispose();
  });

  it('default no-decay rule', () => {
    const m = tf.variable(tf.zeros([2, 2]));
    const v = tf.variable(tf.zeros([2]));
    expect(defaultNoDecay('blocks.0.attn.qkv.weight', m)).toBe(false);
    expect(defaultNoDecay('blocks.0.attn.qkv.bias', v)).toBe(true);
    expect(defaultNoDecay('pos_embed', m)).toBe(true);
    expect(defaultNoDecay('cls_token', m)).toBe(true);
    tf.dispose([m, v]);
  });
});

describe('AdamW auto mode', () => {
  it('mixes js (small) and tensor (large) parameters in auto mode with the same results', () => {
    const init = Float32Array.from({ length: 40000 }, (_, i) => Math.sin(i));
    const grad = Float32Array.from({ length: 40000 }, (_, i) => Math.cos(i * 0.7));
    const run = (mode: 'auto' | 'js') => {
      const big = tf.variable(tf.tensor2d(init, [200, 200]));
      const small = tf.variable(tf.tensor1d(init.subarray(0, 100)));
      const opt = new AdamW(
        new Map<string, tf.Variable>([
          ['big', big],
          ['small', small],
        ]),
        { impl: mode },
      );
      const gBig = tf.tensor2d(grad, [200, 200]);
      const gSmall = tf.tensor1d(grad.subarray(0, 100));
      for (let i = 0; i < 3; i++)
        opt.step(
          new Map<string, tf.Tensor>([
            ['big', gBig],
            ['small', gSmall],
          ]),
          0.01,
        );
      const out = [Float32Array.from(big.dataSync()), Float32Array.from(small.dataSync())];
      opt.dispose();
      tf.dispose([big, small, gBig, gSmall]);
      return out;
    };
    const [autoBig, autoSmall] = run('auto');
    const [jsBig, jsSmall] = run('js');
    let maxDiff = 0;
    for (let i = 0; i < autoBig.length; i++) maxDiff = Math.max(maxDiff, Math.abs(autoBig[i] - jsBig[i]));
    for (let i = 0; i < autoSmall.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(autoSmall[i] - jsSmall[i]));
    expect(maxDiff).toBeLessThan(1e-6);
  });
});

describe('clipByGlobalNorm', () => {
  it('scales by maxNorm / (norm + 1e-6) only when the norm is larger', () => {
    const a = tf.tensor1d([3, 0]);
    const b = tf.tensor2d([[0, 4]]);
    const grads = new Map<string, tf.Tensor>([
      ['a', a],
      ['b', b],
    ]);
    const { grads: clipped, norm } = clipByGlobalNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 6);
    const f = 1 / (5 + 1e-6);
    expect([...clipped.get('a')!.dataSync()]).toEqual([Math.fround(3 * f), 0]);
    expect(clipped.get('b')!.dataSync()[1]).toBeCloseTo(4 * f, 6);
    const loose = clipByGlobalNorm(grads, 10);
    expect([...loose.grads.get('a')!.dataSync()]).toEqual([3, 0]);
    expect(loose.grads.get('a')).not.toBe(a);
    tf.dispose([a, b, ...clipped.values(), ...loose.grads.values()]);
    expect(() => clipByGlobalNorm(grads, 0)).toThrow(/maxNorm/);
  });
});
