// One request to the API, its problem+json turned into an ApiError whose
// message is the server's own words (or plain ones when it sent none).

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// One request with `key` as its bearer credential ('' for none).
export async function request(method, path, body, key) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'the colloquy server cannot be reached; check that it is running');
  }
  const text = response.status === 204 ? '' : await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = (data && (data.detail || data.title)) || `the server answered ${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return data;
}
