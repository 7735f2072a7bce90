import { PortcullisError } from '../../errors.js';

/** A repository name component of the distribution spec. */
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

export interface RepositoryName {
  /** `project/repo[/…]` */
  full: string;
  /** The first component: the Harbor project. */
  project: string;
  /** Everything after the project (`repo[/…]`), Harbor's `repository_name`. */
  repository: string;
}

/**
 * Checks a repository name: `project/repo[/…]`, components as in the distribution spec, at most 255
 * characters. `raw` may still be percent-encoded; it is decoded once and checked, so that `..`, `%2e%2e`
 * and `%2f` cannot escape. Throws REGISTRY_NAME_INVALID saying what was expected.
 */
export function parseRepositoryName(raw: string): RepositoryName {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new PortcullisError('REGISTRY_NAME_INVALID', `repository name "${raw}": invalid percent-encoding`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw new PortcullisError('REGISTRY_NAME_INVALID', `repository name: expected at most ${MAX_NAME_LENGTH} characters, got ${name.length}`);
  }
  const components = name.split('/');
  if (components.length < 2) {
    throw new PortcullisError('REGISTRY_NAME_INVALID', `repository name "${name}": expected project/repository[/…]`);
  }
  for (const component of components) {
    if (!COMPONENT.test(component)) {
      throw new PortcullisError(
        'REGISTRY_NAME_INVALID',
        `repository name "${name}": component "${component}" must be lower-case letters and digits separated by ".", "_", "__" or "-"`,
      );
    }
  }
  return { full: name, project: components[0] as string, repository: components.slice(1).join('/') };
}

export function isTag(reference: string): boolean {
  return TAG.test(reference);
}

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw new PortcullisError('REGISTRY_TAG_INVALID', `tag "${tag}": expected [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`);
  return tag;
}
