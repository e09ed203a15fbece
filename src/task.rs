//! Model tasks (SPEC §3.1): the database string is the only spelling.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;

/// What a model does. `Display`, `FromStr` and serde all use the database spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum ModelTask {
    /// `text_embedding`
    TextEmbedding,
    /// `image_embedding`
    ImageEmbedding,
    /// `audio_embedding`
    AudioEmbedding,
    /// `classification`
    Classification,
    /// `ner`
    Ner,
    /// `regression`
    Regression,
}

impl ModelTask {
    /// Every task, in the order of SPEC §3.1.
    pub const ALL: [ModelTask; 6] = [
        ModelTask::TextEmbedding,
        ModelTask::ImageEmbedding,
        ModelTask::AudioEmbedding,
        ModelTask::Classification,
        ModelTask::Ner,
        ModelTask::Regression,
    ];

    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelTask::TextEmbedding => "text_embedding",
            ModelTask::ImageEmbedding => "image_embedding",
            ModelTask::AudioEmbedding => "audio_embedding",
            ModelTask::Classification => "classification",
            ModelTask::Ner => "ner",
            ModelTask::Regression => "regression",
        }
    }

    /// True for the three embedding tasks.
    pub fn is_embedding(self) -> bool {
        matches!(
            self,
            ModelTask::TextEmbedding | ModelTask::ImageEmbedding | ModelTask::AudioEmbedding
        )
    }
}

impl fmt::Display for ModelTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelTask {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, CatalogError> {
        ModelTask::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let valid: Vec<&str> = ModelTask::ALL.iter().map(|t| t.as_str()).collect();
                CatalogError::invalid(
                    "task",
                    format!("{s:?} is not a task; expected one of {}", valid.join(", ")),
                )
            })
    }
}

impl TryFrom<String> for ModelTask {
    type Error = CatalogError;

    fn try_from(s: String) -> Result<Self, CatalogError> {
        s.parse()
    }
}

impl From<ModelTask> for &'static str {
    fn from(task: ModelTask) -> Self {
        task.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips_through_display_fromstr_and_serde() {
        for task in ModelTask::ALL {
            assert_eq!(task.to_string().parse::<ModelTask>().unwrap(), task);
            let json = serde_json::to_string(&task).unwrap();
            assert_eq!(json, format!("\"{}\"", task.as_str()));
            assert_eq!(serde_json::from_str::<ModelTask>(&json).unwrap(), task);
        }
    }

    #[test]
    fn unknown_task_lists_the_valid_ones() {
        let err = "embedding".parse::<ModelTask>().unwrap_err().to_string();
        assert!(err.contains("invalid task"), "{err}");
        assert!(
            err.contains("text_embedding") && err.contains("regression"),
            "{err}"
        );
    }

    #[test]
    fn embedding_tasks() {
        let embedding: Vec<_> = ModelTask::ALL
            .into_iter()
            .filter(|t| t.is_embedding())
            .collect();
        assert_eq!(embedding.len(), 3);
    }
}
