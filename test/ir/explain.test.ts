import { describe, expect, it } from 'vitest';
import { CompileError, EinopsError, UsageError } from '../../src/errors.js';
import { explain, explainModel } from '../../src/cli/explain.js';
import { ready } from '../../src/backends/index.js';

describe('einvit explain --graph', () => {
  it('prints the traced graph with the symbolic batch, then the optimised one', () => {
    const lines = explain('b c h w -> b (h w) c', { shape: 'N,3,4,4', graph: true }, []);
    expect(lines).toContain('traced graph:');
    expect(lines.join('\n')).toMatch(/input\('x'\)\s+\[N, 3, 4, 4\] f32/);
    expect(lines.join('\n')).toMatch(
      /reshape\(%0, \[N, 3, 16\]\)[^\n]*\n[^\n]*transpose\(%1, \[0, 2, 1\]\)\s+\[N, 16, 3\]/,
    );
    expect(lines.join('\n')).toContain('outputs: y = %');
  });

  it('names the op and the symbolic shape when the pattern is not batch-polymorphic', () => {
    expect(() => explain('(b k) c -> b k c', { shape: 'N,3', graph: true }, ['k=2'])).toThrow(CompileError);
    expect(() => explain('(b k) c -> b k c', { shape: 'N,3', graph: true }, ['k=2'])).toThrow(
      /rearrange "\(b k\) c -> b k c" on symbolic input \[N, 3\]: .*can't divide axis of length N in chunks of 2/,
    );
  });

  it('prints the whole forward graph of a model folder (explain --model)', async () => {
    await ready('cpu');
    const lines = await explainModel('test/vit-reference/cifar-tiny');
    expect(lines[0]).toMatch(
      /^model test\/vit-reference\/cifar-tiny: \d+ nodes traced, \d+ after the graph passes$/,
    );
    const text = lines.join('\n');
    expect(text).toMatch(/input\('pixel_values'\)\s+\[N, 3, 32, 32\] f32/);
    expect(text).toContain("param('blocks.3.attn.qkv.weight')");
    expect(text).toMatch(/outputs: logits = %\d+/);
  });

  it('traces shapes whose stand-in batch is above the eager size bound (a [N, 64, 48] patch tensor)', () => {
    // The symbolic batch is planned with a large stand-in length; the eager bound (2^31 - 1 elements)
    // must not apply to it, or no real model could be traced.
    const lines = explain('b c (h p1) (w p2) -> b (h w) (c p1 p2)', { shape: 'N,3,32,32', graph: true }, [
      'p1=4',
      'p2=4',
    ]);
    expect(lines.join('\n')).toMatch(/\[N, 64, 48\]/);
  });
});

describe('einvit explain: bad flags are usage errors, bad patterns are einops errors', () => {
  it.each([
    [{ shape: '2,x' }, [], /--shape: 'x' is not a non-negative integer/],
    [{ shape: '2,-1', graph: true }, [], /--shape: '-1' is neither/],
    [{ shape: '2,3', op: 'squeeze' }, [], /--op must be rearrange, reduce or repeat, not 'squeeze'/],
    [{ shape: '2,3', op: 'squeeze', graph: true }, [], /--op must be/],
    [{ shape: '2,3', op: 'reduce', reduction: 'median' }, [], /--reduction: unknown reduction 'median'/],
    [{ shape: '2,3' }, ['h:2'], /Axis length 'h:2' must look like name=number/],
  ])('%j %j', (opts, lengths, message) => {
    expect(() => explain('a b -> b a', opts, lengths)).toThrow(UsageError);
    expect(() => explain('a b -> b a', opts, lengths)).toThrow(message);
  });

  it('keeps EinopsError for a pattern that does not fit the shape', () => {
    expect(() => explain('a b c -> c b a', { shape: '2,3' }, [])).toThrow(EinopsError);
  });
});
