/** `sagas compensate <id>`: see act.ts. */
import { actionCommand } from './act.js';

export const compensateCommand = actionCommand('compensate');
