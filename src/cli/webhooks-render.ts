import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseCertificates } from '../certs/inspect.js';
import { parseWebhookTarget, renderWebhookConfigs } from '../certs/webhook-configs.js';
import { PortcullisError } from '../errors.js';
import { EXIT, stringOption, type Command } from './command.js';

export const webhooksRenderCommand: Command = {
  name: 'webhooks render',
  summary: 'Print both webhook configurations with caBundle and client config filled in',
  usage: `Usage: portcullis webhooks render --ca FILE (--service SVC.NS[:PORT] | --url https://HOST:PORT) [--webhooks-dir DIR]

Prints the ValidatingWebhookConfiguration and the MutatingWebhookConfiguration from DIR (default
webhooks/) as one multi-document YAML stream, with clientConfig.caBundle of every webhook set to
the CA certificate(s) in FILE and clientConfig pointed where asked:
  --service SVC.NS   a Service in the cluster (clientConfig.service, paths and port kept;
                     :PORT overrides the port);
  --url URL          an address outside the cluster that kube-apiserver can reach
                     (clientConfig.url = URL + the webhook's path), e.g. a laptop running
                     \`portcullis up\` for a kind cluster.
Comments of the source files are kept. Pipe it to \`kubectl apply -f -\`.

Options:
  --ca FILE            PEM file of the CA(s) that signed the serving certificate (DIR/ca.crt).
  --service SVC.NS     Call the webhooks through this Service.
  --url URL            Call the webhooks at this https URL.
  --webhooks-dir DIR   Where the configurations live (default webhooks).
  -h, --help           Show this help.

Exit codes:
  0  printed
  2  bad usage or input (unreadable or corrupt CA file, both or neither of --service/--url,
     a non-https URL, a malformed configuration; the message names it)

Examples:
  portcullis webhooks render --ca certs/ca.crt --service portcullis-webhook.portcullis | kubectl apply -f -
  portcullis webhooks render --ca certs/ca.crt --url https://192.168.49.1:8443
`,
  options: { ca: { type: 'string' }, service: { type: 'string' }, url: { type: 'string' }, 'webhooks-dir': { type: 'string' } },
  positionals: false,
  async run({ values, io }) {
    const caFile = resolve(io.cwd, stringOption(values, 'ca', true));
    const target = parseWebhookTarget({
      ...(typeof values.service === 'string' ? { service: values.service } : {}),
      ...(typeof values.url === 'string' ? { url: values.url } : {}),
    });
    let caPem: string;
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new PortcullisError('CERT_INVALID', `file ${caFile}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
    }
    const cas = parseCertificates(caPem, `file ${caFile}`);
    const notCa = cas.find((cert) => !cert.isCa);
    if (notCa) throw new PortcullisError('CERT_INVALID', `file ${caFile}: expected CA certificates, found a non-CA certificate (subject ${notCa.subject}); pass ca.crt, not tls.crt`);
    const dir = resolve(io.cwd, stringOption(values, 'webhooks-dir') ?? 'webhooks');
    io.stdout(renderWebhookConfigs(dir, caPem, target));
    return EXIT.ok;
  },
};
