import {
  Metadata,
  status,
  type MethodDefinition,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type handleUnaryCall,
} from '@grpc/grpc-js';

/**
 * A request whose bytes do not decode (not protobuf, a truncated field, an int64 beyond 2^53 that
 * the generated code will not turn into a JS number) is answered by grpc-js itself with INTERNAL,
 * which a caller — the saga engine — takes as an unknown outcome and retries. Those bytes will
 * never decode: the mistake is the caller's, and the answer is a definite INVALID_ARGUMENT
 * (`x-error-code: invalid_argument`, as our own refusals), given before any handler runs, so
 * nothing is stored.
 *
 * `refuseUndecodable` returns the binding with every unary method's request decoder made to
 * hand an undecodable request to the handler as a marker, and the handler made to refuse it.
 */
const UNDECODABLE = Symbol('undecodable');

interface Undecodable {
  [UNDECODABLE]: string;
}

function isUndecodable(request: unknown): request is Undecodable {
  return typeof request === 'object' && request !== null && UNDECODABLE in request;
}

export function refuseUndecodable<
  B extends { definition: ServiceDefinition; implementation: UntypedServiceImplementation },
>(binding: B): B {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  const implementation: UntypedServiceImplementation = { ...binding.implementation };
  for (const [name, method] of Object.entries(binding.definition) as Array<
    [string, MethodDefinition<unknown, unknown>]
  >) {
    const handler = binding.implementation[name] as handleUnaryCall<unknown, unknown> | undefined;
    if (method.requestStream || method.responseStream || handler === undefined) {
      definition[name] = method;
      continue;
    }
    definition[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return { [UNDECODABLE]: err instanceof Error ? err.message : String(err) } satisfies Undecodable;
        }
      },
    };
    implementation[name] = ((call, callback) => {
      if (!isUndecodable(call.request)) return handler(call, callback);
      const details = `request is not a valid ${method.path} message: ${call.request[UNDECODABLE]}`;
      const metadata = new Metadata();
      metadata.set('x-error-code', 'invalid_argument');
      callback({ code: status.INVALID_ARGUMENT, details, metadata, name: 'Error', message: details });
    }) satisfies handleUnaryCall<unknown, unknown>;
  }
  return { ...binding, definition: definition, implementation };
}
