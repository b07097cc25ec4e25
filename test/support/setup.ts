import { afterAll } from 'vitest';
import { disposeFileScoped } from './disposer.js';

// Whatever a test file opened outside its tests (beforeAll, module scope) and registered with
// `track` is closed here, after the file's own afterAll hooks.
afterAll(disposeFileScoped);
