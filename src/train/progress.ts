import cliProgress from 'cli-progress';

export interface ProgressOptions {
  /** Total work units (images) in this phase. */
  total: number;
  /** Shown before the bar / at the start of each line, e.g. `epoch 3/10`. */
  title?: string;
  /** Plain mode: print a line each time this many percent more is done. Default 10. */
  everyPercent?: number;
  /** Force the animated bar (true) or plain lines (false). Default: `stream.isTTY`. */
  tty?: boolean;
  /**
   * Units already done before this bar started (a resumed epoch): shown as done, but not counted in
   * the images/s rate. Default 0.
   */
  initial?: number;
  /** Where to write. Default process.stdout. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Values shown beside the bar: running loss and accuracy (0-1) of the phase. */
export interface ProgressValues {
  loss?: number;
  acc?: number;
}

/**
 * Reports training/evaluation progress: an animated cli-progress bar (ETA, loss, accuracy, images/s)
 * on a terminal, and one plain line every `everyPercent` percent elsewhere (CI logs, pipes).
 *
 * @example
 * const bar = new Progress({ total: train.count, title: 'epoch 1/10' });
 * for (const b of batches(...)) { ...; bar.tick(b.size, { loss, acc }); }
 * bar.stop();
 */
export class Progress {
  private readonly total: number;
  private readonly title: string;
  private readonly every: number;
  private readonly stream: NodeJS.WritableStream;
  private readonly bar?: cliProgress.SingleBar;
  private readonly started = performance.now();
  private done = 0;
  private readonly initial: number;
  private nextPercent: number;
  private values: ProgressValues = {};
  private stopped = false;

  constructor(opts: ProgressOptions) {
    this.total = Math.max(0, opts.total);
    this.title = opts.title ?? '';
    this.every = Math.max(1, opts.everyPercent ?? 10);
    this.initial = Math.min(this.total, Math.max(0, opts.initial ?? 0));
    this.done = this.initial;
    const startPercent = this.total === 0 ? 0 : (100 * this.initial) / this.total;
    this.nextPercent = this.every;
    while (this.nextPercent <= startPercent + 1e-9) this.nextPercent += this.every;
    this.stream = opts.stream ?? process.stdout;
    const tty = opts.tty ?? Boolean((this.stream as { isTTY?: boolean }).isTTY);
    if (tty) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${this.title} [{bar}] {percentage}% | ETA {eta_formatted} | loss {loss} | acc {acc} | {rate} img/s`,
          stream: this.stream,
          hideCursor: true,
          etaBuffer: 50,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(this.total, this.done, this.payload());
    }
  }

  /** Adds `count` finished units and updates the shown values. */
  tick(count: number, values: ProgressValues = {}): void {
    this.update(this.done + count, values);
  }

  /** Sets the absolute number of finished units. */
  update(done: number, values: ProgressValues = {}): void {
    this.done = Math.min(done, this.total);
    this.values = { ...this.values, ...values };
    if (this.bar) {
      this.bar.update(this.done, this.payload());
      return;
    }
    const percent = this.total === 0 ? 100 : (100 * this.done) / this.total;
    if (percent + 1e-9 >= this.nextPercent) {
      this.stream.write(this.line() + '\n');
      while (this.nextPercent <= percent + 1e-9) this.nextPercent += this.every;
    }
  }

  /** Images (units) per second since this bar started (units of `initial` excluded). */
  rate(): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? (this.done - this.initial) / seconds : 0;
  }

  /** Ends the bar (a last line in plain mode unless 100% was already printed). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.bar) {
      this.bar.stop();
    } else if (this.nextPercent <= 100) {
      this.stream.write(this.line() + '\n');
    }
  }

  private payload(): Record<string, string> {
    const { loss, acc } = this.values;
    return {
      loss: loss === undefined ? '-' : loss.toFixed(4),
      acc: acc === undefined ? '-' : `${(acc * 100).toFixed(1)}%`,
      rate: this.rate().toFixed(0),
    };
  }

  private line(): string {
    const p = this.payload();
    const percent = this.total === 0 ? 100 : Math.floor((100 * this.done) / this.total);
    const rate = this.rate();
    const eta = rate > 0 ? Math.round((this.total - this.done) / rate) : 0;
    const head = this.title ? `${this.title} ` : '';
    return `${head}${String(percent).padStart(3)}% ${this.done}/${this.total} | loss ${p.loss} | acc ${p.acc} | ${p.rate} img/s | eta ${eta}s`;
  }
}
