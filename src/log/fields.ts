/**
 * Log field names, kept in one place so that a field is never spelled two ways across modules.
 * Use as `log.info({ [F.uid]: uid, [F.decision]: 'deny' }, 'admission decided')`.
 */
export const F = {
  uid: 'uid',
  namespace: 'namespace',
  name: 'name',
  kind: 'kind',
  operation: 'operation',
  decision: 'decision',
  durationMs: 'durationMs',
  image: 'image',
  digest: 'digest',
  policy: 'policy',
  rule: 'rule',
  file: 'file',
  repository: 'repository',
  reference: 'reference',
  user: 'user',
  jobId: 'jobId',
  attempt: 'attempt',
  err: 'err',
  address: 'address',
  webhook: 'webhook',
  reason: 'reason',
  count: 'count',
  path: 'path',
  project: 'project',
  role: 'role',
} as const;
