// The portal's only way to the server: `/api/v2.0` and `/c/*`, with the
// session cookie (HttpOnly, set by /c/login) and the CSRF token that every
// authenticated response carries. The token lives in memory only.

export const API = '/api/v2.0';
const CSRF_HEADER = 'X-Harbor-CSRF-Token';

let csrfToken: string | null = null;

/** Called when the server says the session is gone (401). */
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

/** An API failure, with the server's message and a status to explain. */
export class ApiFailure extends Error {
  constructor(
    public status: number,
    public serverMessage: string,
    public code: string,
  ) {
    super(serverMessage || `HTTP ${status}`);
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>;

function queryString(q?: Query): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

async function failure(resp: Response): Promise<ApiFailure> {
  let message = '';
  let code = '';
  try {
    const body = await resp.json();
    const first = body?.errors?.[0];
    message = first?.message ?? '';
    code = first?.code ?? '';
  } catch {
    /* not JSON */
  }
  return new ApiFailure(resp.status, message, code);
}

export interface Page<T> {
  items: T[];
  total: number;
}

export async function request(
  method: string,
  path: string,
  opts: { query?: Query; body?: unknown; form?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...(opts.headers ?? {}) };
  let body: BodyInit | undefined;
  if (opts.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers[CSRF_HEADER] = csrfToken;
  const url = (path.startsWith('/c/') ? path : API + path) + queryString(opts.query);
  let resp = await fetch(url, { method, headers, body, credentials: 'same-origin' });
  const token = resp.headers.get(CSRF_HEADER);
  // A stale token (another tab signed in again) is refused once with the
  // current one attached: retry with it.
  if (resp.status === 403 && token && token !== csrfToken && method !== 'GET') {
    csrfToken = token;
    headers[CSRF_HEADER] = token;
    resp = await fetch(url, { method, headers, body, credentials: 'same-origin' });
  }
  const fresh = resp.headers.get(CSRF_HEADER);
  if (fresh) csrfToken = fresh;
  if (!resp.ok) {
    const f = await failure(resp);
    if (resp.status === 401 && !path.startsWith('/c/') && onUnauthorized) onUnauthorized();
    throw f;
  }
  return resp;
}

export async function get<T>(path: string, query?: Query): Promise<T> {
  const r = await request('GET', path, { query });
  return (await r.json()) as T;
}

/** One page of a list, with the total from `X-Total-Count`. */
export async function page<T>(path: string, query: Query): Promise<Page<T>> {
  const r = await request('GET', path, { query });
  const items = ((await r.json()) ?? []) as T[];
  const total = Number(r.headers.get('X-Total-Count') ?? items.length);
  return { items, total: Number.isFinite(total) ? total : items.length };
}

async function jsonOrNull<T>(r: Response): Promise<T | null> {
  const text = await r.text();
  if (!text) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

export async function post<T = unknown>(path: string, body?: unknown, query?: Query): Promise<T | null> {
  return jsonOrNull<T>(await request('POST', path, { body: body ?? {}, query }));
}
export async function put<T = unknown>(path: string, body?: unknown): Promise<T | null> {
  return jsonOrNull<T>(await request('PUT', path, { body: body ?? {} }));
}
export async function patch<T = unknown>(path: string, body?: unknown): Promise<T | null> {
  return jsonOrNull<T>(await request('PATCH', path, { body: body ?? {} }));
}
export async function del(path: string, query?: Query): Promise<void> {
  await request('DELETE', path, { query });
}

/** The id of a created resource, from the `Location` header of a 201. */
export async function create(path: string, body: unknown): Promise<{ id: number | null; body: unknown }> {
  const r = await request('POST', path, { body });
  const loc = r.headers.get('Location') ?? '';
  const id = Number(loc.split('/').pop());
  return { id: Number.isFinite(id) && loc ? id : null, body: await jsonOrNull(r) };
}

export async function login(principal: string, password: string): Promise<void> {
  await request('POST', '/c/login', { form: { principal, password } });
}
export async function logout(): Promise<void> {
  try {
    await request('GET', '/c/log_out');
  } finally {
    csrfToken = null;
  }
}

/** Path segment encoding for names that may hold `/` (repositories). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}
/** Harbor's API takes a repository name double-encoded (`a%252Fb`). */
export function repoSeg(name: string): string {
  return encodeURIComponent(encodeURIComponent(name));
}
