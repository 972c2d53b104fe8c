// README code blocks as tests: which blocks run, and what each `console.log` line must print.
//
// The convention (also in the README's Development section):
// - a ```ts block is a whole program: it is type-checked against the installed package and run;
// - a ```ts no-run block (it needs files or downloads the reader supplies) is only type-checked;
// - the output of a `console.log` line is written in its trailing `// ...` comment, or, when the line
//   has none, in the comment-only lines right below it; every `console.log` in a run block states
//   its output; comparison ignores whitespace, and `...` stands for any text;
// - a run block must free every tensor it creates (`tf.memory().numTensors` ends where it started).

/** One ```ts block of the README. */
export interface Block {
  /** 1-based README line of the first code line (after the fence). */
  line: number;
  /** The code, exactly as in the README. */
  code: string;
  /** Type-checked and run (true), or only type-checked (`ts no-run`). */
  run: boolean;
}

/** What one `console.log` line must print. */
export interface Expectation {
  /** 1-based line within the block. */
  line: number;
  /** Expected text; `...` matches anything, whitespace is ignored. */
  text: string;
}

/**
 * The ```ts blocks of a Markdown text, with their README line numbers.
 *
 * @example
 * extractBlocks('x\n```ts\nconsole.log(1); // 1\n```\n'); // [{ line: 3, code: 'console.log(1); // 1', run: true }]
 */
export function extractBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    if (open[1] === 'ts' || open[1] === 'typescript') {
      const flags = open[2].split(/\s+/).filter(Boolean);
      blocks.push({ line: i + 2, code: lines.slice(i + 1, end).join('\n'), run: !flags.includes('no-run') });
    }
    i = end;
  }
  return blocks;
}

// The `// ...` comment that ends a code line, if any (ignores `//` inside quotes).
function trailingComment(line: string): string | undefined {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      quote = ch;
    } else if (ch === '/' && line[i + 1] === '/') {
      return line.slice(i + 2).trim();
    }
  }
  return undefined;
}

/**
 * The expected output of every `console.log` line of a block; throws when one states none.
 *
 * @example
 * expectations('console.log(x.shape); // [2, 3]'); // [{ line: 1, text: '[2, 3]' }]
 */
export function expectations(code: string): Expectation[] {
  const lines = code.split('\n');
  const out: Expectation[] = [];
  lines.forEach((text, i) => {
    if (!text.includes('console.log(')) return;
    const comment = trailingComment(text);
    if (comment !== undefined && comment !== '') {
      out.push({ line: i + 1, text: comment });
      return;
    }
    const below: string[] = [];
    for (let j = i + 1; j < lines.length && /^\s*\/\//.test(lines[j]); j++) {
      below.push(lines[j].replace(/^\s*\/\/ ?/, ''));
    }
    if (below.length === 0) {
      throw new Error(`block line ${i + 1}: console.log states no expected output: ${text.trim()}`);
    }
    out.push({ line: i + 1, text: below.join('\n') });
  });
  return out;
}

/**
 * Whether printed text matches an expectation: whitespace ignored, `...` matches any text.
 *
 * @example
 * matches('[ 2, 32, 32, 3 ]', '[2, 32, 32, 3]'); // true
 */
export function matches(printed: string, expected: string): boolean {
  const squash = (s: string) => s.replace(/\s+/g, '');
  // Split before squashing, so that a sentence's full stop next to '...' stays in the text.
  const parts = expected.split('...').map((p) => squash(p).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('[\\s\\S]*')}$`).test(squash(printed));
}
