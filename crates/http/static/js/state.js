// What the page knows of the chats and of the one on screen, shared by the
// modules that show it. The event stream keeps its own state (events.js).

export const state = {
  sessions: [], // newest first, as the API lists them
  hasMoreSessions: false,
  current: null, // the selected session's id
  messages: new Map(), // id -> Message, of the branch on screen
  views: new Map(), // id -> its <article>
  ready: false, // the history is on screen; events before that wait in `queue`
  queue: [],
  selecting: 0, // bumps with each selection, so stale answers are dropped
  sending: false, // a send, discussion, regeneration or edit is being asked for
  switching: false, // another branch is being put on screen
  stickToEnd: false, // the view was at its end before this change: keep it there
  editing: null, // the session being renamed
  confirming: null, // the session whose deletion awaits confirmation
  editingMessage: null, // { id, editor }: the question being edited in place
};
