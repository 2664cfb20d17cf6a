// The API as the rest of the page calls it: with the key this tab keeps, and
// asking for one when the server answers 401.
import { keptKey, keyAccepted } from './auth.js';
import { API, request } from './http.js';

export { API };

export const sessionPath = (id) => `${API}/sessions/${encodeURIComponent(id)}`;
export const messagePath = (sessionId, messageId) => `${sessionPath(sessionId)}/messages/${encodeURIComponent(messageId)}`;
export const assistantPath = (id) => `${API}/assistants/${encodeURIComponent(id)}`;

// A 401 asks for a key (see `keyAccepted`) and then sends the very same
// request again, so whatever was under way when the server asked (loading
// the chats, sending a message) carries on. `options` as for `request`.
export async function api(method, path, body, options) {
  for (;;) {
    const sent = keptKey();
    try {
      return await request(method, path, body, sent, options);
    } catch (error) {
      if (error.status !== 401) throw error;
      await keyAccepted(sent, error.message);
    }
  }
}
