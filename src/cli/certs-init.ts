import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { createFileStore, FILES } from '../certs/file-store.js';
import { serviceDnsNames } from '../certs/issue.js';
import { parseCertificate } from '../certs/inspect.js';
import { applyStep } from '../certs/rotation.js';
import { StoreConflictError } from '../certs/store.js';
import { EXIT, UsageError, listOption, stringOption, type Command } from './command.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;

export function positiveInteger(values: Record<string, unknown>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const parsed = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(parsed) || parsed < 1) throw new UsageError(`--${name}: expected a positive whole number of days, got "${String(raw)}"`);
  return parsed;
}

export const certsInitCommand: Command = {
  name: 'certs init',
  summary: 'Issue a CA and a webhook serving certificate into a directory',
  usage: `Usage: portcullis certs init --dir DIR --service SVC --namespace NS [--dns NAME]... [--ip IP]... [options]

Issues a new CA and a serving certificate signed by it, and writes them to DIR:
  ca.crt   the CA certificate (give it to kube-apiserver as the webhooks' caBundle:
           \`portcullis webhooks render --ca DIR/ca.crt …\`)
  ca.key   the CA private key (mode 0600)
  tls.crt  the serving certificate for SVC, SVC.NS, SVC.NS.svc, SVC.NS.svc.cluster.local,
           every --dns NAME and every --ip IP
  tls.key  its private key (mode 0600)
Files are written atomically. An existing set is kept unless --force is given.

Options:
  --dir DIR          Directory to write (created when missing).
  --service SVC      Name of the webhook's Kubernetes Service.
  --namespace NS     Namespace of the Service.
  --dns NAME         Extra DNS name for the serving certificate (repeatable).
  --ip IP            IP address for the serving certificate (repeatable), e.g. 127.0.0.1.
  --ca-days N        CA validity in days (default 3650).
  --days N           Serving certificate validity in days (default 365).
  --force            Replace certificates already in DIR.
  -h, --help         Show this help.

Exit codes:
  0  certificates written
  1  DIR already holds certificates (nothing written; use --force or \`portcullis certs rotate\`)
  2  bad usage or input (a bad name or address, an unwritable directory)

Example:
  portcullis certs init --dir ./certs --service portcullis-webhook --namespace portcullis --ip 127.0.0.1
  openssl verify -CAfile ./certs/ca.crt ./certs/tls.crt
`,
  options: {
    dir: { type: 'string' },
    service: { type: 'string' },
    namespace: { type: 'string' },
    dns: { type: 'string', multiple: true },
    ip: { type: 'string', multiple: true },
    'ca-days': { type: 'string' },
    days: { type: 'string' },
    force: { type: 'boolean' },
  },
  positionals: false,
  async run({ values, io }) {
    const dir = resolve(io.cwd, stringOption(values, 'dir', true));
    const service = stringOption(values, 'service', true);
    const namespace = stringOption(values, 'namespace', true);
    if (!DNS_LABEL.test(service)) throw new UsageError(`--service: expected a DNS label (lower-case letters, digits, "-"), got "${service}"`);
    if (!DNS_LABEL.test(namespace)) throw new UsageError(`--namespace: expected a DNS label (lower-case letters, digits, "-"), got "${namespace}"`);
    const extraDns = listOption(values, 'dns');
    for (const name of extraDns) if (!DNS_NAME.test(name)) throw new UsageError(`--dns: expected a DNS name, got "${name}"`);
    const ips = listOption(values, 'ip');
    for (const ip of ips) if (isIP(ip) === 0) throw new UsageError(`--ip: expected an IPv4 or IPv6 address, got "${ip}"`);
    const caValidityDays = positiveInteger(values, 'ca-days', 3650);
    const servingValidityDays = positiveInteger(values, 'days', 365);

    const store = createFileStore(dir, { requireCaKey: true });
    const refuse = () => {
      io.stderr(`portcullis certs init: ${dir} already holds certificates; nothing written (use --force to replace them, or \`portcullis certs rotate --dir ${dir}\`)\n`);
      return EXIT.negative;
    };
    // Checked before issuing (key generation is the slow part); save() checks again.
    if (values.force !== true && (await store.currentVersion()) !== undefined) return refuse();
    const names = { dnsNames: [...new Set([...serviceDnsNames(service, namespace), ...extraDns])], ipAddresses: [...new Set(ips)] };
    const material = applyStep({ kind: 'issue', reason: 'certs init' }, undefined, new Date(), { caValidityDays, servingValidityDays, names });
    try {
      await store.save(material, values.force === true ? await store.currentVersion() : undefined);
    } catch (error) {
      if (!(error instanceof StoreConflictError)) throw error;
      return refuse();
    }
    const serving = parseCertificate(material.cert, FILES.cert);
    io.stdout(
      [
        `wrote ${Object.values(FILES).map((file) => `${dir}/${file}`).join(', ')}`,
        `serving certificate for ${[...serving.dnsNames, ...serving.ipAddresses].join(', ')}`,
        `valid until ${serving.notAfter.toISOString()}; CA valid for ${caValidityDays} days`,
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  },
};
