/**
 * A small seeded PRNG (mulberry32): 32 bits of state, so the whole generator can be saved as one number
 * in a checkpoint and restored for `--resume`. Good enough for shuffling and augmentation; not for crypto.
 *
 * @example
 * const rng = new Rng(42);
 * rng.nextFloat();          // in [0, 1)
 * rng.nextInt(10);          // integer in [0, 10)
 * const saved = rng.state;  // later: new Rng(0).state = saved, or Rng.fromState(saved)
 */
export class Rng {
  private s: number;

  constructor(seed = 0) {
    // Mix the seed once so nearby seeds (0, 1, 2) do not start with correlated outputs.
    this.s = hash32(seed >>> 0 || 0x9e3779b9);
  }

  /** Restores a generator from a value previously read from `state`. */
  static fromState(state: number): Rng {
    const r = new Rng(0);
    r.state = state;
    return r;
  }

  /** The full generator state as an unsigned 32-bit integer (JSON-safe). */
  get state(): number {
    return this.s >>> 0;
  }

  set state(value: number) {
    this.s = value >>> 0;
  }

  /** Next unsigned 32-bit integer. */
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n), for 1 <= n <= 2^32. */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }
}

/** A 32-bit integer hash (from splitmix/murmur finalisers), used to spread seeds. */
function hash32(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
