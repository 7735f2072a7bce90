import { resolve } from 'node:path';
import { createFileStore } from '../certs/file-store.js';
import { checkMaterial } from '../certs/material.js';
import { applyStep } from '../certs/rotation.js';
import { StoreConflictError } from '../certs/store.js';
import { PortcullisError } from '../errors.js';
import { positiveInteger } from './certs-init.js';
import { EXIT, stringOption, type Command } from './command.js';

export const certsRotateCommand: Command = {
  name: 'certs rotate',
  summary: 'Force a renewal of the serving certificate (or start a CA rotation)',
  usage: `Usage: portcullis certs rotate --dir DIR [--ca] [--days N] [--ca-days N]

Without --ca: issues a new serving certificate for the same names, signed by the CA whose key is
DIR/ca.key, and replaces DIR/tls.crt and DIR/tls.key atomically. A running Portcullis reloads it
without a restart.

With --ca: starts a CA rotation. A new CA is issued and appended to DIR/ca.crt (the bundle then
holds the old and the new CA) and DIR/ca.key becomes the new CA's key; the serving certificate is
left alone, so nothing stops working. Distribute the new ca.crt (a running Portcullis publishes it
to the webhooks' caBundle itself), then run \`certs rotate --dir DIR\` (or let Portcullis do it after
certs.overlapSeconds) to serve a certificate signed by the new CA. Portcullis removes the old CA from
the bundle one overlap later.

Options:
  --dir DIR      Certificate directory (as written by \`portcullis certs init\`).
  --ca           Start a CA rotation instead of renewing the serving certificate.
  --days N       Serving certificate validity in days (default 365).
  --ca-days N    New CA validity in days with --ca (default 3650).
  -h, --help     Show this help.

Exit codes:
  0  renewed
  1  the directory changed while rotating (nothing written; run again)
  2  bad usage, missing or invalid certificates (the message names the file)

Example:
  portcullis certs rotate --dir ./certs
`,
  options: { dir: { type: 'string' }, ca: { type: 'boolean' }, days: { type: 'string' }, 'ca-days': { type: 'string' } },
  positionals: false,
  async run({ values, io }) {
    const dir = resolve(io.cwd, stringOption(values, 'dir', true));
    const store = createFileStore(dir, { requireCaKey: true });
    const stored = await store.load();
    if (!stored) throw new PortcullisError('CERT_INVALID', `directory ${dir}: no certificates (run \`portcullis certs init --dir ${dir} …\` first)`);
    const checked = checkMaterial(stored.material, store.sources, { dnsNames: [], ipAddresses: [] });
    const names = { dnsNames: checked.serving.dnsNames, ipAddresses: checked.serving.ipAddresses };
    const settings = { caValidityDays: positiveInteger(values, 'ca-days', 3650), servingValidityDays: positiveInteger(values, 'days', 365), names };
    const now = new Date();
    const step = values.ca === true ? ({ kind: 'add-ca', reason: 'certs rotate --ca' } as const) : ({ kind: 'renew-serving', reason: 'certs rotate' } as const);
    const material = applyStep(step, checked, now, settings);
    try {
      await store.save(material, stored.version);
    } catch (error) {
      if (!(error instanceof StoreConflictError)) throw error;
      io.stderr(`portcullis certs rotate: ${dir} changed while rotating; nothing written, run again\n`);
      return EXIT.negative;
    }
    const after = checkMaterial(material, store.sources, { dnsNames: [], ipAddresses: [] });
    if (step.kind === 'add-ca') {
      io.stdout(`added a new CA (${after.signer?.subject ?? ''}) to ${dir}/ca.crt, which now holds ${after.bundle.length} CAs; the serving certificate is unchanged\n`);
    } else {
      const stale = after.bundle.filter((ca) => ca !== after.servingIssuer).length;
      io.stdout(
        `renewed ${dir}/tls.crt for ${[...names.dnsNames, ...names.ipAddresses].join(', ')}, signed by ${after.servingIssuer.subject}, valid until ${after.serving.notAfter.toISOString()}\n` +
          (stale > 0 ? `${dir}/ca.crt still holds ${stale} older CA${stale === 1 ? '' : 's'}; Portcullis drops ${stale === 1 ? 'it' : 'them'} after certs.overlapSeconds\n` : ''),
      );
    }
    return EXIT.ok;
  },
};
