/**
 * Admission, as Kubernetes does it for Istio's CRDs: every document is
 * validated on its own and gets a status — `applied`, `partial` (valid, with
 * fields meshlet does not apply: warnings name them) or `rejected` (the
 * MeshConfigError that refused it). What `mesh.configStatus()`, the control
 * plane's /debug/config_status and `meshlet analyze` report.
 */
import { type ConfigSourceRef, MeshConfigError } from '../errors.js';
import { compileAuthorizationPolicies, type AuthorizationPolicyResource } from '../security/authorization.js';
import { kinds } from './istio-schemas.js';
import { type RequestAuthenticationInput, translateRequestAuthentication } from '../security/jwt-policy.js';
import type { IstioResource } from './istio-types.js';
import { documentSource } from './load.js';
import { isIstioDocument, resourceSource, validateDocumentsSliced } from './resources.js';
import { runNow, type SliceBudget, type Sliced } from '../core/slices.js';
import { isPlainObject } from './schema.js';
import { withRouteConditions, type RouteCondition } from './gateway-api/status.js';
import { supportWarnings, type ConfigWarning, type LoadContext, type WarningCode } from './support-check.js';

/** One Istio resource's status (DESIGN.md §3 `mesh.configStatus()`, contract). */
export interface ResourceStatus {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** The file and document index it was read from, when it came from YAML. */
  readonly source?: ConfigSourceRef;
  readonly status: 'applied' | 'partial' | 'rejected';
  readonly warnings: readonly ConfigWarning[];
  /** Gateway API routes only: the conditions a Gateway API controller would write (Accepted, ResolvedRefs per parent). */
  readonly conditions?: readonly RouteCondition[];
}

/** What admission made of a set of documents. */
export interface Admission {
  /** The admitted resources (applied and partial), in document order. */
  readonly resources: IstioResource[];
  /** One status per Istio document, in document order. */
  readonly statuses: ResourceStatus[];
  /** The errors of the rejected documents, in document order. */
  readonly errors: MeshConfigError[];
}

/**
 * Validates each document alone and reports it. A rejected document never
 * touches its neighbours; whether the caller then applies the rest (the
 * control plane) or refuses the whole set (`mesh.apply`) is the caller's.
 */
export function admitResources(docs: readonly object[], context: LoadContext): Admission {
  return runNow(admitResourcesSliced(docs, context));
}

/** {@link admitResources} in slices, so a large apply gives the event loop turns (see core/slices.ts). */
export function* admitResourcesSliced(docs: readonly object[], context: LoadContext, budget?: SliceBudget): Sliced<Admission> {
  const resources: IstioResource[] = [];
  const statuses: ResourceStatus[] = [];
  const errors: MeshConfigError[] = [];
  for (const result of yield* validateDocumentsSliced(docs, budget)) {
    if (result.error) {
      errors.push(result.error);
      statuses.push(rejectedStatus(result.doc, result.error, result.duplicate ? 'MESHLET_DUPLICATE' : unsupportedKind(result.doc) ? 'MESHLET_UNSUPPORTED_KIND' : 'MESHLET_INVALID'));
      continue;
    }
    const resource = result.resource!;
    const error = semanticError(resource);
    if (error) {
      errors.push(error);
      statuses.push(rejectedStatus(result.doc, error, 'MESHLET_REFUSED'));
      continue;
    }
    resources.push(resource);
    statuses.push(statusOf(resource, supportWarnings(resource, context)));
  }
  // Gateway API routes: Accepted / ResolvedRefs depend on the whole set (parents and backends).
  return { resources, statuses: withRouteConditions(resources, statuses), errors };
}

/** The status of an admitted resource with its warnings. */
export function statusOf(resource: IstioResource, warnings: readonly ConfigWarning[]): ResourceStatus {
  const source = resourceSource(resource);
  return {
    kind: resource.kind,
    namespace: resource.metadata.namespace,
    name: resource.metadata.name,
    ...(source && { source }),
    status: warnings.length > 0 ? 'partial' : 'applied',
    warnings,
  };
}

/** A resource refused with `error`, named as well as the document allows. */
export function rejectedStatus(doc: unknown, error: MeshConfigError, code: WarningCode): ResourceStatus {
  const meta = isPlainObject(doc) && isPlainObject(doc.metadata) ? doc.metadata : {};
  // A document without a usable name is named as the error names it (`ns/name`), else by its place (`document 3`).
  const named = typeof meta.name === 'string' && meta.name !== '';
  const slash = error.resource.indexOf('/');
  const split = !named && slash > 0 && error.kind !== 'Config' && error.kind !== 'List';
  const name = named ? (meta.name as string) : split ? error.resource.slice(slash + 1) : error.source ? `document ${error.source.document}` : error.resource;
  const namespace = named ? (typeof meta.namespace === 'string' ? meta.namespace : 'default') : split ? error.resource.slice(0, slash) : '';
  const source = error.source ?? (isPlainObject(doc) ? documentSource(doc) : undefined);
  return {
    kind: isPlainObject(doc) && typeof doc.kind === 'string' && doc.kind !== '' ? doc.kind : error.kind,
    namespace,
    name,
    ...(source && { source }),
    status: 'rejected',
    warnings: [{ path: error.path, code, message: error.reason }],
  };
}

function unsupportedKind(doc: object): boolean {
  return isIstioDocument(doc) && typeof (doc as { kind?: unknown }).kind === 'string' && kinds[(doc as { kind: string }).kind] === undefined;
}

/** Checks validation cannot do field by field and a translator would refuse for every workload. */
function semanticError(resource: IstioResource): MeshConfigError | undefined {
  if (resource.kind !== 'AuthorizationPolicy' && resource.kind !== 'RequestAuthentication') return undefined;
  try {
    if (resource.kind === 'RequestAuthentication') translateRequestAuthentication(resource as unknown as RequestAuthenticationInput);
    else compileAuthorizationPolicies([resource as unknown as AuthorizationPolicyResource]);
    return undefined;
  } catch (err) {
    if (!(err instanceof MeshConfigError)) throw err;
    const source = resourceSource(resource);
    return err.source || !source ? err : new MeshConfigError(err.kind, err.resource, err.path, err.reason, source);
  }
}
