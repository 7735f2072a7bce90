import type { Command } from './command.js';
import { auditQueryCommand } from './audit-query.js';
import { auditRunningCommand } from './audit-running.js';
import { auditSummaryCommand } from './audit-summary.js';
import { certsInitCommand } from './certs-init.js';
import { certsRotateCommand } from './certs-rotate.js';
import { certsShowCommand } from './certs-show.js';
import { policyLintCommand } from './policy-lint.js';
import { policyTestCommand } from './policy-test.js';
import { reviewCommand } from './review.js';
import { upCommand } from './up.js';
import { versionCommand } from './version.js';
import { webhooksRenderCommand } from './webhooks-render.js';

/**
 * Every subcommand of `portcullis`, in the order `portcullis --help` lists them.
 * Each lives in its own file under src/cli/.
 */
export const COMMANDS: readonly Command[] = [upCommand, policyLintCommand, policyTestCommand, reviewCommand, certsInitCommand, certsShowCommand, certsRotateCommand, webhooksRenderCommand, auditQueryCommand, auditSummaryCommand, auditRunningCommand, versionCommand];
