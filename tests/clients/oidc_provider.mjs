// A real OpenID provider for Wisp's OIDC tests: the certified `oidc-provider` package on a loopback port.
//
//   node oidc_provider.mjs '<json config>'
//
// config: {port, clients: [{client_id, client_secret, redirect_uris, grant_types?}],
//          accounts: {<login>: {email, email_verified, roles}}, tamper_clients?: [client_id]}
// Prints "READY <issuer>" once it listens. Logins use the package's development interactions
// (a login form that takes any password, then a consent form); the tests submit them.
//
// Test hooks under /__test/ (plain HTTP, loopback only):
//   POST /__test/rotate        replace the signing key (new kid); the old one is no longer published
//   GET  /__test/stats         {"jwks_fetches": n, "kid": current kid}
// Clients in `tamper_clients` get ID tokens whose payload was changed after signing.
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${config.port}`;
const tamper = new Set(config.tamper_clients || []);
const stats = { jwks_fetches: 0, kid: null };

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

function tamperWith(idToken) {
  const [header, payload, signature] = idToken.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims.sub = `${claims.sub}-mallory`;
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

function makeProvider() {
  const key = signingKey();
  stats.kid = key.kid;
  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
      ...c,
    })),
    jwks: { keys: [key] },
    cookies: { keys: ['wisp-test-cookie-key-one', 'wisp-test-cookie-key-two'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], roles: ['roles'] },
    scopes: ['openid', 'offline_access', 'email', 'roles'],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const account = config.accounts[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
  });
  provider.use(async (ctx, next) => {
    if (ctx.path === '/jwks') stats.jwks_fetches += 1;
    await next();
    if (ctx.path === '/token' && ctx.status === 200 && ctx.body && ctx.body.id_token
        && tamper.has(ctx.oidc?.client?.clientId)) {
      ctx.body = { ...ctx.body, id_token: tamperWith(ctx.body.id_token) };
    }
  });
  return provider;
}

let current = makeProvider();

const server = http.createServer((req, res) => {
  if (req.url === '/__test/rotate' && req.method === 'POST') {
    current = makeProvider();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.url === '/__test/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  current.callback()(req, res);
});

server.listen(config.port, '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
