// A real OpenID provider for the tests and the local stack: npm's oidc-provider (OpenID Certified),
// with its development sign-in pages (any password), one registered client and a `groups` claim.
//
//   node devkit/oidc_provider.mjs CONFIG.json
//
// CONFIG.json: {"port": 9400, "client_id": "...", "client_secret": "...",
//               "redirect_uri": "http://127.0.0.1:8480/signin/oidc",
//               "post_logout_redirect_uri": "http://127.0.0.1:8480/signin",
//               "accounts": {"anna": {"name": "Anna Berg", "email": "anna@plant.example", "groups": ["ecoc-reviewers"]}}}
//
// Prints one line "oidc-provider listening on http://127.0.0.1:PORT" when it serves. Test use only:
// the signing key is made at start and kept in memory, nothing is stored, every password is accepted.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import process from "node:process";

import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const issuer = `http://127.0.0.1:${config.port}`;
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "devkit-1", use: "sig", alg: "RS256" };
const accounts = config.accounts || {};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: [config.redirect_uri],
      post_logout_redirect_uris: [config.post_logout_redirect_uri],
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  jwks: { keys: [jwk] },
  claims: {
    openid: ["sub"],
    profile: ["name", "preferred_username", "groups"],
    email: ["email"],
  },
  conformIdTokenClaims: false, // the profile's claims in the ID token, as company providers configure it
  pkce: { methods: ["S256"], required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: [jwk.d.slice(0, 32)] },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, IdToken: 600, AccessToken: 600, AuthorizationCode: 60 },
  async findAccount(_ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...account };
      },
    };
  },
  // A first-party client: no consent page, the grant covers what the client asked for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile email");
    await grant.save();
    return grant;
  },
});

provider.listen(config.port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
