//! The interactive prompt: statements end with `;`, history is kept in
//! `~/.jammi_history`. An error is printed and the prompt goes on.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::output::one_line;
use crate::session::Session;

pub async fn run(session: &Session) -> Result<(), String> {
    let mut editor = DefaultEditor::new().map_err(|e| format!("cannot start the prompt: {e}"))?;
    let history =
        std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".jammi_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path); // a first run has none
    }
    println!(
        "jammi {}: end statements with ';', quit with \\q or Ctrl-D.",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "jammi> "
        } else {
            "   ..> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
                    break;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !line.trim_end().ends_with(';') {
                    continue;
                }
                let _ = editor.add_history_entry(buffer.trim());
                if let Err(message) = session.run_script(&buffer).await {
                    eprintln!("error: {}", one_line(&message));
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("cannot read the prompt: {e}")),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}
