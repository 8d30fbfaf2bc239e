/** `sagas resolve <id>`: see act.ts. */
import { actionCommand } from './act.js';

export const resolveCommand = actionCommand('resolve');
