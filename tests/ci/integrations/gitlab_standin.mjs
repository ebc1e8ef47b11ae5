// GitLab's OAuth 2 authorization server and the two REST answers the integration reads, on
// loopback, for the GitLab integration tests.
//
// Usage: node gitlab_standin.mjs PORT CLIENT_JSON PROVIDER_MODULE EXAMPLES_JSON
//   PROVIDER_MODULE  file URL of the oidc-provider package (tests/oidc's install)
//   EXAMPLES_JSON    file with GitLab's documented example answers (gitlab_examples.json)
//
// GitLab cannot run here. OAuth is the real, certified oidc-provider with GitLab's endpoint
// paths (/oauth/authorize, /oauth/token), PKCE and client_secret_post, so the code exchange is
// a real one; GET /api/v4/user and /api/v4/projects answer GitLab's documented examples, and
// only to an access token the provider issued. Prints "READY <url>" once it listens.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [port, clientJson, providerModule, examplesPath] = process.argv.slice(2);
const { default: Provider } = await import(providerModule);
const examples = JSON.parse(readFileSync(examplesPath, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

const provider = new Provider(issuer, {
  clients: [{
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    ...JSON.parse(clientJson),
  }],
  routes: { authorization: '/oauth/authorize', token: '/oauth/token' },
  scopes: ['openid', 'offline_access', 'read_api', 'read_repository'],
  pkce: { required: () => true },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  jwks: { keys: [signingKey.export({ format: 'jwk' })] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
});

provider.use(async (ctx, next) => {
  const answer = examples[ctx.path];
  if (!answer) {
    return next();
  }
  const bearer = (ctx.get('authorization') || '').replace(/^Bearer /, '');
  const token = bearer && await provider.AccessToken.find(bearer);
  if (!token) {
    ctx.status = 401;
    ctx.body = { message: '401 Unauthorized' };
    return undefined;
  }
  ctx.body = answer;
  return undefined;
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});
