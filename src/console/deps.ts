import type { ManagementDeps } from '../http/routes/management-deps.js';
import type { SessionStore } from './session.js';

/** What the console's pages use: the management API's dependencies, the sessions, the admin key. */
export interface ConsoleDeps {
  management: ManagementDeps;
  sessions: SessionStore;
  adminApiKey: string;
}
