//! Why a command failed, and the lines FortiOS prints for it.
//!
//! Every parser, handler and help function of the CLI returns a [`CliError`]; the session
//! turns it into output once, through [`CliError::lines`].

use crate::config::{
    RC_INCOMPLETE, RC_INVALID_VALUE, RC_NOT_FOUND, datasource_error_lines, fail_line, parse_error_lines,
    value_error_lines,
};

use super::backend::{CommitError, MODIFICATION_NOT_ALLOWED};
use super::tokenize::TokenizeError;

/// Why a command failed, as the session reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CliError {
    /// The command stopped before a required word.
    #[error("incomplete command")]
    Incomplete,
    /// A word was not expected where it stands.
    #[error("unexpected word {0:?}")]
    Parse(String),
    /// A value does not fit its field.
    #[error("invalid value {0:?}")]
    Value(String),
    /// The first word of a top-level command is not a command.
    #[error("unknown command")]
    UnknownAction,
    /// A member tried to change a table synced from the root.
    #[error("{MODIFICATION_NOT_ALLOWED}")]
    NotAllowed,
    /// The backend did not commit the change.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// An `execute` or `diagnose` command could not do its work; the text says why.
    #[error("{0}")]
    Failed(String),
    /// A command names an entry that does not exist.
    #[error("no entry {0:?}")]
    NotFound(String),
    /// A value names no entry of the table its field refers to (a datasource).
    #[error("{0:?} is not in the datasource")]
    NotInDatasource(String),
    /// A commit refused before it was proposed, with FortiOS's `node_check_object` line.
    #[error("{reason}")]
    Check {
        reason: String,
        field: &'static str,
        value: &'static str,
    },
}

impl CliError {
    /// The lines FortiOS prints for this failure.
    pub(super) fn lines(&self) -> Vec<String> {
        match self {
            Self::Incomplete => vec![
                "incomplete command in the end".to_owned(),
                fail_line(RC_INCOMPLETE),
            ],
            Self::Parse(word) => parse_error_lines(word),
            Self::Value(value) => value_error_lines(value),
            Self::UnknownAction => vec!["Unknown action 0".to_owned()],
            Self::NotAllowed => vec![MODIFICATION_NOT_ALLOWED.to_owned(), fail_line(RC_INVALID_VALUE)],
            Self::Commit(error) => error.cli_lines(),
            Self::Failed(reason) => vec![reason.clone(), fail_line(RC_INVALID_VALUE)],
            Self::NotFound(_) => vec![
                "entry not found in datasource".to_owned(),
                fail_line(RC_NOT_FOUND),
            ],
            Self::NotInDatasource(value) => datasource_error_lines(value),
            Self::Check { reason, field, value } => vec![
                reason.clone(),
                format!("node_check_object fail! for {field} {value}"),
                fail_line(RC_INVALID_VALUE),
            ],
        }
    }
}

impl From<TokenizeError> for CliError {
    fn from(error: TokenizeError) -> Self {
        match error {
            TokenizeError::UnterminatedQuote
            | TokenizeError::TrailingBackslash
            | TokenizeError::MissingPattern => Self::Incomplete,
            TokenizeError::UnknownFilter(word) => Self::Parse(word),
        }
    }
}
