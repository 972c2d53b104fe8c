// The library's own pattern AST. Nothing from chevrotain appears here or past src/dsl.

/** Half-open character range [start, end) in the full pattern string. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface NamedAxis {
  readonly kind: 'named';
  readonly name: string;
  readonly span: Span;
}

/** A numeric axis other than 1 (`1` is a unit axis and is dropped, as in einops). Every occurrence is distinct. */
export interface AnonymousAxis {
  readonly kind: 'anonymous';
  readonly value: number;
  readonly span: Span;
}

export interface EllipsisAxis {
  readonly kind: 'ellipsis';
  readonly span: Span;
}

export type Axis = NamedAxis | AnonymousAxis | EllipsisAxis;

/**
 * One top-level position of an expression (einops' "composition" entry): a bare axis, or a
 * parenthesised group. `()` and a bare `1` are groups with no axes.
 */
export interface Dimension {
  readonly axes: readonly Axis[];
  readonly grouped: boolean;
  readonly span: Span;
}

/** One side of a pattern, e.g. `b (h w) c`. */
export interface Expression {
  readonly dims: readonly Dimension[];
  readonly span: Span;
  readonly hasEllipsis: boolean;
  /** `...` appears inside parentheses. */
  readonly ellipsisInGroup: boolean;
  /** A numeric axis other than 1 appears. */
  readonly hasAnonymous: boolean;
}

/** A `left -> right` pattern of rearrange, reduce and repeat. */
export interface Pattern {
  readonly source: string;
  readonly left: Expression;
  readonly right: Expression;
}

/** An einsum pattern: comma-separated inputs, one output. */
export interface EinsumPattern {
  readonly source: string;
  readonly inputs: readonly Expression[];
  readonly output: Expression;
}

/** A pack/unpack pattern such as `b * c`: axis names around exactly one `*`. */
export interface PackPattern {
  readonly source: string;
  readonly names: readonly string[];
  /** Index of `*` among the pattern's items. */
  readonly star: number;
}
