// The memory server's REST API as the console uses it: the same /v1 routes as every client. The access key lives in
// this tab's sessionStorage only (gone when the tab closes); each request is signed with it (HMAC-SHA256, see
// memory_plugin/signing.py), so the secret itself never travels. Where the page is not a secure context (plain
// http beyond loopback) the browser has no WebCrypto and the key is sent as a Bearer token instead.

const SESSION = "memory_plugin.console.key";
const KEY_ID = /^mpk_[a-z2-7]{20}$/;
const UNRESERVED = /[A-Za-z0-9\-_.~]/;

/** An error answer of the API: `message` names the field and what is allowed; `requestId` is the audit's id. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `the server answered HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
    this.requestId = body && body.request_id;
  }
}

/** A mistake caught in the page before anything is sent (same shape as the API's: the field, then the problem). */
export class InputError extends Error {
  constructor(field, problem) {
    super(`${field}: ${problem}`);
    this.field = field;
  }
}

/** Whether `text` has an access key id's shape. */
export function isKeyId(text) {
  return KEY_ID.test(text);
}

export function credentials() {
  const raw = sessionStorage.getItem(SESSION);
  return raw ? JSON.parse(raw) : null;
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
}

/** Check the key's shape, keep it for this tab, and ask the server who it is; a refused key is forgotten. */
export async function signIn(keyId, secret) {
  keyId = keyId.trim();
  secret = secret.trim();
  if (keyId.includes(".") && !secret) [keyId, secret] = [keyId.slice(0, keyId.indexOf(".")), keyId.slice(keyId.indexOf(".") + 1)];
  if (!KEY_ID.test(keyId)) throw new InputError("key id", "must be mpk_ followed by 20 characters, as `memory-plugin keys create` prints it");
  if (!secret) throw new InputError("secret", "is required (shown once by `memory-plugin keys create`)");
  sessionStorage.setItem(SESSION, JSON.stringify({ keyId, secret }));
  try {
    return await whoami();
  } catch (error) {
    signOut();
    throw error;
  }
}

export function whoami() {
  return request("GET", "/v1/whoami");
}

export function listStores() {
  return request("GET", "/v1/stores");
}

export function createStore(fields) {
  return request("POST", "/v1/stores", fields);
}

export function deleteStore(name) {
  return request("DELETE", `/v1/stores/${encodeURIComponent(name)}`);
}

/** One operation on a store: POST /v1/stores/{store}/{route} with its arguments as the JSON body. */
export function op(store, route, body) {
  if (!store) throw new InputError("store", "choose a memory store first (Stores view, or the selector at the top)");
  return request("POST", `/v1/stores/${encodeURIComponent(store)}/${route}`, body || {});
}

async function request(method, path, body) {
  const key = credentials();
  if (!key) throw new ApiError(401, { message: "not signed in" });
  const text = body === undefined ? "" : JSON.stringify(body);
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  Object.assign(headers, await authorization(key, method, path, headers, text));
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : text, credentials: "omit" });
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

async function authorization(key, method, path, headers, body) {
  if (!(globalThis.crypto && crypto.subtle)) return { Authorization: `Bearer ${key.keyId}.${key.secret}` };
  const date = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
  const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
  const signed = { host: location.host, "x-mp-date": date, "x-mp-nonce": nonce };
  for (const [name, value] of Object.entries(headers)) signed[name.toLowerCase()] = value;
  const names = Object.keys(signed).sort();
  const canonical = [method, canonicalPath(path), "", ...names.map((n) => `${n}:${signed[n]}`), names.join(";"),
    hex(await sha256(body))].join("\n");
  const toSign = ["HMAC-SHA256", date, key.keyId, hex(await sha256(canonical))].join("\n");
  const signature = hex(await hmac(key.secret, toSign));
  return {
    "X-MP-Date": date,
    "X-MP-Nonce": nonce,
    Authorization: `HMAC-SHA256 Credential=${key.keyId}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
}

/** The path as signed: percent-decoded to bytes, every byte but the unreserved ones and "/" as upper-case %XX. */
function canonicalPath(path) {
  const bytes = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < path.length; i++) {
    if (path[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(path.slice(i + 1, i + 3))) {
      bytes.push(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...encoder.encode(path[i]));
    }
  }
  return bytes.map((b) => {
    const c = String.fromCharCode(b);
    return b < 128 && (UNRESERVED.test(c) || c === "/") ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("") || "/";
}

async function sha256(text) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

async function hmac(secret, text) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" },
    false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text)));
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
