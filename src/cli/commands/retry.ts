/** `sagas retry <id>`: see act.ts. */
import { actionCommand } from './act.js';

export const retryCommand = actionCommand('retry');
