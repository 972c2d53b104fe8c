// Pattern operations against the same tfjs ops written by hand: per-call overhead on a small tensor,
// throughput on large tensors, cold parse+compile time, and plan-cache hit time.
import { tf } from '../src/tf.js';
import { planCache, planFor, rearrange, reduce } from '../src/ops.js';
import type { Operation } from '../src/compiler/recipe.js';
import type { Row, Section } from './index.js';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Milliseconds per call of `f`, over `iters` calls. */
function perCall(f: () => void, iters: number): number {
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) f();
  return (performance.now() - t0) / iters;
}

/**
 * Times two functions in alternating rounds (so drift and GC hit both alike) and returns the
 * median ms per call of each.
 */
function compare(a: () => void, b: () => void, rounds: number, iters: number): [number, number] {
  const [ta, tb] = samples(a, b, rounds, iters);
  return [median(ta), median(tb)];
}

/** The per-round times (ms per call) of two functions run in alternating rounds. */
function samples(a: () => void, b: () => void, rounds: number, iters: number): [number[], number[]] {
  const ta: number[] = [];
  const tb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so neither always runs on a warmer cache.
    if (r % 2 === 0) {
      ta.push(perCall(a, iters));
      tb.push(perCall(b, iters));
    } else {
      tb.push(perCall(b, iters));
      ta.push(perCall(a, iters));
    }
  }
  return [ta, tb];
}

const us = (ms: number) => `${(ms * 1000).toFixed(2)} µs`;
const msf = (ms: number) => `${ms.toFixed(2)} ms`;
const ratio = (a: number, b: number) => (a / b).toFixed(3);

/**
 * Every figure is reported as the median over alternating rounds (typical) and the fastest round
 * (best: the least disturbed by other processes on a shared machine).
 */

/** (a) Cached call overhead on a small tensor: the pattern machinery dominates, not the data. */
function smallOverhead(): Row[] {
  const x = tf.randomNormal([2, 3, 4, 4]);
  const ours = () => rearrange(x, 'b c h w -> b h w c').dispose();
  const hand = () => tf.transpose(x, [0, 2, 3, 1]).dispose();
  const check = rearrange(x, 'b c h w -> b h w c');
  const ref = tf.transpose(x, [0, 2, 3, 1]);
  const equal = tf.tidy(() => tf.all(tf.equal(check, ref)).dataSync()[0] === 1);
  tf.dispose([check, ref]);
  if (!equal) throw new Error('bench: rearrange and tf.transpose disagree');
  compare(ours, hand, 2, 5000); // warm-up (JIT, kernels, cache)
  const [ta, tb] = samples(ours, hand, 11, 5000);
  x.dispose();
  const [a, b] = [median(ta), median(tb)];
  const [minA, minB] = [Math.min(...ta), Math.min(...tb)];
  return [
    {
      case: "(a) small [2,3,4,4] 'b c h w -> b h w c', cached",
      einvit: us(a),
      'tfjs by hand': us(b),
      ratio: ratio(a, b),
      'best einvit': us(minA),
      'best tfjs': us(minB),
      'best ratio': ratio(minA, minB),
      note: `11 rounds x 5000 calls; overhead ${us(a - b)} per call (median)`,
    },
  ];
}

interface LargeCase {
  readonly label: string;
  readonly shape: number[];
  readonly ours: (x: tf.Tensor) => tf.Tensor;
  readonly hand: (x: tf.Tensor) => tf.Tensor;
  /** Alternating rounds, one call each (sized so the section stays well under a minute). */
  readonly rounds: number;
}

const LARGE: LargeCase[] = [
  {
    label: "(b) [32,64,56,56] 'b c h w -> b h w c'",
    shape: [32, 64, 56, 56],
    ours: (x) => rearrange(x, 'b c h w -> b h w c'),
    hand: (x) => tf.transpose(x, [0, 2, 3, 1]),
    rounds: 21,
  },
  {
    label: "(b) [32,3136,64] 'b (h w) c -> b c h w', h=56",
    shape: [32, 56 * 56, 64],
    ours: (x) => rearrange(x, 'b (h w) c -> b c h w', { h: 56 }),
    hand: (x) => tf.reshape(tf.transpose(x, [0, 2, 1]), [32, 64, 56, 56]),
    rounds: 21,
  },
  {
    label: "(b) [8,3,224,224] 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', p=16",
    shape: [8, 3, 224, 224],
    ours: (x) => rearrange(x, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: 16, p2: 16 }),
    hand: (x) =>
      tf.reshape(tf.transpose(tf.reshape(x, [8, 3, 14, 16, 14, 16]), [0, 2, 4, 1, 3, 5]), [8, 196, 768]),
    rounds: 7,
  },
  {
    label: "(b) [32,64,56,56] reduce 'b c h w -> b c' mean",
    shape: [32, 64, 56, 56],
    ours: (x) => reduce(x, 'b c h w -> b c', 'mean'),
    hand: (x) => tf.mean(x, [2, 3]),
    rounds: 21,
  },
];

