// A real, certified OpenID Connect provider (oidc-provider) on loopback, for the test suite.
//
// Usage: node provider.mjs PORT CLIENT_JSON
//   PORT         the port to listen on, on 127.0.0.1 (chosen free by the Python harness)
//   CLIENT_JSON  {"client_id": ..., "client_secret": ..., "redirect_uris": [...]}; any other
//                client metadata given there overrides the defaults below.
//
// Prints "READY <issuer>" on stdout once it listens. Sign-in uses the provider's built-in
// development login and consent pages: any login name and any password are accepted.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const [port, clientJson] = process.argv.slice(2);
if (!port || !clientJson) {
  console.error('usage: node provider.mjs PORT CLIENT_JSON');
  process.exit(2);
}

const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;

// Login "noemail" has no email claim, so a relying party's handling of that case can be tested.
function claimsFor(login) {
  if (login === 'noemail') {
    return { sub: login, name: 'No Email' };
  }
  return { sub: login, email: `${login}@example.test`, email_verified: true, name: login };
}

// A fresh signing key per run: nothing outlives the test session, and the provider does not
// fall back to its development keys (which it warns about).
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

const configuration = {
  clients: [{
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...JSON.parse(clientJson),
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put the scope's claims in the ID token too (as most providers do), not only at userinfo.
  conformIdTokenClaims: false,
  // By default only public clients must use PKCE; this provider demands it from every client.
  pkce: { required: () => true },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => claimsFor(id) }),
  jwks: { keys: [signingKey.export({ format: 'jwk' })] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
};

const provider = new Provider(issuer, configuration);
provider.listen(Number(port), host, () => {
  console.log(`READY ${issuer}`);
});
