// A relying party on openid-client (an OpenID Certified RP library), written the way its README writes one.
// Env: RP_ISSUER (the provider's issuer), RP_CLIENT_ID, RP_CLIENT_SECRET (absent: a public client, auth "none"),
// RP_PORT (this server's loopback port). It prints "listening" once it serves.
//
// GET /login[?prompt=none]  discovery, then a redirect with PKCE (S256), nonce and state
// GET /callback             code grant (ID token validated incl. signature and nonce), UserInfo, refresh,
//                           the end-session URL; the outcome of each step as JSON in <pre id="result">
// GET /logged-out           the post-logout landing page: checks the state it sent
// GET /result               every step's outcome so far, as JSON
import http from 'node:http'
import * as client from 'openid-client'

const issuer = new URL(process.env.RP_ISSUER)
const clientId = process.env.RP_CLIENT_ID
const secret = process.env.RP_CLIENT_SECRET
const port = Number(process.env.RP_PORT)
const base = `http://127.0.0.1:${port}`
const scope = 'openid profile email offline_access'

// The issuer is plain http on loopback: allowInsecureRequests is the library's own switch for that case.
// enableNonRepudiationChecks makes it verify ID token signatures against the JWKS (not only over TLS).
const config = await client.discovery(
  issuer,
  clientId,
  secret ? { client_secret: secret } : undefined,
  secret ? client.ClientSecretBasic(secret) : client.None(),
  { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
)

const pending = new Map() // state -> { verifier, nonce }
const result = { steps: {} }

function failure(err) {
  return { error: err.error ?? err.code ?? err.name, description: err.error_description ?? err.message }
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers })
  res.end(body)
}

function page(res, text) {
  const escaped = text.replaceAll('&', '&amp;').replaceAll('<', '&lt;')
  send(res, 200, 'text/html', `<!doctype html><title>RP</title><pre id="result">${escaped}</pre>`)
}

async function login(url, res) {
  const verifier = client.randomPKCECodeVerifier()
  const nonce = client.randomNonce()
  const state = client.randomState()
  pending.set(state, { verifier, nonce })
  const params = {
    redirect_uri: `${base}/callback`,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  }
  const prompt = url.searchParams.get('prompt')
  if (prompt) params.prompt = prompt
  send(res, 302, 'text/plain', '', { Location: client.buildAuthorizationUrl(config, params).href })
}

async function callback(url, res) {
  const steps = (result.steps = {})
  const checks = pending.get(url.searchParams.get('state'))
  try {
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: checks?.verifier,
      expectedNonce: checks?.nonce,
      expectedState: url.searchParams.get('state'),
      idTokenExpected: true,
    })
    const claims = tokens.claims()
    steps.code = { token: tokens, claims }
    steps.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
    steps.refresh = { token: refreshed, claims: refreshed.claims() }
    const logoutState = client.randomState()
    steps.logout = {
      state: logoutState,
      url: client.buildEndSessionUrl(config, {
        id_token_hint: refreshed.id_token ?? tokens.id_token,
        post_logout_redirect_uri: `${base}/logged-out`,
        state: logoutState,
      }).href,
    }
  } catch (err) {
    steps.failed = failure(err)
  }
  page(res, JSON.stringify(steps))
}

function loggedOut(url, res) {
  const state = url.searchParams.get('state')
  const expected = result.steps.logout?.state
  result.steps.logged_out = { state, matches: state !== null && state === expected }
  page(res, JSON.stringify(result.steps.logged_out))
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, base)
  try {
    if (url.pathname === '/login') return await login(url, res)
    if (url.pathname === '/callback') return await callback(url, res)
    if (url.pathname === '/logged-out') return loggedOut(url, res)
    if (url.pathname === '/result') return send(res, 200, 'application/json', JSON.stringify(result))
    send(res, 404, 'text/plain', 'not found')
  } catch (err) {
    send(res, 500, 'text/plain', String(err))
  }
})
server.listen(port, '127.0.0.1', () => console.log('listening'))
