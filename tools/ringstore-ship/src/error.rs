//! The shipper's one error type and its exit codes.

use std::io;
use std::path::PathBuf;

/// Exit code: everything sealed was shipped (or nothing was pending).
pub const EXIT_OK: u8 = 0;
/// Exit code: a sealed segment is damaged; nothing of it (or after it in its
/// shard) was shipped.
pub const EXIT_DAMAGED: u8 = 1;
/// Exit code: bad usage, or a local I/O error.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: the catalog or the object store could not be reached, or
/// refused a request for a reason other than credentials; retrying later is
/// safe.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: the catalog or the object store refused the credentials.
pub const EXIT_CREDENTIALS: u8 = 4;
/// Exit code: the table exists with a schema the shipper cannot write, or the
/// instance name is already used by another data dir's history.
pub const EXIT_INCOMPATIBLE: u8 = 5;

/// Why shipping stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// The arguments do not make sense.
    #[error("{0}")]
    Usage(String),

    /// The catalog (or the object store behind it) did not answer.
    #[error(
        "catalog {uri} unreachable while {op}: {reason}; check --catalog and that the server runs (nothing was committed by this step; rerunning is safe)"
    )]
    CatalogUnreachable {
        /// The catalog URI.
        uri: String,
        /// What the shipper was doing.
        op: &'static str,
        /// The transport error.
        reason: String,
    },

    /// The catalog or the object store refused the credentials.
    #[error(
        "catalog {uri} refused the credentials while {op}: {reason}; check --credential ID:SECRET (or RINGSTORE_SHIP_CREDENTIAL) and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    )]
    BadCredentials {
        /// The catalog URI.
        uri: String,
        /// What the shipper was doing.
        op: &'static str,
        /// The server's answer.
        reason: String,
    },

    /// The catalog or object store answered with an error.
    #[error("catalog {uri}: {op} failed: {reason}")]
    Catalog {
        /// The catalog URI.
        uri: String,
        /// What the shipper was doing.
        op: &'static str,
        /// The server's or the client's error.
        reason: String,
    },

    /// The table exists with a schema the shipper cannot write.
    #[error(
        "table {table} has an incompatible schema: {reason}; ship to another --table, or evolve the table so that every column the shipper writes has its type and every other column is optional"
    )]
    IncompatibleSchema {
        /// namespace.table
        table: String,
        /// What does not match.
        reason: String,
    },

    /// The table already holds another data dir's history under this
    /// instance name.
    #[error(
        "table {table} already holds segment shard-{shard}/{seq} of instance {instance:?} with generation {table_generation} created at {table_created_unix_ns} ns, but {dir} has generation {dir_generation} created at {dir_created_unix_ns} ns: another data dir shipped under this name; give this dir its own --instance"
    )]
    InstanceMismatch {
        /// namespace.table
        table: String,
        /// The instance name.
        instance: String,
        /// Shard folder index.
        shard: u64,
        /// Segment seq.
        seq: u64,
        /// Generation recorded in the table.
        table_generation: u64,
        /// Creation time recorded in the table.
        table_created_unix_ns: u64,
        /// The data dir.
        dir: PathBuf,
        /// Generation in the segment header on disk.
        dir_generation: u64,
        /// Creation time in the segment header on disk.
        dir_created_unix_ns: u64,
    },

    /// A sealed segment has damage (a bad header, a frame failing its CRC,
    /// an invalid record payload).
    #[error(
        "damaged segment {path}: offset {offset}, frame {frame}: {reason}; nothing of this segment or later ones of its shard was shipped; inspect it with `ringstore-log verify {path}`"
    )]
    DamagedSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// Frame number within the segment, from 1 (0 = header).
        frame: u64,
        /// What is wrong.
        reason: String,
    },

    /// Concurrent commits kept winning over ours.
    #[error(
        "table {table}: gave up after {attempts} commit attempts lost to concurrent writers; nothing is lost, rerun to continue"
    )]
    CommitContention {
        /// namespace.table
        table: String,
        /// Attempts made.
        attempts: u32,
    },

    /// Reading the data dir failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// Writing the watermark file failed.
    #[error(
        "writing the shipped watermark {}: {source}; the commit itself succeeded, the next run rewrites it",
        path.display()
    )]
    Watermark {
        /// The watermark file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// Converting rows to Arrow / Parquet failed.
    #[error("converting {}: {reason}", path.display())]
    Convert {
        /// The segment.
        path: PathBuf,
        /// What failed.
        reason: String,
    },

    /// Walking the data dir failed (listing, reading).
    #[error("{0}")]
    Log(#[from] ringstore_log::ToolError),
}

impl ShipError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ShipError::DamagedSegment { .. } => EXIT_DAMAGED,
            ShipError::CatalogUnreachable { .. }
            | ShipError::Catalog { .. }
            | ShipError::CommitContention { .. } => EXIT_UNREACHABLE,
            ShipError::BadCredentials { .. } => EXIT_CREDENTIALS,
            ShipError::IncompatibleSchema { .. } | ShipError::InstanceMismatch { .. } => {
                EXIT_INCOMPATIBLE
            }
            ShipError::Usage(_)
            | ShipError::Io { .. }
            | ShipError::Watermark { .. }
            | ShipError::Convert { .. }
            | ShipError::Log(_) => EXIT_ERROR,
        }
    }

    /// A short machine-readable name of the variant (the `error` field of
    /// the JSON summary).
    pub fn kind(&self) -> &'static str {
        match self {
            ShipError::Usage(_) => "usage",
            ShipError::CatalogUnreachable { .. } => "catalog_unreachable",
            ShipError::BadCredentials { .. } => "bad_credentials",
            ShipError::Catalog { .. } => "catalog",
            ShipError::IncompatibleSchema { .. } => "incompatible_schema",
            ShipError::InstanceMismatch { .. } => "instance_mismatch",
            ShipError::DamagedSegment { .. } => "damaged_segment",
            ShipError::CommitContention { .. } => "commit_contention",
            ShipError::Io { .. } => "io",
            ShipError::Watermark { .. } => "watermark",
            ShipError::Convert { .. } => "convert",
            ShipError::Log(_) => "io",
        }
    }

    /// Classifies an error of the Iceberg client met while doing `op`
    /// against the catalog at `uri`: transport failures, refused
    /// credentials, or anything else the server said.
    pub fn from_iceberg(uri: &str, op: &'static str, e: &iceberg::Error) -> Self {
        let reason = chain(e);
        let uri = uri.to_owned();
        match classify(&reason) {
            Failure::Transport => ShipError::CatalogUnreachable { uri, op, reason },
            Failure::Credentials => ShipError::BadCredentials { uri, op, reason },
            Failure::Other => ShipError::Catalog { uri, op, reason },
        }
    }
}

