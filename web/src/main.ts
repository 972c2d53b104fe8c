// The page: playground, ViT demo, backend selector, and a test hook (window.einvit).
import { tf } from '../../src/tf.js';
import { switchBackend } from './backend.js';
import { initPlayground } from './playground.js';
import { grammarHtml } from './grammar.js';
import { idle, initDemo, lastRun, rerun, setRuntime } from './demo.js';
import { checkReference, GPU_TOLERANCE, parseCases, runConformance } from './checks.js';
import { describeError } from './model.js';
import type { EinvitHook, Runtime } from './hook.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

// The conformance vectors ship with the page but load only when asked for.
const vectors = import.meta.glob('../../test/conformance/*.jsonl', { query: '?raw', import: 'default' });

async function loadCases(): Promise<ReturnType<typeof parseCases>> {
  const texts = await Promise.all(Object.values(vectors).map((load) => load() as Promise<string>));
  return texts.flatMap(parseCases);
}

async function selectBackend(wanted: string): Promise<void> {
  const select = $<HTMLSelectElement>('backend');
  select.disabled = true;
  $('backend-message').textContent = '';
  try {
    const { name, device } = await switchBackend(wanted);
    $('backend-active').textContent = name;
    $('backend-active').dataset.backend = name;
    $('backend-device').textContent = device;
  } catch (e) {
    $('backend-message').textContent = describeError(e);
    $('backend-active').textContent = tf.getBackend() ?? 'none';
    $('backend-active').dataset.backend = tf.getBackend() ?? '';
  } finally {
    select.disabled = false;
  }
  await rerun();
}

const RUNTIMES: readonly Runtime[] = ['tfjs', 'ort-wasm', 'ort-webgpu'];

async function selectRuntime(wanted: string): Promise<void> {
  const select = $<HTMLSelectElement>('runtime');
  const next = (RUNTIMES as readonly string[]).includes(wanted) ? (wanted as Runtime) : 'tfjs';
  select.value = next;
  select.disabled = true;
  try {
    await setRuntime(next);
  } finally {
    select.disabled = false;
  }
}

async function runCheck(): Promise<string> {
  const out = $('check-result');
  out.textContent = `running on ${tf.getBackend()}…`;
  const results = await runConformance(await loadCases(), GPU_TOLERANCE);
  const failed = results.filter((r) => !r.passed);
  out.textContent =
    `${results.length - failed.length}/${results.length} cases pass on ${tf.getBackend()}` +
    failed.map((r) => `\n${r.id}: ${r.detail}`).join('');
  return out.textContent;
}

/** What the end-to-end test drives directly. */
const hook: Omit<EinvitHook, 'started'> = {
  tf,
  selectBackend,
  selectRuntime,
  lastRun,
  idle,
  runConformance,
  checkReference,
  parseCases,
  GPU_TOLERANCE,
  runCheck,
  // Loaded only when called: the trainer's code is not part of the page otherwise.
  gradientCheck: async (backend, reference) =>
    (await import('./gradients.js')).gradientCheck(backend, reference),
};

async function start(): Promise<void> {
  initPlayground();
  const frame = $<HTMLIFrameElement>('grammar-frame');
  frame.srcdoc = grammarHtml();
  const select = $<HTMLSelectElement>('backend');
  const wanted = new URLSearchParams(location.search).get('backend') ?? 'auto';
  select.value = wanted;
  select.addEventListener('change', () => void selectBackend(select.value));
  $('run-check').addEventListener('click', () => {
    runCheck().catch((e: unknown) => ($('check-result').textContent = describeError(e)));
  });
  const runtime = $<HTMLSelectElement>('runtime');
  runtime.addEventListener('change', () => void selectRuntime(runtime.value));
  await selectBackend(wanted);
  await initDemo();
  const wantedRuntime = new URLSearchParams(location.search).get('runtime');
  if (wantedRuntime) await selectRuntime(wantedRuntime);
}

window.einvit = { ...hook, started: start() };
