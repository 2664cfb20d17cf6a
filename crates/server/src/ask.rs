//! `colloquy ask "…"`: one prompt, the reply streamed to stdout, no server.

use std::io::Write;

use crate::application::language_model;
use crate::Config;

/// Streams the model's reply to `prompt` into `out`, asked and retried
/// exactly as the server asks for a reply (`colloquy_app::ask`).
///
/// # Errors
/// The upstream failed for good, or `out` could not be written.
pub async fn ask(
    config: &Config,
    prompt: &str,
    out: &mut (impl Write + Send),
) -> anyhow::Result<()> {
    let llm = language_model(config)?;
    colloquy_app::ask(llm.as_ref(), &config.chat_config(), prompt, out)
        .await
        // The error's own words already name its cause: printed as a chain,
        // the cause would come twice.
        .map_err(|error| anyhow::anyhow!("{error}"))
}