/** (b) Large tensors: the plan should cost nothing next to the data movement. */
function largeThroughput(): Row[] {
  const rows: Row[] = [];
  for (const c of LARGE) {
    const x = tf.randomUniform(c.shape);
    const run = (f: (x: tf.Tensor) => tf.Tensor) => () => {
      const y = tf.tidy(() => f(x)); // the hand-written chains make intermediates
      y.dataSync(); // forces completion (and costs both sides the same copy)
      y.dispose();
    };
    const check = tf.tidy(() => tf.all(tf.equal(c.ours(x), c.hand(x))).dataSync()[0] === 1);
    if (!check) throw new Error(`bench: einvit and the hand-written ops disagree on ${c.label}`);
    compare(run(c.ours), run(c.hand), 1, 1); // warm-up
    const [ta, tb] = samples(run(c.ours), run(c.hand), c.rounds, 1);
    x.dispose();
    const [a, b] = [median(ta), median(tb)];
    const [minA, minB] = [Math.min(...ta), Math.min(...tb)];
    rows.push({
      case: c.label,
      einvit: msf(a),
      'tfjs by hand': msf(b),
      ratio: ratio(a, b),
      'best einvit': msf(minA),
      'best tfjs': msf(minB),
      'best ratio': ratio(minA, minB),
      note: `${c.rounds} alternating rounds; target <= 1.02`,
    });
  }
  return rows;
}

interface ColdCase {
  readonly op: Operation;
  readonly pattern: string;
  readonly shape: number[];
  readonly lengths?: Record<string, number>;
}

const COLD: ColdCase[] = [
  { op: 'rearrange', pattern: 'b c h w -> b h w c', shape: [2, 3, 4, 4] },
  { op: 'rearrange', pattern: 'b (h w) c -> b c h w', shape: [2, 16, 3], lengths: { h: 4 } },
  {
    op: 'rearrange',
    pattern: 'b c (h p1) (w p2) -> b (h w) (c p1 p2)',
    shape: [2, 3, 32, 32],
    lengths: { p1: 16, p2: 16 },
  },
  { op: 'rearrange', pattern: 'b n (h d) -> b h n d', shape: [2, 197, 768], lengths: { h: 12 } },
  { op: 'rearrange', pattern: '... h w -> ... (h w)', shape: [2, 3, 4, 5] },
  { op: 'mean', pattern: 'b c h w -> b c', shape: [2, 3, 4, 4] },
  { op: 'max', pattern: 'b (h 2) (w 2) c -> b h w c', shape: [2, 8, 8, 3] },
  { op: 'repeat', pattern: 'h w -> h w c', shape: [4, 4], lengths: { c: 3 } },
  { op: 'repeat', pattern: '() n e -> b n e', shape: [1, 5, 8], lengths: { b: 4 } },
];

const lengthMap = (l?: Record<string, number>) => new Map(Object.entries(l ?? {}));

/** (c) Cold parse + recipe + plan per pattern, and (d) the cost of a plan-cache hit. */
function planning(): Row[] {
  const cold: number[] = [];
  const repeats = 30;
  for (let r = 0; r < repeats + 3; r++) {
    for (const c of COLD) {
      const lengths = lengthMap(c.lengths);
      planCache.clear();
      const t0 = performance.now();
      planFor(c.op, c.pattern, c.shape, lengths);
      const t = performance.now() - t0;
      if (r >= 3) cold.push(t); // the first rounds warm the JIT up
    }
  }
  planCache.clear();
  const hits: number[] = [];
  const iters = 20_000;
  for (const c of COLD) planFor(c.op, c.pattern, c.shape, lengthMap(c.lengths));
  for (let r = 0; r < 7; r++) {
    for (const c of COLD) {
      const lengths = lengthMap(c.lengths);
      hits.push(perCall(() => planFor(c.op, c.pattern, c.shape, lengths), iters));
    }
  }
  return [
    {
      case: `(c) cold parse+compile (planFor after planCache.clear()), ${COLD.length} patterns x ${repeats}`,
      einvit: us(median(cold)),
      'best einvit': us(Math.min(...cold)),
      note: `median; p90 ${us(quantile(cold, 0.9))}, max ${us(Math.max(...cold))}`,
    },
    {
      case: `(d) planFor cache hit, ${COLD.length} patterns`,
      einvit: us(median(hits)),
      'best einvit': us(Math.min(...hits)),
      note: `median of 7 rounds x ${iters} calls per pattern; max ${us(Math.max(...hits))}`,
    },
  ];
}

/** The ops section of `bench/index.ts`. */
export const opsSection: Section = {
  name: 'ops',
  title: 'Pattern operations vs hand-written tfjs (same run, default backend)',
  async run() {
    const before = tf.memory().numTensors;
    const rows = [...smallOverhead(), ...largeThroughput(), ...planning()];
    const after = tf.memory().numTensors;
    if (after !== before) throw new Error(`bench ops leaked ${after - before} tensors`);
    return rows;
  },
};