/// What kind of failure an Iceberg client error describes.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// No answer from the server (nothing was refused).
    Transport,
    /// The server refused the credentials.
    Credentials,
    /// The server answered with another error.
    Other,
}

/// Classifies an error chain by its text (the Iceberg client gives no
/// structured status). Transport failures are checked first: their text
/// holds the URI, whose port may contain any digits, so a status code is
/// matched only as a whole number.
fn classify(reason: &str) -> Failure {
    let lower = reason.to_ascii_lowercase();
    let transport = [
        "error sending request",
        "connection refused",
        "tcp connect",
        "connect error",
        "dns error",
        "timed out",
        "connection reset",
        "connection closed",
        "broken pipe",
    ];
    let refused = [
        "invalid_client",
        "unauthorized",
        "forbidden",
        "access denied",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "not authorized",
    ];
    if transport.iter().any(|w| lower.contains(w)) {
        Failure::Transport
    } else if refused.iter().any(|w| lower.contains(w))
        || has_number(&lower, "401")
        || has_number(&lower, "403")
    {
        Failure::Credentials
    } else {
        Failure::Other
    }
}

/// Whether `text` holds `number` with no digit right before or after it.
fn has_number(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text.get(..at).and_then(|t| t.chars().next_back());
        let after = text.get(at + number.len()..).and_then(|t| t.chars().next());
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// An error and its sources, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::{Failure, classify};

    /// Regression: a refused connection to a catalog on port 42401 was
    /// reported as refused credentials, because "401" was found in the port.
    #[test]
    fn a_port_holding_401_is_not_a_refused_credential() {
        let reason = "Unexpected => Failed to execute http request, source: error sending request \
                      for url (http://127.0.0.1:42401/v1/oauth/tokens): client error (Connect): \
                      tcp connect error: Connection refused (os error 111)";
        assert_eq!(classify(reason), Failure::Transport);
    }

    #[test]
    fn status_codes_count_only_as_whole_numbers() {
        assert_eq!(
            classify("Unexpected => Received response with unexpected status code 401"),
            Failure::Credentials
        );
        assert_eq!(
            classify("server said 403 for /v1/config"),
            Failure::Credentials
        );
        assert_eq!(
            classify("table at /data/14015 has no snapshot"),
            Failure::Other
        );
        assert_eq!(
            classify("S3 said SignatureDoesNotMatch"),
            Failure::Credentials
        );
    }
}
