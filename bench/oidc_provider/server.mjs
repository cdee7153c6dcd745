// Reference OpenID Connect provider for benchmarking Portail against.
//
// panva/node-oidc-provider (certified OP), in-memory adapter, one confidential
// client, no browser needed: login is performed programmatically by the
// bench-only interaction route below, and consent is auto-granted for the
// bench client by `loadExistingGrant` (first-party client recipe).
//
// NOT a production configuration: anybody who can reach the interaction URL
// is logged in as the bench user. It listens on 127.0.0.1 only.
//
// Env:
//   PORT            listen port (default 3100); issuer is http://127.0.0.1:PORT
//   ID_TOKEN_ALG    RS256 (default) | PS256 | ES256 | EdDSA — signing key generated at start
//   COOKIE_KEY      secret used to sign cookies (default: fixed bench value)
//   QUIET           if set, server_error events are not logged
//   STORE_MAX       in-memory store size (LRU generation size, default 500000)

import * as crypto from 'node:crypto';

import Provider from 'oidc-provider';
// Deep imports (no "exports" map in oidc-provider; version is pinned): the
// stock in-memory adapter, but over a much larger store. The default store is
// an LRU of 1000 entries, which at several hundred token issuances per second
// evicts idle sessions/grants within seconds and makes later scenarios fail
// spuriously (e.g. /auth falling back to a login interaction).
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const PORT = Number.parseInt(process.env.PORT || '3100', 10);
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;

const CLIENT_ID = 'bench';
const CLIENT_SECRET = 'bench-secret';
const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const BENCH_SCOPE = 'openid profile email';
const ACCOUNT_ID = 'bench-user';

const ID_TOKEN_ALG = process.env.ID_TOKEN_ALG || 'RS256';
const STORE_MAX = Number.parseInt(process.env.STORE_MAX || '500000', 10);

const store = new LRU({ maxSize: STORE_MAX });
class BenchMemoryAdapter extends MemoryAdapter {
  constructor(model) {
    super(model, store);
  }
}

// --- signing key (ephemeral, generated at start) -----------------------------

function generateSigningJwk(alg) {
  let pair;
  switch (alg) {
    case 'RS256':
    case 'PS256':
      pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      break;
    case 'ES256':
      pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      break;
    case 'EdDSA':
      pair = crypto.generateKeyPairSync('ed25519');
      break;
    default:
      throw new Error(`unsupported ID_TOKEN_ALG ${alg}`);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  return { ...jwk, use: 'sig', alg, kid: `bench-${alg.toLowerCase()}` };
}

// --- the single account -------------------------------------------------------

const ACCOUNT_CLAIMS = {
  sub: ACCOUNT_ID,
  name: 'Bench User',
  given_name: 'Bench',
  family_name: 'User',
  preferred_username: 'bench',
  email: 'bench@example.test',
  email_verified: true,
};

async function findAccount(_ctx, sub) {
  if (sub !== ACCOUNT_ID) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { ...ACCOUNT_CLAIMS };
    },
  };
}

// --- auto consent (first-party client recipe) --------------------------------
// Returns the session's existing grant for the client, or, for the bench
// client, creates one covering the requested OIDC scopes/claims, so the
// consent prompt is never needed and an authenticated GET /auth answers
// directly with a redirect carrying the code.

async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const { provider, client, session } = oidc;
  const grantId = oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);

  let grant;
  if (grantId) {
    grant = await provider.Grant.find(grantId);
  }
  if (client.clientId !== CLIENT_ID) {
    return grant;
  }
  if (!grant) {
    grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  }

  let changed = !grant.jti;
  const granted = new Set(grant.getOIDCScope().split(' '));
  const missingScopes = [...oidc.requestParamOIDCScopes].filter((s) => !granted.has(s));
  if (missingScopes.length) {
    grant.addOIDCScope(missingScopes.join(' '));
    changed = true;
  }
  const grantedClaims = new Set(grant.getOIDCClaims());
  const missingClaims = [...oidc.requestParamClaims].filter((c) => !grantedClaims.has(c));
  if (missingClaims.length) {
    grant.addOIDCClaims(missingClaims);
    changed = true;
  }
  if (changed) {
    await grant.save();
  }
  return grant;
}

// --- provider -------------------------------------------------------------------

