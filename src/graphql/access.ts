import { canSeeProject, type Caller, type Right } from '../callers/caller.js';
import { GatewayError } from '../errors/index.js';

/**
 * For mutations and subscriptions: a project outside the caller's list is NOT_FOUND, exactly as a
 * project that does not exist; a visible project without the right is FORBIDDEN.
 */
export function requireAccess(caller: Caller, projectId: string, right: Right): void {
  if (!canSeeProject(caller, projectId)) {
    throw new GatewayError('NOT_FOUND', `No project with id ${projectId} exists.`);
  }
  if (!caller.rights.has(right)) {
    throw new GatewayError('FORBIDDEN', `This caller may not ${right} in project ${projectId}.`, {
      extensions: { right },
    });
  }
}
