import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { readWebhookSettings } from './webhook-config.js';

const dirs: { remove(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => dir.remove()));

function webhooksDir(files: Record<string, string>): string {
  const dir = tempDir();
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir.path, name), text);
  return dir.path;
}

const config = (kind: string, path: string, extra = '') =>
  `apiVersion: admissionregistration.k8s.io/v1\nkind: ${kind}\nmetadata: {name: x}\nwebhooks:\n  - name: x.portcullis.io\n${extra}    clientConfig:\n      service: {name: s, namespace: n, path: ${path}}\n`;

describe('webhook settings from webhooks/*.yaml', () => {
  it('reads the paths and timeouts of the project webhook configurations', () => {
    const settings = readWebhookSettings(new URL('../../webhooks', import.meta.url).pathname);
    expect(settings.validate).toMatchObject({ path: '/validate', timeoutSeconds: 10 });
    expect(settings.mutate).toMatchObject({ path: '/mutate', timeoutSeconds: 5 });
  });

  it('uses the Kubernetes default timeout of 10 seconds when none is given', () => {
    const dir = webhooksDir({ 'v.yaml': config('ValidatingWebhookConfiguration', '/v'), 'm.yaml': config('MutatingWebhookConfiguration', '/m', '    timeoutSeconds: 3\n') });
    expect(readWebhookSettings(dir)).toMatchObject({ validate: { path: '/v', timeoutSeconds: 10 }, mutate: { path: '/m', timeoutSeconds: 3 } });
  });

  it.each([
    ['a missing mutating configuration', { 'v.yaml': config('ValidatingWebhookConfiguration', '/v') }, /no MutatingWebhookConfiguration found/],
    [
      'a path without a slash',
      { 'v.yaml': config('ValidatingWebhookConfiguration', 'validate'), 'm.yaml': config('MutatingWebhookConfiguration', '/m') },
      /v\.yaml: ValidatingWebhookConfiguration \/webhooks\/0\/clientConfig\/service\/path: must be a path starting with "\/", got "validate"/,
    ],
    [
      'a timeout above 30 seconds',
      { 'v.yaml': config('ValidatingWebhookConfiguration', '/v', '    timeoutSeconds: 45\n'), 'm.yaml': config('MutatingWebhookConfiguration', '/m') },
      /timeoutSeconds: must be an integer from 1 to 30, got 45/,
    ],
    ['both on one path', { 'v.yaml': config('ValidatingWebhookConfiguration', '/x'), 'm.yaml': config('MutatingWebhookConfiguration', '/x') }, /both webhooks use the path \/x/],
  ])('refuses %s with CONFIG_INVALID naming the file', (_name, files, message) => {
    expect(() => readWebhookSettings(webhooksDir(files))).toThrow(message);
  });
});
