import { describe, expect, it } from 'vitest';
import type { Suite } from '../main.js';
import { banner } from './up.js';

/** A suite that runs the registry only, as the banner reads it. */
function suite(admin: Suite['admin']): Suite {
  const fake: Partial<Suite> = {
    roles: ['registry'],
    endpoints: { registry: { role: 'registry', url: 'https://127.0.0.1:5000', host: '127.0.0.1', port: 5000, readiness: undefined as never } },
    readiness: async () => ({ ready: true, checks: {} }),
    caFile: '/work/.portcullis/certs/ca.crt',
    trustDir: '/work/.portcullis/trust',
    policiesDir: '/work/policies',
    webhooksDir: '/work/webhooks',
    kube: { mode: 'none', reason: 'KUBECONFIG is not set' },
    ...(admin ? { admin } : {}),
  };
  return fake as Suite;
}

describe('the banner of portcullis up', () => {
  it('shows a generated admin password once, and says only its hash is kept', async () => {
    const text = await banner(suite({ username: 'admin', created: true, generatedPassword: 'Gen3ratedPassw0rdXyzAbcde' }), '/work');
    expect(text.split('Gen3ratedPassw0rdXyzAbcde')).toHaveLength(2);
    expect(text).toContain('(shown this once and stored only as a hash: keep it now)');
    expect(text).toContain("export PORTCULLIS_ADMIN_PASSWORD='<the admin password>'");
  });

  it('names the configuration when the admin was created with a configured password', async () => {
    const text = await banner(suite({ username: 'admin', created: true }), '/work');
    expect(text).toContain('user "admin", password from the configuration (PORTCULLIS_ADMIN_PASSWORD), stored only as a hash');
  });

  it('points to the first start, and to the reset command, on later starts', async () => {
    const text = await banner(suite({ username: 'admin', created: false }), '/work');
    expect(text).toContain('password as set on the first start (stored only as a hash; lost: portcullis admin reset-password)');
    expect(text).not.toContain('PORTCULLIS_ADMIN_PASSWORD),');
  });

  it('has no admin line and no password step without a registry admin', async () => {
    const text = await banner(suite(undefined), '/work');
    expect(text).not.toMatch(/^ {2}admin /m);
    expect(text).not.toContain('export PORTCULLIS_ADMIN_PASSWORD');
  });
});
