//! Prepared-statement handles that carry the whole statement, so the server keeps no state:
//! a handle made by one server runs on any other serving the same catalog (SPEC §11).
//!
//! A handle holds the SQL and, once bound, the parameter rows as an Arrow IPC stream. It
//! never holds a scope: every call takes its scope from its own token.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use prost::Message;
use tonic::Status;

#[derive(Clone, PartialEq, Message)]
pub struct Handle {
    /// The statement as the client prepared it.
    #[prost(string, tag = "1")]
    pub sql: String,
    /// The bound parameter rows as an Arrow IPC stream; empty when nothing is bound.
    #[prost(bytes = "vec", tag = "2")]
    pub parameters: Vec<u8>,
}

impl Handle {
    pub fn new(sql: impl Into<String>) -> Handle {
        Handle {
            sql: sql.into(),
            parameters: Vec::new(),
        }
    }

    /// This statement with `batches` bound as its parameter rows.
    pub fn bound(&self, batches: &[RecordBatch]) -> Result<Handle, Status> {
        let Some(first) = batches.first() else {
            return Ok(Handle::new(self.sql.clone()));
        };
        let mut writer = StreamWriter::try_new(Vec::new(), &first.schema()).map_err(internal)?;
        for batch in batches {
            writer.write(batch).map_err(internal)?;
        }
        Ok(Handle {
            sql: self.sql.clone(),
            parameters: writer.into_inner().map_err(internal)?,
        })
    }

    /// The bound parameter rows, as batches (none when nothing is bound).
    pub fn parameters(&self) -> Result<Vec<RecordBatch>, Status> {
        if self.parameters.is_empty() {
            return Ok(Vec::new());
        }
        StreamReader::try_new(self.parameters.as_slice(), None)
            .and_then(|reader| reader.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Status::invalid_argument(format!("malformed statement handle: {e}")))
    }

    pub fn encode(&self) -> bytes::Bytes {
        self.encode_to_vec().into()
    }

    pub fn decode_from(bytes: &[u8]) -> Result<Handle, Status> {
        Handle::decode(bytes)
            .map_err(|e| Status::invalid_argument(format!("malformed statement handle: {e}")))
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(format!("cannot encode the statement handle: {e}"))
}
