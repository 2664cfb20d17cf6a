//! How an event is written into a Redis stream entry: JSON of this
//! adapter's own mirror of [`EventKind`] and the domain types it carries
//! (the domain has no serde, by design).
//!
//! The form is readable with `redis-cli XRANGE`, and it can grow: a field
//! added later is optional with a default, so replicas of two versions
//! read each other's events during a rolling upgrade. An entry that cannot
//! be read at all is reported as such, and its subscribers are told to
//! resync rather than skip it silently.

use std::borrow::Cow;

use colloquy_domain::{
    AssistantId, ErrorCode, Message, MessageError, MessageId, MessageStatus, ModelName, Principal,
    Role, Session, SessionId, Speaker, SystemPrompt, Timestamp, Title, ToolCall, Usage,
};
use colloquy_ports::EventKind;
use serde::{Deserialize, Serialize};

/// What a stream entry holds: an event, or the mark a replica leaves in a
/// session's log where events it could not publish (Redis was away) would
/// have been, so that every subscriber is told to resync there.
#[derive(Debug, PartialEq, Eq)]
// An entry lives for one match right after it is read: boxing the event
// would cost an allocation per event and save nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Entry {
    Event(EventKind),
    Lost,
}

/// The stored form of [`Entry::Lost`].
pub(crate) fn lost_mark() -> Vec<u8> {
    serde_json::to_vec(&StoredEvent::EventsLost {}).expect("a mark serializes to JSON")
}

/// An entry that this version cannot turn back into an event.
#[derive(Debug, thiserror::Error)]
#[error("an event in Redis cannot be read: {0}")]
pub(crate) struct DecodeError(String);

/// The event as stored, or `None` for a `stream.resync`, which is made for
/// one subscriber and never published.
pub(crate) fn encode(kind: &EventKind) -> Option<Vec<u8>> {
    let stored = match kind {
        EventKind::MessageCreated(message) => StoredEvent::MessageCreated {
            message: StoredMessage::from(message),
        },
        EventKind::MessageDelta { message_id, delta } => StoredEvent::MessageDelta {
            message_id: message_id.to_string(),
            delta: Cow::Borrowed(delta),
        },
        EventKind::MessageCompleted(message) => StoredEvent::MessageCompleted {
            message: StoredMessage::from(message),
        },
        EventKind::MessageToolCall {
            message_id,
            tool_call,
        } => StoredEvent::MessageToolCall {
            message_id: message_id.to_string(),
            tool_call: StoredToolCall::from(tool_call),
        },
        EventKind::SessionUpdated(session) => StoredEvent::SessionUpdated {
            session: StoredSession::from(session),
        },
        EventKind::MessageReset { message_id } => StoredEvent::MessageReset {
            message_id: message_id.to_string(),
        },
        EventKind::MessageFailed(message) => StoredEvent::MessageFailed {
            message: StoredMessage::from(message),
        },
        EventKind::StreamResync(_) => return None,
    };
    // Serializing plain structs of strings and numbers into memory cannot fail.
    Some(serde_json::to_vec(&stored).expect("an event serializes to JSON"))
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let stored: StoredEvent<'_> =
        serde_json::from_slice(bytes).map_err(|error| DecodeError(error.to_string()))?;
    Ok(Entry::Event(match stored {
        StoredEvent::EventsLost {} => return Ok(Entry::Lost),
        StoredEvent::MessageCreated { message } => {
            EventKind::MessageCreated(message.into_domain()?)
        }
        StoredEvent::MessageDelta { message_id, delta } => EventKind::MessageDelta {
            message_id: message_id_from(&message_id)?,
            delta: delta.into_owned(),
        },
        StoredEvent::MessageCompleted { message } => {
            EventKind::MessageCompleted(message.into_domain()?)
        }
        StoredEvent::MessageToolCall {
            message_id,
            tool_call,
        } => EventKind::MessageToolCall {
            message_id: message_id_from(&message_id)?,
            tool_call: tool_call.into_domain(),
        },
        StoredEvent::SessionUpdated { session } => {
            EventKind::SessionUpdated(session.into_domain()?)
        }
        StoredEvent::MessageReset { message_id } => EventKind::MessageReset {
            message_id: message_id_from(&message_id)?,
        },
        StoredEvent::MessageFailed { message } => EventKind::MessageFailed(message.into_domain()?),
    }))
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredEvent<'a> {
    MessageCreated {
        message: StoredMessage<'a>,
    },
    MessageDelta {
        message_id: String,
        #[serde(borrow)]
        delta: Cow<'a, str>,
    },
    MessageCompleted {
        message: StoredMessage<'a>,
    },
    MessageToolCall {
        message_id: String,
        tool_call: StoredToolCall<'a>,
    },
    SessionUpdated {
        session: StoredSession<'a>,
    },
    MessageReset {
        message_id: String,
    },
    MessageFailed {
        message: StoredMessage<'a>,
    },
    /// Not an event: see [`Entry::Lost`].
    EventsLost {},
}

