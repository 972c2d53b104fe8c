import { describe, expect, it } from 'vitest';
import { cosineWithWarmup, oneCycle } from '../../src/train/schedule.js';

describe('cosineWithWarmup', () => {
  it('warms up linearly then follows a half cosine down to minLr', () => {
    const lr = cosineWithWarmup({ baseLr: 1, warmupSteps: 2, totalSteps: 7, minLr: 0 });
    const want = [0.5, 1, 1, 0.8535533905932737, 0.5, 0.14644660940672627, 0, 0];
    want.forEach((w, s) => expect(lr(s)).toBeCloseTo(w, 12));
    expect(lr(100)).toBe(0);
  });

  it('respects minLr and handles no warm-up', () => {
    const lr = cosineWithWarmup({ baseLr: 1e-3, warmupSteps: 0, totalSteps: 3, minLr: 1e-5 });
    expect(lr(0)).toBeCloseTo(1e-3, 15);
    expect(lr(1)).toBeCloseTo((1e-3 + 1e-5) / 2, 15);
    expect(lr(2)).toBeCloseTo(1e-5, 15);
    const flat = cosineWithWarmup({ baseLr: 2, warmupSteps: 4, totalSteps: 4 });
    expect([0, 1, 2, 3].map(flat)).toEqual([0.5, 1, 1.5, 2]);
  });

  it('rejects bad settings', () => {
    expect(() => cosineWithWarmup({ baseLr: 1, warmupSteps: 5, totalSteps: 4 })).toThrow(/warmupSteps/);
    expect(() => cosineWithWarmup({ baseLr: 1, warmupSteps: 0, totalSteps: 0 })).toThrow(/totalSteps/);
  });
});

describe('oneCycle (PyTorch OneCycleLR, cos)', () => {
  it('uses the PyTorch defaults (pctStart 0.3, divFactor 25, finalDivFactor 1e4)', () => {
    const lr = oneCycle({ maxLr: 0.1, totalSteps: 100 });
    expect(lr(0)).toBeCloseTo(0.004, 15); // get_last_lr() right after construction
    expect(lr(29)).toBeCloseTo(0.1, 12);
    expect(lr(99)).toBeCloseTo(0.004 / 1e4, 15);
  });

  it('matches hand values of both phases', () => {
    const lr = oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4 });
    const min = 0.04 / 1e4;
    const cosAnneal = (from: number, to: number, pct: number) =>
      to + ((from - to) * (1 + Math.cos(Math.PI * pct))) / 2;
    expect(lr(0)).toBeCloseTo(0.04, 12);
    expect(lr(1)).toBeCloseTo(0.52, 12); // halfway up: 1 + (0.04 - 1) / 2
    expect(lr(2)).toBeCloseTo(1, 12);
    expect(lr(3)).toBeCloseTo(cosAnneal(1, min, 1 / 7), 12);
    expect(lr(3)).toBeCloseTo(0.9504844339512095 * (1 - min) + min, 12);
    expect(lr(9)).toBeCloseTo(min, 15);
    // Like PyTorch, step == totalSteps is allowed (cosine keeps going), beyond it is an error.
    expect(lr(10)).toBeCloseTo(cosAnneal(1, min, 8 / 7), 12);
    expect(() => lr(11)).toThrow(/outside \[0, 10\]/);
  });
});
