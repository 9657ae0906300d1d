// The admin token and the requests that carry it. The token lives in this tab's
// sessionStorage only: never in a URL, a cookie or localStorage.

const TOKEN_KEY = "token-metadata-admin-token";

export class Unauthorized extends Error {}

export const adminToken = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  save: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// A printable ASCII token: what an HTTP header can carry as it was typed.
export function isUsableToken(token) {
  return /^[\x21-\x7e]+$/.test(token);
}

// GET `path` with the bearer token: {status, body} (body null when not JSON). A 401 forgets
// the token and throws Unauthorized, whichever route answered it.
export async function getJson(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${adminToken.get() ?? ""}`, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401) {
    adminToken.clear();
    throw new Unauthorized("the admin token was refused");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}