#[derive(Serialize, Deserialize)]
struct StoredMessage<'a> {
    id: String,
    session_id: String,
    /// Absent from events written before messages formed a tree, and for
    /// the first message of a branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: Cow<'a, str>,
    status: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    usage: Option<StoredUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<StoredError<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<StoredToolCall<'a>>,
    /// Absent from events written before assistants existed: the
    /// session's default voice wrote those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    speaker: Option<StoredSpeaker<'a>>,
    /// Microseconds since the Unix epoch, as the domain keeps times.
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct StoredSpeaker<'a> {
    id: String,
    name: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct StoredUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredError<'a> {
    code: Cow<'a, str>,
    message: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct StoredToolCall<'a> {
    id: Cow<'a, str>,
    name: Cow<'a, str>,
    arguments: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Cow<'a, str>>,
}

#[derive(Serialize, Deserialize)]
struct StoredSession<'a> {
    id: String,
    owner: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system_prompt: Option<Cow<'a, str>>,
    model: Cow<'a, str>,
    /// Absent from events written before assistants existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    assistant_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    /// Absent from events written before messages formed a tree, and for
    /// an empty session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head_message_id: Option<String>,
    message_count: u64,
}

impl<'a> From<&'a Message> for StoredMessage<'a> {
    fn from(message: &'a Message) -> Self {
        // Taken apart field by field, so that a field added to the domain
        // does not compile until it has a place here (and is not dropped
        // silently between replicas).
        let Message {
            id,
            session_id,
            parent_id,
            role,
            content,
            status,
            model,
            finish_reason,
            usage,
            error,
            tool_calls,
            speaker,
            created_at,
            completed_at,
        } = message;
        Self {
            id: id.to_string(),
            session_id: session_id.to_string(),
            parent_id: parent_id.map(|id| id.to_string()),
            role: Cow::Borrowed(role.as_str()),
            content: Cow::Borrowed(content),
            status: Cow::Borrowed(status.as_str()),
            model: model.as_deref().map(Cow::Borrowed),
            finish_reason: finish_reason.as_deref().map(Cow::Borrowed),
            usage: usage.map(
                |Usage {
                     prompt_tokens,
                     completion_tokens,
                 }| StoredUsage {
                    prompt_tokens,
                    completion_tokens,
                },
            ),
            error: error
                .as_ref()
                .map(|MessageError { code, message }| StoredError {
                    code: Cow::Borrowed(code.as_str()),
                    message: Cow::Borrowed(message),
                }),
            tool_calls: tool_calls.iter().map(StoredToolCall::from).collect(),
            speaker: speaker.as_ref().map(|Speaker { id, name }| StoredSpeaker {
                id: id.to_string(),
                name: Cow::Borrowed(name),
            }),
            created_at: created_at.as_micros(),
            completed_at: completed_at.map(Timestamp::as_micros),
        }
    }
}

