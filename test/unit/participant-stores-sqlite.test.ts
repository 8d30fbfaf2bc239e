// The participants' store ports on SQLite (a file in a temporary folder; "two replicas" are two
// connections to it): the conformance suite every store implementation passes.
import { participantStoreConformance, sqliteBackend } from '../helpers/participant-store-conformance.js';

participantStoreConformance(sqliteBackend());
