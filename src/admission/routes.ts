import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync } from 'fastify';
import { PortcullisError, describeError } from '../errors.js';
import { F } from '../log/fields.js';
import { RequestDeadline, type Deadline } from './deadline.js';
import { isoTime, type DecisionRecord, type DecisionSink } from './decision.js';
import type { AdmissionStats } from './metrics.js';
import { mutateReview } from './mutate.js';
import { decodeAdmissionReview, encodeAdmissionResponse, type AdmissionReviewRequest } from './review.js';
import { validateReview, type Outcome, type PipelineDeps } from './validate.js';
import type { WebhookSettings } from './webhook-config.js';

export interface RoutesDeps {
  pipeline: PipelineDeps;
  webhooks: WebhookSettings;
  /** Kept free for answering: verdict lookups get `timeoutSeconds * 1000 - deadlineMarginMs`. */
  deadlineMarginMs: number;
  metrics: AdmissionStats;
  decisions: DecisionSink;
}

type Webhook = 'validate' | 'mutate';

const PIPELINES: Record<Webhook, (deps: PipelineDeps, review: AdmissionReviewRequest, deadline: Deadline, now: Date) => Outcome | Promise<Outcome>> = {
  validate: validateReview,
  mutate: mutateReview,
};

/** The deadline for lookups inside one request (never below 50 ms, so that a cached answer still fits). */
export function deadlineMs(timeoutSeconds: number, marginMs: number): number {
  return Math.max(timeoutSeconds * 1000 - marginMs, 50);
}

/**
 * `POST <validate path>` and `POST <mutate path>` (from webhooks/*.yaml). Each route is one
 * pipeline: decode (400 on a malformed review) → filter → extract → evaluate or mutate → answer
 * → record the decision off the request path. Only `application/json` bodies are accepted (415
 * otherwise); the body limit is the server's (413).
 */
export function admissionRoutes(deps: RoutesDeps): FastifyPluginAsync {
  const stats = deps.metrics;
  const logger = deps.pipeline.logger;
  return async (app: FastifyInstance) => {
    // kube-apiserver always sends JSON; anything else (text/plain included) is refused with 415.
    app.removeContentTypeParser('text/plain');
    app.addContentTypeParser('*', (request, _payload, done) => {
      const type = request.headers['content-type'] ?? '(none)';
      done(new PortcullisError('UNSUPPORTED_MEDIA_TYPE', `content-type ${type} is not accepted; send application/json`), undefined);
    });
    for (const webhook of ['validate', 'mutate'] as const) {
      const endpoint = deps.webhooks[webhook];
      const budget = deadlineMs(endpoint.timeoutSeconds, deps.deadlineMarginMs);
      // Not an async handler: a pipeline that answers synchronously (the warm path) is answered
      // in the same turn, without a promise; only a pipeline that waits returns one to fastify.
      app.post(endpoint.path, (request, reply) => {
        const started = performance.now();
        let review: AdmissionReviewRequest;
        try {
          review = decodeAdmissionReview(request.body);
        } catch (error) {
          stats.request(webhook, 'invalid');
          throw error;
        }
        const arrived = deps.pipeline.now();
        const deadline = new RequestDeadline(budget, started);
        const answer = (outcome: Outcome): void => {
          deadline.dispose();
          const decision = outcome.answer.allowed ? 'allow' : 'deny';
          const durationMs = performance.now() - started;
          reply.status(200).send(encodeAdmissionResponse(review, outcome.answer));
          // The answer is written by now (send writes synchronously); what follows costs the
          // apiserver no latency. The sink only queues the record (it never blocks).
          stats.request(webhook, decision, durationMs / 1000);
          stats.results(outcome.results);
          if (outcome.subject) {
            recordDecision(deps.decisions, decisionRecord(webhook, review, outcome, arrived, durationMs), request.log);
            // Every decision is in the audit record; the log line is for debugging.
            if (logger.isLevelEnabled('debug')) request.log.debug(
              {
                [F.uid]: review.request.uid,
                [F.webhook]: webhook,
                [F.namespace]: outcome.subject.namespace,
                [F.kind]: outcome.subject.kind,
                [F.name]: outcome.subject.name,
                [F.operation]: outcome.subject.operation,
                [F.decision]: decision,
                [F.durationMs]: Math.round(durationMs),
              },
              'admission decided',
            );
          }
        };
        // A bug must still produce an answer: validate fails closed, mutate changes nothing.
        const failed = (error: unknown): void => {
          request.log.error({ [F.uid]: review.request.uid, [F.webhook]: webhook, [F.err]: error }, 'admission pipeline failed');
          answer({
            answer: webhook === 'validate' ? { allowed: false, message: `[portcullis/internal] ${describeError(error)}` } : { allowed: true },
            images: [],
            results: [],
            mode: webhook === 'validate' ? 'deny' : 'none',
            patch: [],
          });
        };
        let outcome: Outcome | Promise<Outcome>;
        try {
          outcome = PIPELINES[webhook](deps.pipeline, review, deadline, arrived);
        } catch (error) {
          failed(error);
          return;
        }
        if (isPromise(outcome)) return outcome.then(answer, failed);
        answer(outcome);
        return;
      });
    }
  };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === 'function';
}

function recordDecision(sink: DecisionSink, record: DecisionRecord, log: FastifyBaseLogger): void {
  try {
    sink.record(record);
  } catch (error) {
    // The contract says record never throws; a sink that does must not take the process down.
    log.error({ [F.uid]: record.uid, [F.err]: error }, 'decision sink failed');
  }
}

export function decisionRecord(webhook: Webhook, review: AdmissionReviewRequest, outcome: Outcome, arrived: Date, durationMs: number): DecisionRecord {
  const request = review.request;
  return {
    time: isoTime(arrived),
    uid: request.uid,
    webhook,
    user: { username: request.userInfo?.username ?? '', groups: request.userInfo?.groups ?? [] },
    operation: request.operation,
    namespace: outcome.subject?.namespace ?? request.namespace ?? '',
    kind: outcome.subject?.kind ?? request.kind.kind,
    name: outcome.subject?.name ?? request.name ?? '',
    images: outcome.images.map((image) =>
      image.digest ? { image: image.reference.original, pointer: image.pointer, digest: image.digest } : { image: image.reference.original, pointer: image.pointer },
    ),
    results: outcome.results,
    decision: outcome.answer.allowed ? 'allow' : 'deny',
    mode: outcome.mode,
    warnings: outcome.answer.warnings ?? [],
    patch: outcome.patch,
    dryRun: request.dryRun === true,
    durationMs,
  };
}
