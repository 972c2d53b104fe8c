import { UsageError } from '../errors.js';

/** A learning-rate schedule: optimiser step index (0-based) -> learning rate. */
export type Schedule = (step: number) => number;

export interface CosineWithWarmupOptions {
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Floor reached at the last step. Default 0. */
  minLr?: number;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new UsageError(message, { rule: 'schedule' });
}

/**
 * Linear warm-up then cosine decay. For step s (0-based): during warm-up (s < warmupSteps) the rate is
 * `baseLr * (s + 1) / warmupSteps`, so the first step already learns and step warmupSteps-1 reaches
 * baseLr; afterwards, with `p = (s - warmupSteps) / (totalSteps - 1 - warmupSteps)` clamped to [0, 1],
 * it is `minLr + (baseLr - minLr) * (1 + cos(pi * p)) / 2`, reaching minLr exactly at the last step
 * (s = totalSteps - 1) and staying there beyond it.
 *
 * @example
 * const lr = cosineWithWarmup({ baseLr: 1e-3, warmupSteps: 100, totalSteps: 1000, minLr: 1e-5 });
 * lr(0);   // 1e-5
 * lr(99);  // 1e-3
 * lr(999); // 1e-5
 */
export function cosineWithWarmup(opts: CosineWithWarmupOptions): Schedule {
  const { baseLr, warmupSteps, totalSteps } = opts;
  const minLr = opts.minLr ?? 0;
  check(baseLr >= 0 && minLr >= 0, `cosineWithWarmup: baseLr ${baseLr} and minLr ${minLr} must be >= 0`);
  check(
    Number.isInteger(totalSteps) && totalSteps > 0,
    `cosineWithWarmup: totalSteps must be a positive integer, got ${totalSteps}`,
  );
  check(
    Number.isInteger(warmupSteps) && warmupSteps >= 0 && warmupSteps <= totalSteps,
    `cosineWithWarmup: warmupSteps must be an integer in [0, totalSteps=${totalSteps}], got ${warmupSteps}`,
  );
  const decaySteps = totalSteps - 1 - warmupSteps;
  return (step) => {
    if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
    const p = decaySteps > 0 ? Math.min(1, Math.max(0, (step - warmupSteps) / decaySteps)) : 1;
    return minLr + ((baseLr - minLr) * (1 + Math.cos(Math.PI * p))) / 2;
  };
}

export interface OneCycleOptions {
  maxLr: number;
  totalSteps: number;
  /** Share of steps spent rising. Default 0.3. */
  pctStart?: number;
  /** initialLr = maxLr / divFactor. Default 25. */
  divFactor?: number;
  /** minLr = initialLr / finalDivFactor. Default 1e4. */
  finalDivFactor?: number;
}

/**
 * PyTorch `OneCycleLR` (two phases, `anneal_strategy='cos'`) as a pure function: from
 * `maxLr/divFactor` up to `maxLr` over steps 0..pctStart*totalSteps-1, then down to
 * `maxLr/divFactor/finalDivFactor` at step totalSteps-1, both by cosine interpolation
 * `end + (start - end) * (1 + cos(pi * pct)) / 2`. `lr(s)` is the rate PyTorch uses for the (s+1)-th
 * optimiser step (`get_last_lr()` after s scheduler steps). Steps beyond totalSteps are rejected, as
 * in PyTorch.
 *
 * @example
 * const lr = oneCycle({ maxLr: 1e-3, totalSteps: 100 });
 * lr(0);  // 4e-5
 * lr(29); // 1e-3
 * lr(99); // 4e-9
 */
export function oneCycle(opts: OneCycleOptions): Schedule {
  const { maxLr, totalSteps } = opts;
  const pctStart = opts.pctStart ?? 0.3;
  const divFactor = opts.divFactor ?? 25;
  const finalDivFactor = opts.finalDivFactor ?? 1e4;
  check(maxLr > 0, `oneCycle: maxLr must be > 0, got ${maxLr}`);
  check(
    Number.isInteger(totalSteps) && totalSteps > 0,
    `oneCycle: totalSteps must be a positive integer, got ${totalSteps}`,
  );
  check(pctStart > 0 && pctStart < 1, `oneCycle: pctStart must be in (0, 1), got ${pctStart}`);
  check(divFactor > 0 && finalDivFactor > 0, 'oneCycle: divFactor and finalDivFactor must be > 0');
  const initialLr = maxLr / divFactor;
  const minLr = initialLr / finalDivFactor;
  const phases = [
    { end: pctStart * totalSteps - 1, from: initialLr, to: maxLr },
    { end: totalSteps - 1, from: maxLr, to: minLr },
  ];
  const anneal = (from: number, to: number, pct: number) =>
    to + ((from - to) * (1 + Math.cos(Math.PI * pct))) / 2;
  return (step) => {
    check(step >= 0 && step <= totalSteps, `oneCycle: step ${step} is outside [0, ${totalSteps}]`);
    let start = 0;
    for (let i = 0; i < phases.length; i++) {
      const { end, from, to } = phases[i];
      if (step <= end || i === phases.length - 1) {
        // A zero-length phase (tiny totalSteps) is already at its end.
        return anneal(from, to, end > start ? (step - start) / (end - start) : 1);
      }
      start = end;
    }
    return minLr;
  };
}
