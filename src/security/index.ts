/**
 * meshlet security: SPIFFE identities, the CA and Istio's CSR API,
 * certificate sources (files, development CA, control plane), TLS option
 * builders, PERMISSIVE sniffing, and AuthorizationPolicy evaluation.
 */
export { DEFAULT_TRUST_DOMAIN, type SpiffeId, SpiffeIdError, checkTrustDomain, formatSpiffeId, parseSpiffeId, tryParseSpiffeId } from './identity.js';
export { CertificateError, certificateInfo, type CertificateInfo, createCsr, generateKeyPair, importKeyPairPem, keyMatchesCertificate, privateKeyToPem, splitPemChain, dnsSans, uriSans } from './certificates.js';
export { type IdentityMaterial, type IdentityPems, createIdentityMaterial } from './material.js';
export {
  CertificateAuthority, type CertificateAuthorityOptions, type CreateRootOptions, CsrRejectedError, DEFAULT_ROOT_CERT_TTL_MS,
  DEFAULT_WORKLOAD_CERT_TTL_MS, MAX_WORKLOAD_CERT_TTL_MS, type MintTokenOptions, type RedeemedToken, type SignOptions,
} from './ca.js';
export { CA_DIR_FILES, openCaDir } from './ca-dir.js';
export { CERT_DIR_FILES, type CertDirOptions, certDirIdentity, loadCertDir } from './cert-dir.js';
export {
  BOOTSTRAP_TOKEN_AUDIENCE, type BootstrapTokenClaims, TOKEN_LEEWAY_SECONDS, TokenError, TokenReplayCache, TokenReplayCacheFullError, signJwtEs256, verifyJwtEs256,
} from './token.js';
export {
  type Disposable, type RotateListener, type RotatingIdentityOptions, type RotatorClock, type WorkloadIdentity,
  createRotatingIdentity, identityFromCa, rotationDelay, staticIdentity,
} from './workload-identity.js';
export {
  type CaAuthenticator, type CaCaller, CaRequestError, type CertificateRequestAuth, type ControlPlaneIdentityOptions, type RequestCertificateOptions,
  controlPlaneIdentity, createCaService, defaultCaAuthenticator, requestCertificate,
} from './ca-service.js';
export {
  type ClientTlsCheckOptions, type IdentitySource, MESH_CLIENT_CIPHERS, MESH_MIN_TLS_VERSION, MESH_SERVER_CIPHERS, type ServerTlsMode, type TlsSide,
  ISTIOD_DNS_NAME, clientTlsOptions, enforcePeerTrustDomain, istiodServerName, istiodSpiffeId, meshTlsParameters, peerIdentity, pinnedServerIdentityCheck, secureContextOptions,
  serverTlsOptions, spiffeServerIdentityCheck,
} from './tls.js';
export {
  type ControlPlaneCredentialsOptions, IdentityCertificateProvider, controlPlaneChannelCredentials, grpcChannelCredentials, grpcPeerIdentity, grpcServerCredentials,
} from './grpc-credentials.js';
export { type PermissiveServer, type PermissiveServerOptions, TLS_HANDSHAKE_BYTE, createPermissiveServer } from './permissive.js';
export {
  type AuthorizationDecision, AuthorizationEvaluator, type AuthorizationOptions, AuthorizationPolicies, type AuthorizationPolicyResource,
  type AuthorizationPolicySpec, type RequestAttributes, compileAuthorizationPolicies,
} from './authorization.js';
export { type MtlsMode, type PeerAuthenticationPolicy, type PeerAuthenticationResource, peerAuthenticationFor } from './peer-authentication.js';
export { PLAINTEXT, type SanMatcher, type UpstreamTls, decodeTransportSocket, serverIdentityCheck, upstreamTlsFor } from './upstream-tls.js';
export { type UpstreamConnectorOptions, createUpstreamConnector, secureContextFor } from './upstream-connector.js';
export { upstreamChannelCredentials } from './grpc-upstream.js';
export { MeshServer, type MeshServerOptions, createMeshServer } from './mesh-server.js';
export { DEFAULT_SERVER_TIMEOUTS, type ServerTimeouts } from './server-timeouts.js';
export {
  GRPC_PERMISSION_DENIED, type GrpcCallAttributes, MeshAuthorization, RBAC_ACCESS_DENIED, RBAC_FILTER, RBAC_FLAG, rbacDeniedReply,
} from './inbound-authz.js';
export { type InboundSecuritySource, type RemoteCaOptions, type MeshIdentityOptions, MeshSecurity, type SecurityWorkload } from './mesh-security.js';
