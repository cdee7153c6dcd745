// A relying party built on panva's openid-client (certified RP library), driven step by step by
// tests/interop/test_openid_client.py. Reads one JSON command on stdin, prints one JSON answer.
//
//   {"step":"start", issuer, client_id, client_secret, redirect_uri[, acr_values]}
//      -> {authorization_url, state, nonce, verifier}           (discovery, PKCE S256)
//   {"step":"finish", issuer, client_id, client_secret, redirect_uri, post_logout_redirect_uri,
//    callback_url, state, nonce, verifier}
//      -> {claims, userinfo, refreshed_claims, refresh_rotated, logout_url, logout_state}
//          (code exchange with ID token validation, userinfo, refresh, RP-initiated logout URL)
//
// Plain http is allowed only because the tests run Portail on http://localhost:<port>.
import * as client from 'openid-client';

const input = JSON.parse(await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(data));
}));

const config = await client.discovery(
  new URL(input.issuer),
  input.client_id,
  input.client_secret,
  client.ClientSecretBasic(input.client_secret),
  { execute: [client.allowInsecureRequests] },
);

let answer;
if (input.step === 'start') {
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = {
    redirect_uri: input.redirect_uri,
    scope: 'openid profile email',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  if (input.acr_values) {
    parameters.acr_values = input.acr_values;
  }
  const url = client.buildAuthorizationUrl(config, parameters);
  answer = { authorization_url: url.href, state, nonce, verifier };
} else if (input.step === 'finish') {
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.verifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const logoutState = client.randomState();
  const logoutUrl = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token || tokens.id_token,
    post_logout_redirect_uri: input.post_logout_redirect_uri,
    state: logoutState,
  });
  answer = {
    claims,
    userinfo,
    token_type: tokens.token_type,
    refreshed_claims: refreshed.claims() || null,
    refresh_rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    logout_url: logoutUrl.href,
    logout_state: logoutState,
  };
} else {
  throw new Error(`unknown step ${input.step}`);
}
process.stdout.write(JSON.stringify(answer));
