import { describe, expect, it } from 'vitest';
import { CompileError } from '../../src/errors.js';
import { explain } from '../../src/cli/explain.js';

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
});
