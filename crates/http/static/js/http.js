// One request to the API, its problem+json turned into an ApiError whose
// message is the server's own words (or plain ones when it sent none).

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/**
 * One request with `key` as its bearer credential ('' for none), `body` (if
 * any) sent as JSON. The answer is its JSON, or with `as: 'file'` a
 * `{ blob, filename }` for a download.
 */
export async function request(method, path, body, key, { as = 'json' } = {}) {
  const init = { method, headers: { Accept: as === 'json' ? 'application/json' : '*/*' } };
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
  if (response.ok && as === 'file') {
    return { blob: await response.blob(), filename: attachmentName(response.headers.get('Content-Disposition')) };
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

// The file name a `Content-Disposition: attachment` header suggests, if any.
function attachmentName(header) {
  if (!header) return '';
  const encoded = header.match(/filename\*\s*=\s*UTF-8''([^;]+)/i);
  if (encoded) {
    try {
      return decodeURIComponent(encoded[1].trim());
    } catch {
      // Fall back to the plain name.
    }
  }
  const plain = header.match(/filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;\s]+)/i);
  return plain ? (plain[1] ?? plain[2]) : '';
}
