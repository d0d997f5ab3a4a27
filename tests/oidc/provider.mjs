// The e2e tests' OpenID Connect provider (tests/e2e/test_oidc.py): oidc-provider, an OpenID
// Certified implementation, with discovery, the authorization code flow with PKCE required, a
// userinfo endpoint and a groups claim. Its sign-in pages are the library's development views,
// which take any password: the provider's own password check is not what the tests are about,
// the hub's side of the protocol is.
//
// node provider.mjs ISSUER PORT CERTIFICATE KEY CLIENT_ID CLIENT_SECRET REDIRECT_URI ACCOUNTS
// ACCOUNTS: JSON {"account id": {"preferred_username": "...", "groups": ["..."]}}
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const [issuer, port, certificate, key, clientId, clientSecret, redirectUri, accountsJson] = process.argv.slice(2);
const accounts = JSON.parse(accountsJson);

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  async findAccount(ctx, id) {
    if (!(id in accounts)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, name: id, ...accounts[id] }) };
  },
  cookies: { keys: ['jhd-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
});

https.createServer({ cert: readFileSync(certificate), key: readFileSync(key) }, provider.callback())
  .listen(Number(port), '0.0.0.0', () => console.log(`provider ${issuer} listening on ${port}`));