const configuration = {
  adapter: BenchMemoryAdapter, // in-memory, see STORE_MAX
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: ID_TOKEN_ALG,
    },
  ],
  jwks: { keys: [generateSigningJwk(ID_TOKEN_ALG)] },
  cookies: {
    // Signed cookies: every cookie comes with a `<name>.sig` companion.
    keys: [process.env.COOKIE_KEY || 'portail-bench-cookie-signing-key-0123456789'],
  },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  features: {
    devInteractions: { enabled: false }, // replaced by the bench interaction route
    userinfo: { enabled: true },
    clientCredentials: { enabled: true }, // the client_credentials scenario
    introspection: { enabled: true }, // the introspection scenario (RFC 7662)
    rpInitiatedLogout: { enabled: false },
  },
  pkce: {
    // Always require PKCE (only S256 exists in oidc-provider v9).
    required: () => true,
  },
  interactions: {
    url: async (_ctx, interaction) => `/bench/interaction/${interaction.uid}`,
  },
  findAccount,
  loadExistingGrant,
  // Issue a refresh token whenever the client may use the refresh_token grant
  // (default would require `offline_access`, which in turn needs prompt=consent).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Tokens are not bound to the browser session (no session lookup on refresh).
  expiresWithSession: async () => false,
  // Rotate on every use (like Portail): the old refresh token is consumed, and
  // re-using a consumed one revokes the whole grant. Drivers must chain.
  rotateRefreshToken: () => true,
  // No browser ever calls us cross-origin.
  clientBasedCORS: () => false,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(ISSUER, configuration);

if (!process.env.QUIET) {
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
}

// --- bench helper routes (mounted before the OIDC routes) --------------------

function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// Minimal cookie jar keyed by name (single host, paths ignored).
function absorbCookies(jar, res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name);
    else jar.set(name, value);
  }
}

const cookieHeader = (jar) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

async function step(jar, url, init = {}) {
  const res = await fetch(url, {
    redirect: 'manual',
    ...init,
    headers: { ...(init.headers || {}), ...(jar.size ? { cookie: cookieHeader(jar) } : {}) },
  });
  absorbCookies(jar, res);
  return res;
}

// Performs, over real HTTP against ourselves, a complete authorization-code
// flow with login: /auth -> bench interaction (programmatic login) -> /auth/:uid
// resume -> redirect with code -> /token. Returns tokens + session cookies.
async function bootstrap() {
  const jar = new Map();
  const { verifier, challenge } = pkcePair();
  const state = crypto.randomBytes(12).toString('base64url');
  const nonce = crypto.randomBytes(12).toString('base64url');
  const auth = new URL('/auth', ISSUER);
  auth.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: BENCH_SCOPE,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  let res = await step(jar, auth);
  let location = res.headers.get('location');
  for (let hops = 0; location && !location.startsWith(REDIRECT_URI); hops += 1) {
    if (hops > 6) throw new Error('too many redirects during bootstrap');
    res = await step(jar, new URL(location, ISSUER));
    location = res.headers.get('location');
  }
  if (!location) {
    throw new Error(`bootstrap: no redirect (status ${res.status}: ${await res.text()})`);
  }
  const cb = new URL(location);
  if (cb.searchParams.get('error')) {
    throw new Error(`bootstrap: ${cb.searchParams.get('error')} ${cb.searchParams.get('error_description')}`);
  }
  if (cb.searchParams.get('state') !== state) throw new Error('bootstrap: state mismatch');
  const code = cb.searchParams.get('code');

  const tokenRes = await fetch(new URL('/token', ISSUER), {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }),
  });
  const tokens = await tokenRes.json();
  if (!tokenRes.ok) throw new Error(`bootstrap: token endpoint ${tokenRes.status} ${JSON.stringify(tokens)}`);

  const sessionName = provider.cookieName('session');
  const cookies = {};
  for (const name of [sessionName, `${sessionName}.sig`]) {
    if (jar.has(name)) cookies[name] = jar.get(name);
  }
  return {
    issuer: ISSUER,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uri: REDIRECT_URI,
    scope: BENCH_SCOPE,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    id_token: tokens.id_token,
    expires_in: tokens.expires_in,
    session_cookie: { name: sessionName, value: jar.get(sessionName) },
    cookies,
    cookie_header: Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join('; '),
  };
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/bench/bootstrap') {
    try {
      ctx.body = await bootstrap();
      ctx.set('cache-control', 'no-store');
    } catch (err) {
      ctx.status = 500;
      ctx.body = { error: 'bootstrap_failed', message: String(err?.message || err) };
    }
    return;
  }

  const m = /^\/bench\/interaction\/([^/]+)$/.exec(ctx.path);
  if (ctx.method === 'GET' && m) {
    // Bench-only: finish any pending interaction programmatically.
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== m[1]) ctx.throw(400, 'interaction mismatch');
    const { prompt, params, session } = details;
    let result;
    if (prompt.name === 'login') {
      result = { login: { accountId: ACCOUNT_ID, amr: ['pwd'] } };
    } else if (prompt.name === 'consent') {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      result = { consent: { grantId: await grant.save() } };
    } else {
      ctx.throw(400, `unsupported prompt ${prompt.name}`);
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: true,
    });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return;
  }

  await next();
});

const server = provider.listen(PORT, HOST, () => {
  console.log(`oidc-provider listening on ${ISSUER} (alg ${ID_TOKEN_ALG})`);
});
// Keep-alive connections from the load generator: don't let Node's default
// 5 s keepAliveTimeout race with client-side pooling.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
