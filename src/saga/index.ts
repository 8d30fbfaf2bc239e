/**
 * The saga engine's only door: everything outside `src/saga` imports from here (test/unit/
 * architecture.test.ts holds them to it). What is not exported here — the pure transitions, the
 * stores' internals, the interceptor chain's plumbing — may change without notice. A composition
 * root (the gateway's main, the CLI's inspect) may also import the store factory,
 * `src/saga/stores/open.ts`, which loads a database driver.
 */

// Saga records, their log (the storage port) and its errors.
export {
  SAGA_STATUSES,
  TERMINAL_STATUSES,
  isTerminal,
  SagaLogError,
  LeaseLostError,
  InvalidCursorError,
  SagaLogUnavailableError,
  type SagaStatus,
  type SagaEventType,
  type SagaRecord,
  type SagaEvent,
  type NewEvent,
  type EventPage,
  type SagaPatch,
  type ListQuery,
  type ListPage,
  type Cursor,
  type CreateResult,
  type LiveStats,
  type TakeOverExpectation,
  type SagaLog,
  type SagaReads,
} from './model.js';

// Defining a saga: its steps, their outcomes, the retry policies.
export {
  DEFAULT_POLICIES,
  ENGINE_FAILURE_CODES,
  SUBJECT_MAX,
  isDefiniteError,
  type Json,
  type StepKind,
  type RetryPolicy,
  type SagaFailure,
  type StepContext,
  type StepResults,
  type StepOutcome,
  type FenceOutcome,
  type DefiniteError,
  type StepDefinition,
  type SagaDefinition,
  type EnginePolicies,
} from './definition.js';

// Running sagas.
export {
  SagaEngine,
  EngineStoppingError,
  EngineOverloadedError,
  type EngineOptions,
  type StartRequest,
  type SagaHandle,
  type TypedSaga,
  type Timeline,
} from './engine.js';

// The idempotency key each attempt's call carries (the same on every attempt of a step and phase).
export { idempotencyKey, type Phase } from './transitions.js';

// What a saga in flight (or parked) waits for and until when, in business words.
export {
  explainWaiting,
  progressOf,
  failureKindOf,
  type Waiting,
  type WaitingState,
  type WaitingError,
  type FailureKind,
} from './waiting.js';

// What an operator may do to a saga, and why a request is refused.
export {
  OPERATOR_ACTIONS,
  MAX_NOTE_LENGTH,
  OperatorActionError,
  allowedActions,
  type OperatorActionKind,
  type OperatorActionRequest,
  type OperatorActionResult,
  type OperatorActionErrorCode,
  type OperatorActionData,
} from './operator.js';

// What an operator's action would do, in business words and sums, before it is taken.
export {
  previewAction,
  formatCents,
  stockWords,
  type ActionPreview,
  type PreviewEffect,
  type StepEffect,
  type StockMove,
  type HalfDone,
} from './preview.js';

// How long finished sagas are kept, per outcome (SagaLog.prune deletes what a policy lets go).
export {
  PRUNABLE_STATUSES,
  DEFAULT_RETENTION_AGES,
  DEFAULT_RETENTION_TEXT,
  RETENTION_EXPECTED,
  parseRetention,
  retentionFloorError,
  describeRetention,
  prunesAnything,
  retentionHorizon,
  type PrunableStatus,
  type RetentionAges,
  type RetentionPolicy,
} from './retention.js';
export type { PruneResult } from './model.js';

// Bulk actions: one action on the sagas a filter selects, capped, paced, resumable (bulk.ts).
export {
  BULK_MAX_CAP,
  BULK_DEFAULT_RATE,
  BULK_MAX_RATE,
  BULK_MIN_RATE,
  BULK_JOB_STATES,
  BULK_RESULTS,
  BulkRequestError,
  validateBulkRequest,
  nextState as nextBulkState,
  statesFrom as bulkStatesFrom,
  delayBefore,
  selectSagas,
  dryRunBulk,
  type BulkFilter,
  type BulkPlan,
  type BulkJob,
  type BulkJobState,
  type BulkJobStore,
  type BulkItem,
  type BulkResult,
  type BulkOutcome,
  type BulkCommand,
  type BulkDryRun,
} from './bulk.js';

// Around every saga, attempt and call: the interceptors the engine ships, and the contract of one.
export {
  tracing,
  crashPoints,
  InterceptorContractError,
  type SagaInterceptor,
  type SagaOp,
  type StepOp,
  type Next,
  type RunCause,
  type AttemptContext,
  type Checkpoint,
  type Tags,
} from './interceptors.js';
export { sagaMetrics } from './metrics.js';

// Versions of a definition: which a process drives, and operators' moves between them.
export {
  inFlightOf,
  MigrationError,
  parseStepMap,
  planMigration,
  refName,
  strandedVersions,
  versionViews,
  VersionsStrandedError,
  type DefinitionRef,
  type MigrationErrorCode,
  type MigrationItem,
  type MigrationPlan,
  type MigrationRefusalCode,
  type MigrationReport,
  type MigrationRequest,
  type VersionCount,
  type VersionState,
  type VersionView,
} from './versions.js';
