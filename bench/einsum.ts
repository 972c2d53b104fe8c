// Measures einsum lowering strategies on one backend (wasm by default) for the shapes that decide ViT
// training and inference speed: forward, and forward + backward (tf.grads for both operands).
// Run: npx tsx bench/einsum.ts [backend] [rounds]
// Strategies are timed interleaved, round by round, and the best round is kept: the machine is shared and
// its load drifts, so back-to-back blocks of one strategy would compare different load levels.
import { tf } from '../src/tf.js';
import { ready } from '../src/backends/index.js';
import { chooseBatchStrategy, planEinsum, runEinsum, type BatchStrategy } from '../src/compiler/einsum.js';

interface Case {
  name: string;
  pattern: string;
  shapes: number[][];
}

const attention = (name: string, b: number, h: number, t: number, d: number): Case[] => [
  {
    name: `${name} q·kᵀ`,
    pattern: 'b h q d, b h k d -> b h q k',
    shapes: [
      [b, h, t, d],
      [b, h, t, d],
    ],
  },
  {
    name: `${name} attn·v`,
    pattern: 'b h q k, b h k d -> b h q d',
    shapes: [
      [b, h, t, t],
      [b, h, t, d],
    ],
  },
];

const CASES: Case[] = [
  ...attention('MNIST b128 h4 t17 d24', 128, 4, 17, 24),
  ...attention('CIFAR b256 h4 t65 d12', 256, 4, 65, 12),
  ...attention('ViT-B b1 h12 t197 d64', 1, 12, 197, 64),
  ...attention('ViT-B b8 h12 t197 d64', 8, 12, 197, 64),
  {
    name: 'MNIST dense b n i, o i',
    pattern: 'b n i, o i -> b n o',
    shapes: [
      [128, 17, 96],
      [288, 96],
    ],
  },
  {
    name: 'ViT-B dense b n i, i o',
    pattern: 'b n i, i o -> b n o',
    shapes: [
      [8, 197, 768],
      [768, 3072],
    ],
  },
];

const STRATEGIES: BatchStrategy[] = ['batched', 'dwconv', 'mulsum', 'split'];

function split(pattern: string): { operands: string[][]; output: string[] } {
  const [lhs, rhs] = pattern.split('->');
  const words = (s: string) => s.trim().split(/\s+/).filter(Boolean);
  return { operands: lhs.split(',').map(words), output: words(rhs) };
}

function once(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

const backend = await ready(process.argv[2] ?? 'wasm');
const rounds = Number(process.argv[3] ?? 5);
console.log(`backend: ${backend}, best of ${rounds} interleaved rounds\n`);
console.log('| case | strategy | ms fwd | ms fwd+bwd |');
console.log('|---|---|---:|---:|');
for (const c of CASES) {
  const { operands, output } = split(c.pattern);
  const xs = c.shapes.map((s, i) => tf.randomNormal(s, 0, 1, 'float32', i));
  const auto = planEinsum(operands, output, c.shapes);
  const dy = tf.randomNormal(auto.outputShape as number[], 0, 1, 'float32', 9);
  const step = auto.steps.find((s) => s.kind === 'contract');
  const contract = step?.kind === 'contract' ? step : undefined;
  let chosen = 'matMul2d';
  const runs: { label: string; fwd: () => void; bwd: () => void; best: [number, number] }[] = [];
  const add = (label: string, plan: ReturnType<typeof planEinsum>) => {
    const grad = tf.grads((...ins: tf.Tensor[]) => runEinsum(plan, ins));
    runs.push({
      label,
      fwd: () => tf.tidy(() => void runEinsum(plan, xs).dataSync()),
      bwd: () => tf.tidy(() => grad(xs, dy).forEach((g) => g.dataSync())),
      best: [Infinity, Infinity],
    });
  };
  if (contract !== undefined && contract.g > 1) {
    const { g, m, k, n } = contract;
    chosen = chooseBatchStrategy(g, m, k, n);
    for (const strategy of STRATEGIES) {
      if (strategy === 'mulsum' && g * m * k * n > 1 << 25) continue; // the broadcast product overflows wasm memory
      add(strategy, planEinsum(operands, output, c.shapes, { strategy }));
    }
  } else add('matMul2d', auto);
  // Warm-up: kernel setup, XNNPACK operator creation.
  for (const r of runs) {
    r.fwd();
    r.bwd();
  }
  for (let round = 0; round < rounds; round++) {
    for (const r of runs) {
      r.best[0] = Math.min(r.best[0], once(r.fwd));
      r.best[1] = Math.min(r.best[1], once(r.bwd));
    }
  }
  for (const r of runs) {
    const mark = r.label === chosen ? ' (auto)' : '';
    console.log(`| ${c.name} | ${r.label}${mark} | ${r.best[0].toFixed(1)} | ${r.best[1].toFixed(1)} |`);
  }
  tf.dispose([...xs, dy]);
}
