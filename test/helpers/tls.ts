import { Agent } from 'undici';
import { issueCa, issueServing, type KeyPair } from '../../src/certs/issue.js';

export interface TestTls {
  ca: KeyPair;
  /** Serving certificate for localhost and 127.0.0.1, signed by `ca`. */
  serving: KeyPair;
}

let cached: TestTls | undefined;

/** A CA and a loopback serving certificate, issued once per test process. */
export function testTls(): TestTls {
  if (!cached) {
    const now = new Date();
    const ca = issueCa({ commonName: 'Portcullis Test CA', validityDays: 30, now });
    const serving = issueServing({ ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 30, now });
    cached = { ca, serving };
  }
  return cached;
}

/** An undici dispatcher that trusts only the given CA (pass it as `dispatcher` to fetch). */
export function trustingAgent(caPem: string): Agent {
  return new Agent({ connect: { ca: caPem } });
}