impl StoredMessage<'_> {
    fn into_domain(self) -> Result<Message, DecodeError> {
        Ok(Message {
            id: message_id_from(&self.id)?,
            session_id: session_id_from(&self.session_id)?,
            parent_id: self.parent_id.as_deref().map(message_id_from).transpose()?,
            role: Role::parse(&self.role).ok_or_else(|| unknown("role", &self.role))?,
            content: self.content.into_owned(),
            status: MessageStatus::parse(&self.status)
                .ok_or_else(|| unknown("status", &self.status))?,
            model: self.model.map(Cow::into_owned),
            finish_reason: self.finish_reason.map(Cow::into_owned),
            usage: self.usage.map(|usage| Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            }),
            error: self
                .error
                .map(|error| {
                    Ok::<_, DecodeError>(MessageError {
                        code: ErrorCode::parse(&error.code)
                            .ok_or_else(|| unknown("error code", &error.code))?,
                        message: error.message.into_owned(),
                    })
                })
                .transpose()?,
            tool_calls: self
                .tool_calls
                .into_iter()
                .map(StoredToolCall::into_domain)
                .collect(),
            speaker: self
                .speaker
                .map(|speaker| {
                    Ok::<_, DecodeError>(Speaker {
                        id: assistant_id_from(&speaker.id)?,
                        name: speaker.name.into_owned(),
                    })
                })
                .transpose()?,
            created_at: Timestamp::from_micros(self.created_at),
            completed_at: self.completed_at.map(Timestamp::from_micros),
        })
    }
}

impl<'a> From<&'a ToolCall> for StoredToolCall<'a> {
    fn from(call: &'a ToolCall) -> Self {
        let ToolCall {
            id,
            name,
            arguments,
            result,
            error,
        } = call;
        Self {
            id: Cow::Borrowed(id),
            name: Cow::Borrowed(name),
            arguments: Cow::Borrowed(arguments),
            result: result.as_deref().map(Cow::Borrowed),
            error: error.as_deref().map(Cow::Borrowed),
        }
    }
}

impl StoredToolCall<'_> {
    fn into_domain(self) -> ToolCall {
        ToolCall {
            id: self.id.into_owned(),
            name: self.name.into_owned(),
            arguments: self.arguments.into_owned(),
            result: self.result.map(Cow::into_owned),
            error: self.error.map(Cow::into_owned),
        }
    }
}

impl<'a> From<&'a Session> for StoredSession<'a> {
    fn from(session: &'a Session) -> Self {
        let Session {
            id,
            owner,
            title,
            system_prompt,
            model,
            assistant_id,
            created_at,
            updated_at,
            head_message_id,
            message_count,
        } = session;
        Self {
            id: id.to_string(),
            owner: Cow::Borrowed(owner.as_str()),
            title: title.as_ref().map(|title| Cow::Borrowed(title.as_str())),
            system_prompt: system_prompt
                .as_ref()
                .map(|prompt| Cow::Borrowed(prompt.as_str())),
            model: Cow::Borrowed(model.as_str()),
            assistant_id: assistant_id.map(|id| id.to_string()),
            created_at: created_at.as_micros(),
            updated_at: updated_at.as_micros(),
            head_message_id: head_message_id.map(|id| id.to_string()),
            message_count: *message_count,
        }
    }
}

impl StoredSession<'_> {
    fn into_domain(self) -> Result<Session, DecodeError> {
        let invalid = |error: colloquy_domain::ValidationError| DecodeError(error.to_string());
        Ok(Session {
            id: session_id_from(&self.id)?,
            owner: Principal::parse(&self.owner).map_err(invalid)?,
            title: self
                .title
                .map(|title| Title::parse(&title))
                .transpose()
                .map_err(invalid)?,
            system_prompt: self
                .system_prompt
                .map(|prompt| SystemPrompt::parse(&prompt))
                .transpose()
                .map_err(invalid)?,
            model: ModelName::parse(&self.model).map_err(invalid)?,
            assistant_id: self
                .assistant_id
                .as_deref()
                .map(assistant_id_from)
                .transpose()?,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
            head_message_id: self
                .head_message_id
                .as_deref()
                .map(message_id_from)
                .transpose()?,
            message_count: self.message_count,
        })
    }
}

fn message_id_from(text: &str) -> Result<MessageId, DecodeError> {
    MessageId::parse(text).map_err(|_| unknown("message id", text))
}

