/**
 * einvit's error family. Every error einvit throws on purpose is an {@link EinvitError}; catch that
 * one class to handle them all. Pattern and shape errors keep einops' class name, {@link EinopsError}.
 *
 * @example
 * try { await ViT.fromPretrained('nowhere'); } catch (e) { if (e instanceof EinvitError) console.error(e.message); }
 */
export class EinvitError extends Error {
  /** Stable slug of the rule that broke (e.g. `duplicate-axis`, `config-file`), when known. */
  readonly rule?: string;

  constructor(message: string, options?: { rule?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.rule = options?.rule;
  }
}

/**
 * A rejected pattern, shape or axis length: malformed patterns, shapes that do not fit, bad axis
 * lengths, tensors an op cannot take. Pattern errors draw a caret under the offending position.
 *
 * @example
 * try { rearrange(x, 'b (h w -> b h w'); } catch (e) { if (e instanceof EinopsError) console.log(e.message); }
 */
export class EinopsError extends EinvitError {}

/** A file that cannot be read or written as einvit needs it: checkpoints, configs, safetensors, ONNX. */
export class CheckpointError extends EinvitError {}

/** A data set, image or label set that cannot be used as given. */
export class DataError extends EinvitError {}

/** A bad option or argument: CLI flags, out-of-range settings, runs that cannot be resumed as asked. */
export class UsageError extends EinvitError {}

/** A program that cannot be compiled (traced, exported, run on a compiled runtime). */
export class CompileError extends EinvitError {}

/** A failure of a worker thread or an external runtime that einvit drives. */
export class RuntimeFailure extends EinvitError {}

/** Renders `pattern` with a caret line under characters [start, end). */
export function caret(pattern: string, start: number, end = start + 1): string {
  // Columns count code points, not UTF-16 units, so the caret stays under astral characters.
  const column = [...pattern.slice(0, Math.max(0, start))].length;
  const width = Math.max(1, [...pattern.slice(Math.max(0, start), end)].length);
  return `  ${pattern}\n  ${' '.repeat(column)}${'^'.repeat(width)}`;
}
