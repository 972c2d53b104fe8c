import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError, UsageError } from '../../src/errors.js';
import {
  borderBrightness,
  datasetPolarity,
  imagePolarity,
  invertImage,
  prepareImage,
  preprocess,
  type RgbImage,
} from '../../src/image/index.js';
import { PREPROCESSOR_FILE, preprocessingFor, preprocessorJson } from '../../src/vit/preprocessor.js';
import { PRESETS } from '../../src/vit/config.js';
import { loadMnist } from '../../src/train/mnist.js';
import { configForData, polarityOf } from '../../src/train/data-config.js';
import { INVERT_MODES, invertMode } from '../../src/cli/predict.js';

const root = mkdtempSync(join(tmpdir(), 'einvit-polarity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A white '1' (a 3 px bar) on black, 28x28. */
function whiteOnBlack(): RgbImage {
  const data = new Uint8Array(28 * 28 * 3);
  for (let y = 5; y < 23; y++)
    for (let x = 13; x < 16; x++) data.fill(255, (y * 28 + x) * 3, (y * 28 + x) * 3 + 3);
  return { width: 28, height: 28, data };
}

const pre = { size: 28, mean: [0.1307], std: [0.3081], channels: 1 as const };

describe('polarity of an image', () => {
  it('reads the background from the border ring', () => {
    const digit = whiteOnBlack();
    expect(borderBrightness(digit)).toBe(0);
    expect(imagePolarity(digit)).toBe('light-on-dark');
    expect(borderBrightness(invertImage(digit))).toBe(255);
    expect(imagePolarity(invertImage(digit))).toBe('dark-on-light');
    expect(
      Array.from(invertImage({ width: 1, height: 1, data: Uint8Array.from([0, 128, 255]) }).data),
    ).toEqual([255, 127, 0]);
  });

  it('prepareImage inverts only the other polarity, and says so', () => {
    const digit = whiteOnBlack();
    const paper = invertImage(digit);
    const trained = { ...pre, polarity: 'light-on-dark' as const };
    const plain = preprocess(digit, pre).data;
    const a = prepareImage(digit, trained);
    expect(a).toMatchObject({ inverted: false, polarity: 'light-on-dark', note: undefined });
    expect(a.data).toEqual(plain);
    const b = prepareImage(paper, trained);
    expect(b).toMatchObject({ inverted: true, polarity: 'dark-on-light' });
    expect(b.note).toBe(
      'inverted: dark-on-light image, the model was trained on light-on-dark (--invert never to keep it)',
    );
    expect(b.data).toEqual(plain); // exactly the white-on-black input
    const c = prepareImage(paper, trained, 'never');
    expect(c.inverted).toBe(false);
    expect(c.data).toEqual(preprocess(paper, pre).data);
    expect(prepareImage(digit, trained, 'always').data).toEqual(c.data);
    // No recorded polarity: nothing is inverted automatically.
    expect(prepareImage(paper, pre)).toMatchObject({ inverted: false, note: undefined });
  });
});

describe('polarity of a data set', () => {
  it('is light-on-dark for MNIST, which the saved preprocessor config then records', () => {
    const mnist = loadMnist();
    expect(polarityOf(mnist)).toBe('light-on-dark');
    const json = preprocessorJson(PRESETS.tiny, mnist.mean, mnist.std, polarityOf(mnist));
    expect(json.einvit_polarity).toBe('light-on-dark');
    const dir = join(root, 'mnist-model');
    mkdirSync(dir);
    writeFileSync(join(dir, PREPROCESSOR_FILE), JSON.stringify(json));
    expect(preprocessingFor(dir, PRESETS.tiny)).toMatchObject({ polarity: 'light-on-dark', channels: 1 });
  });

  it('is dark-on-light for inverted images and undefined for a mix', () => {
    const plane = 16;
    const images = new Float32Array(10 * plane);
    for (let k = 0; k < 10; k++) images.fill(k < 5 ? 0.9 : 0.1, k * plane, (k + 1) * plane);
    const ds = { images, count: 10, channels: 1, height: 4, width: 4, mean: [0], std: [1] };
    expect(datasetPolarity(ds)).toBeUndefined();
    expect(datasetPolarity({ ...ds, images: images.map(() => 0.95) })).toBe('dark-on-light');
    // Normalised values are un-normalised first: (x * std + mean) = 0.1 everywhere.
    expect(datasetPolarity({ ...ds, images: images.map(() => -2), mean: [0.5], std: [0.2] })).toBe(
      'light-on-dark',
    );
    expect(datasetPolarity({ ...ds, count: 0 })).toBeUndefined();
    expect(() => datasetPolarity({ ...ds, mean: [] })).toThrowError(UsageError);
  });

  it('a bad einvit_polarity in preprocessor_config.json is a CheckpointError naming the file', () => {
    const dir = join(root, 'bad');
    mkdirSync(dir);
    writeFileSync(join(dir, PREPROCESSOR_FILE), JSON.stringify({ einvit_polarity: 'white' }));
    expect(() => preprocessingFor(dir, PRESETS.tiny)).toThrowError(CheckpointError);
    expect(() => preprocessingFor(dir, PRESETS.tiny)).toThrowError(
      /preprocessor_config\.json: 'einvit_polarity' must be "light-on-dark" or "dark-on-light", got "white"/,
    );
    writeFileSync(join(dir, PREPROCESSOR_FILE), '{ nope');
    expect(() => preprocessingFor(dir, PRESETS.tiny)).toThrowError(CheckpointError);
  });
});

describe('configForData', () => {
  const data = { name: 'folder-train', numClasses: 2, classNames: ['seven', 'three'] };

  it('gives a preset the data classes and says so', () => {
    const log: string[] = [];
    const cfg = configForData(PRESETS.tiny, data, true, (l) => log.push(l));
    expect(cfg.num_labels).toBe(2);
    expect(cfg.id2label).toEqual({ '0': 'seven', '1': 'three' });
    expect(log).toEqual(['config: 2 classes (num_labels 10 -> 2 for folder-train), labels: seven, three']);
    expect(PRESETS.tiny.num_labels).toBe(10); // presets are untouched
  });

  it('keeps a config file whose count differs (checkFits reports it) and a config that already fits', () => {
    const log: string[] = [];
    expect(configForData(PRESETS.tiny, data, false, (l) => log.push(l))).toBe(PRESETS.tiny);
    const mnist = { name: 'mnist-train', numClasses: 10, classNames: '0123456789'.split('') };
    expect(configForData(PRESETS.tiny, mnist, true, (l) => log.push(l))).toBe(PRESETS.tiny);
    expect(log).toEqual([]);
  });

  it('names placeholder labels, and says which names it replaced', () => {
    const log: string[] = [];
    const hand = { ...PRESETS.tiny, num_labels: 2, id2label: { '0': 'LABEL_0', '1': 'LABEL_1' } };
    expect(configForData(hand, data, false, (l) => log.push(l)).id2label).toEqual({
      '0': 'seven',
      '1': 'three',
    });
    const named = { ...hand, id2label: { '0': 'a', '1': 'b' } };
    expect(configForData(named, data, false, (l) => log.push(l)).id2label).toEqual({
      '0': 'seven',
      '1': 'three',
    });
    expect(log).toEqual([
      'config: labels from folder-train: seven, three',
      'config: labels from folder-train: seven, three (instead of a, b)',
    ]);
  });
});

describe('--invert', () => {
  it('takes auto, always or never', () => {
    expect(INVERT_MODES.map(invertMode)).toEqual(['auto', 'always', 'never']);
    expect(invertMode(undefined)).toBe('auto');
    expect(() => invertMode('maybe')).toThrowError(UsageError);
    expect(() => invertMode('maybe')).toThrowError("--invert must be auto, always, never, got 'maybe'");
  });
});
