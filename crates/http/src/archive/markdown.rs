//! The Markdown export: a session's active branch as a transcript a person
//! reads, each message under its author, with its status when it did not
//! complete.

use std::fmt::Write as _;

use colloquy_app::Exported;
use colloquy_domain::{Message, MessageStatus, Role, Session, Timestamp};

/// The transcript of `exported` (its active branch, oldest first).
pub(crate) fn transcript(exported: &Exported) -> String {
    let session = &exported.session;
    let mut text = String::new();
    let title = session
        .title
        .as_ref()
        .map_or("Untitled conversation", |title| title.as_str());
    // Writing to a String cannot fail.
    let _ = writeln!(text, "# {title}\n");
    let _ = writeln!(
        text,
        "*Started {}, model `{}`; {} {} on this branch.*",
        when(session.created_at),
        session.model.as_str(),
        exported.messages.len(),
        if exported.messages.len() == 1 {
            "message"
        } else {
            "messages"
        },
    );
    for message in &exported.messages {
        write_message(&mut text, message);
    }
    text
}

fn write_message(text: &mut String, message: &Message) {
    let author = match (message.role, &message.speaker) {
        (Role::User, _) => "You",
        (Role::Assistant, Some(speaker)) => speaker.name.as_str(),
        (Role::Assistant, None) => "Assistant",
    };
    let _ = write!(text, "\n### {author} · {}", when(message.created_at));
    if message.status != MessageStatus::Complete {
        let _ = write!(text, " · *{}*", message.status.as_str());
    }
    text.push_str("\n\n");
    if message.content.trim().is_empty() {
        text.push_str("*(no text)*\n");
    } else {
        text.push_str(message.content.trim_end());
        text.push('\n');
    }
    if let Some(error) = &message.error {
        let _ = writeln!(text, "\n> {}: {}", error.code.as_str(), error.message);
    }
}

fn when(time: Timestamp) -> String {
    humantime::format_rfc3339_seconds(time.to_system_time()).to_string()
}

/// The file name an export is saved under: the session's title, made safe
/// for every file system and for a quoted header value, or its id.
pub(crate) fn attachment_name(session: &Session, extension: &str) -> String {
    let mut stem = String::new();
    let title = session.title.as_ref().map_or("", |title| title.as_str());
    for character in title.chars() {
        if character.is_ascii_alphanumeric() {
            stem.push(character.to_ascii_lowercase());
        } else if !stem.ends_with('-') && !stem.is_empty() {
            stem.push('-');
        }
        if stem.len() >= 60 {
            break;
        }
    }
    let stem = stem.trim_end_matches('-');
    if stem.is_empty() {
        format!("colloquy-{}.{extension}", session.id)
    } else {
        format!("{stem}.{extension}")
    }
}

#[cfg(test)]
mod tests {
    use colloquy_domain::{
        ErrorCode, MessageContent, MessageError, ModelName, Principal, Speaker, Title,
    };

    use super::*;

    fn session(title: Option<&str>) -> Session {
        let mut session = Session::new(
            Principal::anonymous(),
            title.map(|title| Title::parse(title).unwrap()),
            None,
            ModelName::parse("gpt-4o-mini").unwrap(),
        );
        session.created_at = Timestamp::from_micros(1_795_428_930_123_456);
        session
    }

    #[test]
    fn a_transcript_names_each_author_and_an_unfinished_status() {
        let session = session(Some("Trip to Lisbon"));
        let mut question = Message::user(
            session.id,
            MessageContent::parse("Which tram?".into(), 100).unwrap(),
        );
        question.created_at = Timestamp::from_micros(1_795_428_931_000_000);
        let mut answer = Message::streaming_reply(session.id, &session.model);
        answer.content = "The 28.\n\n".to_owned();
        answer.finish(MessageStatus::Complete, None);
        answer.created_at = Timestamp::from_micros(1_795_428_932_000_000);
        let mut critic = answer.clone();
        critic.speaker = Some(Speaker {
            id: colloquy_domain::AssistantId::new(),
            name: "Critic".to_owned(),
        });
        critic.content = String::new();
        critic.status = MessageStatus::Failed;
        critic.error = Some(MessageError {
            code: ErrorCode::UpstreamTimeout,
            message: "the model took too long".to_owned(),
        });
        let exported = Exported {
            session,
            messages: vec![question, answer, critic],
        };
        assert_eq!(
            transcript(&exported),
            "# Trip to Lisbon\n\n\
             *Started 2026-11-23T10:15:30Z, model `gpt-4o-mini`; 3 messages on this branch.*\n\
             \n### You · 2026-11-23T10:15:31Z\n\nWhich tram?\n\
             \n### Assistant · 2026-11-23T10:15:32Z\n\nThe 28.\n\
             \n### Critic · 2026-11-23T10:15:32Z · *failed*\n\n*(no text)*\n\
             \n> upstream_timeout: the model took too long\n"
        );
    }

    #[test]
    fn an_untitled_transcript_says_so() {
        let exported = Exported {
            session: session(None),
            messages: vec![],
        };
        assert!(transcript(&exported).starts_with("# Untitled conversation\n"));
        assert!(transcript(&exported).contains("0 messages"));
    }

    #[test]
    fn file_names_are_safe_slugs_of_the_title_or_the_id() {
        assert_eq!(
            attachment_name(&session(Some("Trip to Lisbon: day 2!")), "md"),
            "trip-to-lisbon-day-2.md"
        );
        let untitled = session(None);
        assert_eq!(
            attachment_name(&untitled, "json"),
            format!("colloquy-{}.json", untitled.id)
        );
        let quotes = session(Some("\"«»\""));
        assert!(attachment_name(&quotes, "md").starts_with("colloquy-"));
        let long = session(Some(&"word ".repeat(40)));
        assert!(attachment_name(&long, "md").len() <= 64);
    }
}