fn session_id_from(text: &str) -> Result<SessionId, DecodeError> {
    SessionId::parse(text).map_err(|_| unknown("session id", text))
}

fn assistant_id_from(text: &str) -> Result<AssistantId, DecodeError> {
    AssistantId::parse(text).map_err(|_| unknown("assistant id", text))
}

fn unknown(what: &str, value: &str) -> DecodeError {
    DecodeError(format!("unknown {what} {value:?}"))
}

#[cfg(test)]
mod tests {
    use colloquy_ports::{Resync, ResyncReason};

    use super::*;

    fn full_message() -> Message {
        let model = ModelName::parse("gpt-4o-mini").unwrap();
        let mut message = Message::streaming_reply(SessionId::new(), &model);
        message.content = "Ünïcode, \"quotes\", \\ and\nnew lines 🦀".to_owned();
        message.finish_reason = Some("length".to_owned());
        message.usage = Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 345,
        });
        message.tool_calls = vec![tool_call(), {
            let mut failed = tool_call();
            failed.result = None;
            failed.error = Some("division by zero".to_owned());
            failed
        }];
        message.finish(
            MessageStatus::Failed,
            Some(MessageError {
                code: ErrorCode::UpstreamTimeout,
                message: "the upstream stalled".to_owned(),
            }),
        );
        message
    }

    fn tool_call() -> ToolCall {
        ToolCall {
            id: "call_1".to_owned(),
            name: "calculator".to_owned(),
            arguments: r#"{"expression":"1/0"}"#.to_owned(),
            result: Some(r#"{"value":2}"#.to_owned()),
            error: None,
        }
    }

    fn user_message() -> Message {
        let content = colloquy_domain::MessageContent::parse("hi".to_owned(), 10).unwrap();
        Message::user(SessionId::new(), content)
    }

    fn speaker() -> Speaker {
        Speaker {
            id: AssistantId::new(),
            name: "Critic \"the second\" 🦉".to_owned(),
        }
    }

    fn session(titled: bool) -> Session {
        let mut session = Session::new(
            Principal::parse("alice@example.com").unwrap(),
            None,
            None,
            ModelName::parse("llama3.1:8b").unwrap(),
        );
        if titled {
            session.title = Some(Title::parse("Trip to Oslo").unwrap());
            session.system_prompt = Some(SystemPrompt::parse("Be brief.\nVery.").unwrap());
            session.assistant_id = Some(AssistantId::new());
            session.head_message_id = Some(MessageId::new());
            session.message_count = 7;
        }
        session
    }

    /// One sample of every published kind, with its optional parts both
    /// empty and filled.
    fn samples() -> Vec<EventKind> {
        let message_id = MessageId::new();
        vec![
            EventKind::MessageCreated(user_message()),
            EventKind::MessageCreated(Message::streaming_reply(
                SessionId::new(),
                &ModelName::parse("offline").unwrap(),
            )),
            EventKind::MessageCreated(Message::streaming_reply_by(
                SessionId::new(),
                &ModelName::parse("offline").unwrap(),
                Some(speaker()),
            )),
            EventKind::MessageDelta {
                message_id,
                delta: "Hel".to_owned(),
            },
            EventKind::MessageDelta {
                message_id,
                delta: String::new(),
            },
            EventKind::MessageCompleted(full_message()),
            EventKind::MessageCompleted(Message {
                speaker: Some(speaker()),
                parent_id: Some(MessageId::new()),
                ..full_message()
            }),
            EventKind::MessageToolCall {
                message_id,
                tool_call: tool_call(),
            },
            EventKind::SessionUpdated(session(false)),
            EventKind::SessionUpdated(session(true)),
            EventKind::MessageReset { message_id },
            EventKind::MessageFailed(full_message()),
        ]
    }

    #[test]
    fn every_published_kind_round_trips() {
        let mut seen = [false; 7];
        for kind in samples() {
            // Written so that a new kind does not compile until it has a
            // place here, and does not pass until it has a sample above.
            let index = match &kind {
                EventKind::MessageCreated(_) => 0,
                EventKind::MessageDelta { .. } => 1,
                EventKind::MessageCompleted(_) => 2,
                EventKind::MessageToolCall { .. } => 3,
                EventKind::SessionUpdated(_) => 4,
                EventKind::MessageReset { .. } => 5,
                EventKind::MessageFailed(_) => 6,
                EventKind::StreamResync(_) => unreachable!("never published"),
            };
            seen[index] = true;
            let bytes = encode(&kind).expect("a published kind encodes");
            let back = decode(&bytes).unwrap_or_else(|error| panic!("{kind:?}: {error}"));
            assert_eq!(back, Entry::Event(kind));
        }
        assert!(
            seen.iter().all(|seen| *seen),
            "a kind has no sample: {seen:?}"
        );
    }

    #[test]
    fn a_resync_is_never_stored() {
        let resync = EventKind::StreamResync(Resync {
            reason: ResyncReason::NotKept,
            oldest_event_id: 1,
        });
        assert!(encode(&resync).is_none());
    }

    #[test]
    fn the_mark_of_lost_events_reads_back_as_such_and_as_no_event() {
        let mark = lost_mark();
        assert_eq!(
            String::from_utf8(mark.clone()).unwrap(),
            r#"{"kind":"events_lost"}"#
        );
        assert_eq!(decode(&mark).unwrap(), Entry::Lost);
    }

    #[test]
    fn a_delta_is_small_and_readable() {
        let message_id = MessageId::new();
        let bytes = encode(&EventKind::MessageDelta {
            message_id,
            delta: "Hi".to_owned(),
        })
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            format!(r#"{{"kind":"message_delta","message_id":"{message_id}","delta":"Hi"}}"#)
        );
    }

    #[test]
    fn fields_added_later_are_ignored_and_missing_optional_ones_default() {
        let message_id = MessageId::new();
        let newer =
            format!(r#"{{"kind":"message_reset","message_id":"{message_id}","attempt":2}}"#);
        assert_eq!(
            decode(newer.as_bytes()).unwrap(),
            Entry::Event(EventKind::MessageReset { message_id })
        );
        let user = user_message();
        let sparse = format!(
            r#"{{"kind":"message_created","message":{{"id":"{}","session_id":"{}","role":"user","content":"hi","status":"complete","created_at":5}}}}"#,
            user.id, user.session_id
        );
        let Entry::Event(EventKind::MessageCreated(decoded)) = decode(sparse.as_bytes()).unwrap()
        else {
            panic!("a message.created");
        };
        assert_eq!(decoded.tool_calls, []);
        assert_eq!(decoded.completed_at, None);
    }

    #[test]
    fn who_wrote_a_message_and_a_sessions_assistant_are_written_out() {
        let speaker = speaker();
        let message = Message::streaming_reply_by(
            SessionId::new(),
            &ModelName::parse("offline").unwrap(),
            Some(speaker.clone()),
        );
        let text = String::from_utf8(encode(&EventKind::MessageCreated(message)).unwrap()).unwrap();
        assert!(
            text.contains(&format!(
                r#""speaker":{{"id":"{}","name":"Critic \"the second\" 🦉"}}"#,
                speaker.id
            )),
            "{text}"
        );
        let session = session(true);
        let text = String::from_utf8(encode(&EventKind::SessionUpdated(session.clone())).unwrap())
            .unwrap();
        assert!(
            text.contains(&format!(
                r#""assistant_id":"{}""#,
                session.assistant_id.unwrap()
            )),
            "{text}"
        );
        let plain =
            String::from_utf8(encode(&EventKind::SessionUpdated(self::session(false))).unwrap())
                .unwrap();
        assert!(!plain.contains("assistant_id"), "absent when None: {plain}");
    }

    /// Events written by a replica from before assistants: no `speaker`
    /// and no `assistant_id` read as none.
    #[test]
    fn events_written_before_assistants_read_as_the_default_voice() {
        let message_id = MessageId::new();
        let session_id = SessionId::new();
        let completed = format!(
            r#"{{"kind":"message_completed","message":{{"id":"{message_id}","session_id":"{session_id}","role":"assistant","content":"Done.","status":"complete","model":"gpt-4o-mini","finish_reason":"stop","usage":{{"prompt_tokens":3,"completion_tokens":1}},"created_at":5,"completed_at":6}}}}"#
        );
        let Entry::Event(EventKind::MessageCompleted(message)) =
            decode(completed.as_bytes()).unwrap()
        else {
            panic!("a message.completed");
        };
        assert_eq!(message.id, message_id);
        assert_eq!(message.content, "Done.");
        assert_eq!(message.speaker, None);
        assert_eq!(message.parent_id, None);
        let updated = format!(
            r#"{{"kind":"session_updated","session":{{"id":"{session_id}","owner":"alice","title":"Old","model":"gpt-4o-mini","created_at":1,"updated_at":2,"message_count":4}}}}"#
        );
        let Entry::Event(EventKind::SessionUpdated(session)) = decode(updated.as_bytes()).unwrap()
        else {
            panic!("a session.updated");
        };
        assert_eq!(session.id, session_id);
        assert_eq!(session.message_count, 4);
        assert_eq!(session.assistant_id, None);
        assert_eq!(session.head_message_id, None);
    }

    #[test]
    fn a_messages_parent_and_a_sessions_head_are_written_out() {
        let parent = MessageId::new();
        let message = Message {
            parent_id: Some(parent),
            ..user_message()
        };
        let text = String::from_utf8(encode(&EventKind::MessageCreated(message.clone())).unwrap())
            .unwrap();
        assert!(
            text.contains(&format!(r#""parent_id":"{parent}""#)),
            "{text}"
        );
        assert_eq!(
            decode(text.as_bytes()).unwrap(),
            Entry::Event(EventKind::MessageCreated(message))
        );
        let root =
            String::from_utf8(encode(&EventKind::MessageCreated(user_message())).unwrap()).unwrap();
        assert!(!root.contains("parent_id"), "absent for a root: {root}");

        let session = session(true);
        let head = session.head_message_id.unwrap();
        let text = String::from_utf8(encode(&EventKind::SessionUpdated(session.clone())).unwrap())
            .unwrap();
        assert!(
            text.contains(&format!(r#""head_message_id":"{head}""#)),
            "{text}"
        );
        let empty =
            String::from_utf8(encode(&EventKind::SessionUpdated(self::session(false))).unwrap())
                .unwrap();
        assert!(
            !empty.contains("head_message_id"),
            "absent when empty: {empty}"
        );
    }

    #[test]
    fn what_cannot_be_read_is_an_error_not_a_guess() {
        let cases = [
            "not json".to_owned(),
            r#"{"kind":"message.exploded"}"#.to_owned(),
            r#"{"kind":"message_reset","message_id":"not-a-uuid"}"#.to_owned(),
            format!(
                r#"{{"kind":"message_created","message":{{"id":"{0}","session_id":"{0}","role":"system","content":"","status":"complete","created_at":0}}}}"#,
                MessageId::new()
            ),
            format!(
                r#"{{"kind":"message_created","message":{{"id":"{0}","session_id":"{0}","role":"assistant","content":"","status":"streaming","speaker":{{"id":"nobody","name":"Critic"}},"created_at":0}}}}"#,
                MessageId::new()
            ),
            format!(
                r#"{{"kind":"session_updated","session":{{"id":"{0}","owner":"alice","model":"m","assistant_id":"nobody","created_at":1,"updated_at":2,"message_count":0}}}}"#,
                SessionId::new()
            ),
            format!(
                r#"{{"kind":"message_created","message":{{"id":"{0}","session_id":"{0}","parent_id":"nobody","role":"user","content":"","status":"complete","created_at":0}}}}"#,
                MessageId::new()
            ),
            format!(
                r#"{{"kind":"session_updated","session":{{"id":"{0}","owner":"alice","model":"m","head_message_id":"nobody","created_at":1,"updated_at":2,"message_count":1}}}}"#,
                SessionId::new()
            ),
        ];
        for case in cases {
            assert!(decode(case.as_bytes()).is_err(), "{case}");
        }
    }
}
