import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync } from 'fastify';
import { PortcullisError, describeError } from '../errors.js';
import { F } from '../log/fields.js';
import { RequestDeadline, type Deadline } from './deadline.js';
import type { DecisionRecord, DecisionSink } from './decision.js';
import type { AdmissionRecorder } from './metrics.js';
import { mutateReview } from './mutate.js';
import { decodeAdmissionReview, encodeAdmissionResponse, type AdmissionReviewRequest } from './review.js';
import { validateReview, type Outcome, type PipelineDeps } from './validate.js';
import type { WebhookSettings } from './webhook-config.js';

export interface RoutesDeps {
  pipeline: PipelineDeps;
  webhooks: WebhookSettings;
  /** Kept free for answering: verdict lookups get `timeoutSeconds * 1000 - deadlineMarginMs`. */
  deadlineMarginMs: number;
  metrics: AdmissionRecorder;
  decisions: DecisionSink;
}

type Webhook = 'validate' | 'mutate';

const PIPELINES: Record<Webhook, (deps: PipelineDeps, review: AdmissionReviewRequest, deadline: Deadline) => Promise<Outcome>> = {
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
  const recorder = deps.metrics;
  const pending = new PendingDecisions(deps.decisions);
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
      app.post(endpoint.path, async (request, reply) => {
        const arrived = deps.pipeline.now();
        const started = performance.now();
        let review: AdmissionReviewRequest;
        try {
          review = decodeAdmissionReview(request.body);
        } catch (error) {
          recorder.request(webhook, 'invalid');
          throw error;
        }
        const deadline = new RequestDeadline(budget);
        let outcome: Outcome;
        try {
          outcome = await PIPELINES[webhook](deps.pipeline, review, deadline);
        } catch (error) {
          // A bug must still produce an answer: validate fails closed, mutate changes nothing.
          request.log.error({ [F.uid]: review.request.uid, [F.webhook]: webhook, [F.err]: error }, 'admission pipeline failed');
          outcome = {
            answer: webhook === 'validate' ? { allowed: false, message: `[portcullis/internal] ${describeError(error)}` } : { allowed: true },
            images: [],
            results: [],
            mode: webhook === 'validate' ? 'deny' : 'none',
            patch: [],
          };
        } finally {
          deadline.dispose();
        }
        const body = encodeAdmissionResponse(review, outcome.answer);
        const decision = outcome.answer.allowed ? 'allow' : 'deny';
        const seconds = (performance.now() - started) / 1000;
        recorder.request(webhook, decision, seconds);
        recorder.results(outcome.results);
        if (outcome.subject) {
          if (deps.pipeline.logger.isLevelEnabled('info')) request.log.info(
            {
              [F.uid]: review.request.uid,
              [F.webhook]: webhook,
              [F.namespace]: outcome.subject.namespace,
              [F.kind]: outcome.subject.kind,
              [F.name]: outcome.subject.name,
              [F.operation]: outcome.subject.operation,
              [F.decision]: decision,
              [F.durationMs]: Math.round(seconds * 1000),
            },
            'admission decided',
          );
          // Built and handed over after the answer is on its way; the sink never blocks.
          pending.defer({ webhook, review, outcome, arrived, durationMs: seconds * 1000, log: request.log });
        }
        return reply.status(200).send(body);
      });
    }
  };
}

interface Decided {
  webhook: Webhook;
  review: AdmissionReviewRequest;
  outcome: Outcome;
  arrived: Date;
  durationMs: number;
  log: FastifyBaseLogger;
}

/**
 * Decisions waiting to be recorded: the records are built and handed to the sink after the
 * answers are written, all the requests of one event-loop turn in one `setImmediate` (one per
 * request cost a check-phase callback and a closure each on the hot path).
 */
class PendingDecisions {
  readonly #sink: DecisionSink;
  #queue: Decided[] = [];

  constructor(sink: DecisionSink) {
    this.#sink = sink;
  }

  defer(decided: Decided): void {
    this.#queue.push(decided);
    if (this.#queue.length === 1) setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    const queue = this.#queue;
    this.#queue = [];
    for (const { webhook, review, outcome, arrived, durationMs, log } of queue) {
      try {
        this.#sink.record(decisionRecord(webhook, review, outcome, arrived, durationMs));
      } catch (error) {
        // The contract says record never throws; a sink that does must not take the process down.
        log.error({ [F.uid]: review.request.uid, [F.err]: error }, 'decision sink failed');
      }
    }
  };
}

export function decisionRecord(webhook: Webhook, review: AdmissionReviewRequest, outcome: Outcome, arrived: Date, durationMs: number): DecisionRecord {
  const request = review.request;
  return {
    time: arrived.toISOString(),
    uid: request.uid,
    webhook,
    user: { username: request.userInfo?.username ?? '', groups: request.userInfo?.groups ?? [] },
    operation: request.operation,
    namespace: outcome.subject?.namespace ?? request.namespace ?? '',
    kind: outcome.subject?.kind ?? request.kind.kind,
    name: outcome.subject?.name ?? request.name ?? '',
    images: outcome.images.map((image) => ({ image: image.reference.original, pointer: image.pointer, ...(image.digest ? { digest: image.digest } : {}) })),
    results: outcome.results,
    decision: outcome.answer.allowed ? 'allow' : 'deny',
    mode: outcome.mode,
    warnings: outcome.answer.warnings ?? [],
    patch: outcome.patch,
    dryRun: request.dryRun === true,
    durationMs,
  };
}
