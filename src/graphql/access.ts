import { canSeeProject, type Caller, type Right } from '../callers/caller.js';
import { GatewayError } from '../errors/index.js';

/**
 * For mutations and subscriptions: a project outside the caller's list is NOT_FOUND, exactly as a
 * project that does not exist; a visible project without the right is FORBIDDEN. Every project named
 * (a restore's source and target) is checked for visibility before the right is, so a caller without
 * the right learns nothing about a project it cannot see.
 */
export function requireAccess(caller: Caller, projectIds: string | readonly string[], right: Right): void {
  const ids = typeof projectIds === 'string' ? [projectIds] : projectIds;
  for (const projectId of ids) {
    if (!canSeeProject(caller, projectId)) {
      throw new GatewayError('NOT_FOUND', `No project with id ${projectId} exists.`);
    }
  }
  if (!caller.rights.has(right)) {
    throw new GatewayError('FORBIDDEN', `This caller may not ${right} in project ${ids[0]}.`, {
      extensions: { right },
    });
  }
}
