// How the engine service's parts answer contract requests: each part exports handlers for its own
// requests, and service.ts checks at compile time that together they answer every engine request.
import type { EngineRequestName, RequestArgs, RequestResults } from '../contract/types.ts';

export type RequestHandler<N extends EngineRequestName> = (args: RequestArgs<N>) => Promise<RequestResults[N]> | RequestResults[N];

/** Handlers for the requests `N` (a part's share of the contract). */
export type RequestHandlers<N extends EngineRequestName> = { [K in N]: RequestHandler<K> };
