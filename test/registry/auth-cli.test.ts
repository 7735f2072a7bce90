import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { testTls } from '../helpers/tls.js';
import { ADMIN_PASSWORD, basic, startAuthFixture, type AuthFixture } from './auth-fixture.js';

let fixture: AuthFixture;
let caFile: string;
/** Runs `portcullis ARGS` in this process (the real dispatcher and command) and captures its output. */
async function runCli(args: string[], options: { env: Record<string, string> }): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env: options.env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

const env = () => ({ PORTCULLIS_REGISTRY_CLIENT_URL: fixture.url, PORTCULLIS_REGISTRY_CLIENT_PASSWORD: ADMIN_PASSWORD, PORTCULLIS_REGISTRY_CLIENT_CA_FILE: caFile });

beforeAll(async () => {
  fixture = await startAuthFixture();
  caFile = join(fixture.dataDir, 'ca.crt');
  writeFileSync(caFile, testTls().ca.cert);
});

afterAll(async () => {
  await fixture?.close();
});

describe('the project and robot commands', () => {
  it('create a project and a robot whose secret logs in, then list and delete them', async () => {
    const project = await runCli(['project', 'create', 'team', '--public'], { env: env() });
    expect(project).toMatchObject({ code: 0, stdout: 'project team created\n' });

    const robot = await runCli(['robot', 'create', 'team', 'ci', '--action', 'pull', '--duration=-1', '-o', 'json'], { env: env() });
    expect(robot.code).toBe(0);
    const created = JSON.parse(robot.stdout) as { id: number; name: string; secret: string };
    expect(created.name).toBe('robot$team+ci');
    await expect(fixture.auth.controller.authenticate(basic(created.name, created.secret))).resolves.toMatchObject({ kind: 'robot', project: 'team' });

    const refreshed = await runCli(['robot', 'refresh', String(created.id)], { env: env() });
    expect(refreshed.code, refreshed.stderr).toBe(0);
    const secret = /^secret: (\S+)\n\(shown once: store it now\)\n$/.exec(refreshed.stdout)?.[1] ?? '';
    expect(secret).not.toBe(created.secret);
    await expect(fixture.auth.controller.authenticate(basic(created.name, created.secret))).rejects.toThrow('wrong user name or password');
    await expect(fixture.auth.controller.authenticate(basic(created.name, secret))).resolves.toMatchObject({ kind: 'robot', project: 'team' });

    const listed = await runCli(['robot', 'list', 'team'], { env: env() });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^ID\\s+NAME\\s+ACTIONS\\s+EXPIRES\\s+DISABLED\\n${created.id}\\s+robot\\$team\\+ci\\s+pull\\s+never\\s+no\\n$`));

    const projects = await runCli(['project', 'list'], { env: env() });
    expect(projects.stdout).toMatch(/^NAME\s+VISIBILITY\s+AUTO-SCAN\s+YOUR ROLE\s+REPOSITORIES\nteam\s+public\s+on\s+projectAdmin\s+0\n$/);

    expect(await runCli(['robot', 'delete', String(created.id)], { env: env() })).toMatchObject({ code: 0 });
    expect(await runCli(['project', 'delete', 'team'], { env: env() })).toMatchObject({ code: 0, stdout: 'project team deleted\n' });
  });

  it('add a member with a role, which the project then lists', async () => {
    const admin: [string, string] = ['admin', ADMIN_PASSWORD];
    expect((await fixture.request('POST', '/api/v2.0/users', { user: admin, body: { username: 'carol', password: 'Carol-Passw0rd', email: 'carol@example.com', realname: 'Carol' } })).status).toBe(201);
    expect(await runCli(['project', 'create', 'crew'], { env: env() })).toMatchObject({ code: 0 });
    const added = await runCli(['project', 'member', 'add', 'crew', 'carol', '--role', 'maintainer'], { env: env() });
    expect(added).toMatchObject({ code: 0, stdout: 'carol is now maintainer of crew\n' });
    const members = await fixture.request('GET', '/api/v2.0/projects/crew/members', { user: admin });
    expect(members.json).toEqual(expect.arrayContaining([expect.objectContaining({ entity_name: 'carol', role_name: 'maintainer', role_id: 4 })]));
  });

  it('exit 1 with the registry’s message when it refuses, and 2 on bad usage', async () => {
    const duplicate = await runCli(['project', 'member', 'add', 'ghost', 'admin', '--role', 'developer'], { env: env() });
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toBe('POST /projects/ghost/members: 404 NOT_FOUND: project "ghost" does not exist\n');
    const usage = await runCli(['robot', 'create', 'team', 'ci', '--action', 'fly'], { env: env() });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--action: expected pull, push or delete, got "fly"');
  });
});
