// The README-as-tests conventions (blocks.ts), on small inputs.
import { describe, expect, it } from 'vitest';
import { expectations, extractBlocks, matches } from './blocks.js';

describe('README block conventions', () => {
  it('finds ts blocks with their README line, and marks ts no-run ones', () => {
    const md = [
      '# t',
      '```ts',
      'a();',
      '```',
      '```sh',
      'npm ci',
      '```',
      '```ts no-run',
      'b();',
      'c();',
      '```',
    ].join('\n');
    expect(extractBlocks(md)).toEqual([
      { line: 3, code: 'a();', run: true },
      { line: 9, code: 'b();\nc();', run: false },
    ]);
  });

  it('reads the expected output from the trailing comment, or from the comment lines below', () => {
    const code = [
      'console.log(x.shape);            // [2, 3]',
      "console.log('a // b');           // a // b",
      'console.log(e.message);',
      '// first line',
      '//   second line',
      'next();',
    ].join('\n');
    expect(expectations(code)).toEqual([
      { line: 1, text: '[2, 3]' },
      { line: 2, text: 'a // b' },
      { line: 3, text: 'first line\n  second line' },
    ]);
    expect(() => expectations('console.log(x);\nnext();')).toThrow(
      /line 1: console.log states no expected output/,
    );
  });

  it('compares ignoring whitespace, with ... for any text', () => {
    expect(matches('[ 2, 32, 32, 3 ]', '[2, 32, 32, 3]')).toBe(true);
    expect(matches('[ 2, 32, 32, 4 ]', '[2, 32, 32, 3]')).toBe(false);
    expect(matches('Error in "b (c". Shape [2].\nLong detail\n  b (c', 'Error in "b (c". ...\n  b (c')).toBe(
      true,
    );
    expect(matches('{ b: 2, h: 32 }', '{ b: 2, h: 32, w: 32 }')).toBe(false);
  });
});
