import type { Command } from './command.js';
import { adminResetPasswordCommand } from './admin-reset-password.js';
import { auditQueryCommand } from './audit-query.js';
import { auditRunningCommand } from './audit-running.js';
import { auditSummaryCommand } from './audit-summary.js';
import { certsInitCommand } from './certs-init.js';
import { certsRotateCommand } from './certs-rotate.js';
import { certsShowCommand } from './certs-show.js';
import { policyLintCommand } from './policy-lint.js';
import { policyTestCommand } from './policy-test.js';
import { registryCommand } from './registry.js';
import { projectCreateCommand } from './project-create.js';
import { projectDeleteCommand } from './project-delete.js';
import { projectListCommand } from './project-list.js';
import { projectMemberAddCommand } from './project-member-add.js';
import { robotCreateCommand } from './robot-create.js';
import { robotDeleteCommand } from './robot-delete.js';
import { robotListCommand } from './robot-list.js';
import { robotRefreshCommand } from './robot-refresh.js';
import { reviewCommand } from './review.js';
import { scanCommand } from './scan.js';
import { scannerStatusCommand } from './scanner.js';
import { upCommand } from './up.js';
import { versionCommand } from './version.js';
import { webhooksRenderCommand } from './webhooks-render.js';

/**
 * Every subcommand of `portcullis`, in the order `portcullis --help` lists them.
 * Each lives in its own file under src/cli/.
 */
export const COMMANDS: readonly Command[] = [upCommand, policyLintCommand, policyTestCommand, reviewCommand, certsInitCommand, certsShowCommand, certsRotateCommand, webhooksRenderCommand, registryCommand, projectCreateCommand, projectListCommand, projectDeleteCommand, projectMemberAddCommand, robotCreateCommand, robotListCommand, robotRefreshCommand, robotDeleteCommand, adminResetPasswordCommand, scanCommand, scannerStatusCommand, auditQueryCommand, auditSummaryCommand, auditRunningCommand, versionCommand];
