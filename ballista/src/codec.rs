//! The extension codecs that carry the catalog through Ballista: the catalog's nodes as
//! `jammi_catalog::sql::wire` encodes them, every other node by the codec they wrap
//! (Ballista's own, by default).
//!
//! Each buffer this codec writes for a table, a plan node or a function starts with one
//! byte that says whose it is: [`JAMMI`] or [`WRAPPED`], so a catalog node is never read by
//! the wrapped codec, nor its nodes by the catalog. A function the wrapped codec writes
//! nothing for stays empty, so that the receiving side finds it by name in its registry,
//! as it would without this codec.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{TableReference, exec_datafusion_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    AggregateUDF, Extension, HigherOrderUDF, LogicalPlan, ScalarUDF, WindowUDF,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use jammi_catalog::sql::wire;

use crate::stores::ProcessStores;

/// The first byte of a buffer holding a catalog node.
pub const JAMMI: u8 = b'J';
/// The first byte of a buffer holding the wrapped codec's bytes.
pub const WRAPPED: u8 = 0;

/// Whose bytes a buffer holds.
enum Framed<'a> {
    Jammi(&'a [u8]),
    Wrapped(&'a [u8]),
}

fn unframe(buf: &[u8]) -> Result<Framed<'_>> {
    match buf.split_first() {
        Some((&JAMMI, rest)) => Ok(Framed::Jammi(rest)),
        Some((&WRAPPED, rest)) => Ok(Framed::Wrapped(rest)),
        Some((tag, _)) => Err(exec_datafusion_err!(
            "decoding a plan node: unknown frame tag {tag}; was it encoded without the jammi \
             codec?"
        )),
        None => Err(exec_datafusion_err!("decoding a plan node: empty buffer")),
    }
}

/// Appends `jammi`'s bytes to `buf` when the node is the catalog's, else lets `wrapped`
/// write its own after the [`WRAPPED`] tag.
fn frame(
    buf: &mut Vec<u8>,
    jammi: Option<Result<Vec<u8>>>,
    wrapped: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    match jammi {
        Some(bytes) => {
            let bytes = bytes?;
            buf.push(JAMMI);
            buf.extend_from_slice(&bytes);
            Ok(())
        }
        None => {
            buf.push(WRAPPED);
            wrapped(buf)
        }
    }
}

/// As [`frame`], for functions: the wrapped codec's empty encoding stays empty.
fn frame_function(
    buf: &mut Vec<u8>,
    jammi: Option<Result<Vec<u8>>>,
    wrapped: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    if jammi.is_some() {
        return frame(buf, jammi, wrapped);
    }
    let mut theirs = Vec::new();
    wrapped(&mut theirs)?;
    if !theirs.is_empty() {
        buf.push(WRAPPED);
        buf.extend_from_slice(&theirs);
    }
    Ok(())
}

/// The logical codec: the catalog's tables and functions, and everything else by the
/// wrapped codec. The catalog's nodes carry their own grants: the client session bound
/// them while planning (`jammi_catalog::sql::shipping`), so the same codec serves every
/// client, scheduler and executor.
#[derive(Debug)]
pub struct JammiLogicalCodec {
    wrapped: Arc<dyn LogicalExtensionCodec>,
}

impl Default for JammiLogicalCodec {
    /// Wrapping Ballista's codec.
    fn default() -> Self {
        Self::wrapping(Arc::new(BallistaLogicalExtensionCodec::default()))
    }
}

impl JammiLogicalCodec {
    /// Wrapping `wrapped`.
    pub fn wrapping(wrapped: Arc<dyn LogicalExtensionCodec>) -> Self {
        JammiLogicalCodec { wrapped }
    }
}

impl LogicalExtensionCodec for JammiLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.wrapped.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.wrapped.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match unframe(buf)? {
            Framed::Jammi(bytes) => wire::decode_table(bytes, &ProcessStores),
            Framed::Wrapped(bytes) => self
                .wrapped
                .try_decode_table_provider(bytes, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let jammi = wire::encode_table(node.as_ref());
        frame(buf, jammi, |buf| {
            self.wrapped.try_encode_table_provider(table_ref, node, buf)
        })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.wrapped.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.wrapped.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        if buf.is_empty() {
            return self.wrapped.try_decode_udf(name, buf);
        }
        match unframe(buf)? {
            Framed::Jammi(bytes) => wire::decode_function(bytes, &ProcessStores),
            Framed::Wrapped(bytes) => self.wrapped.try_decode_udf(name, bytes),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        let jammi = wire::encode_function(node);
        frame_function(buf, jammi, |buf| self.wrapped.try_encode_udf(node, buf))
    }

    fn try_decode_higher_order_function(
        &self,
        name: &str,
        buf: &[u8],
    ) -> Result<Arc<HigherOrderUDF>> {
        self.wrapped.try_decode_higher_order_function(name, buf)
    }

    fn try_encode_higher_order_function(
        &self,
        node: &HigherOrderUDF,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.wrapped.try_encode_higher_order_function(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.wrapped.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.wrapped.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.wrapped.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.wrapped.try_encode_udwf(node, buf)
    }
}

/// The physical codec: the catalog's scans, `INSERT` sinks and functions, and everything
/// else by the wrapped codec; like [`JammiLogicalCodec`], the same for every process.
#[derive(Debug)]
pub struct JammiPhysicalCodec {
    wrapped: Arc<dyn PhysicalExtensionCodec>,
}

impl Default for JammiPhysicalCodec {
    /// Wrapping Ballista's codec.
    fn default() -> Self {
        Self::wrapping(Arc::new(BallistaPhysicalExtensionCodec::default()))
    }
}

impl JammiPhysicalCodec {
    /// Wrapping `wrapped`.
    pub fn wrapping(wrapped: Arc<dyn PhysicalExtensionCodec>) -> Self {
        JammiPhysicalCodec { wrapped }
    }
}

impl PhysicalExtensionCodec for JammiPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match unframe(buf)? {
            Framed::Jammi(bytes) => wire::decode_plan(bytes, inputs, &ProcessStores),
            Framed::Wrapped(bytes) => self.wrapped.try_decode(bytes, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let jammi = wire::encode_plan(node.as_ref());
        frame(buf, jammi, |buf| {
            self.wrapped.try_encode(node, buf, proto_converter)
        })
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        if buf.is_empty() {
            return self.wrapped.try_decode_udf(name, buf);
        }
        match unframe(buf)? {
            Framed::Jammi(bytes) => wire::decode_function(bytes, &ProcessStores),
            Framed::Wrapped(bytes) => self.wrapped.try_decode_udf(name, bytes),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        let jammi = wire::encode_function(node);
        frame_function(buf, jammi, |buf| self.wrapped.try_encode_udf(node, buf))
    }

    fn try_decode_higher_order_function(
        &self,
        name: &str,
        buf: &[u8],
    ) -> Result<Arc<HigherOrderUDF>> {
        self.wrapped.try_decode_higher_order_function(name, buf)
    }

    fn try_encode_higher_order_function(
        &self,
        node: &HigherOrderUDF,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.wrapped.try_encode_higher_order_function(node, buf)
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        self.wrapped.try_decode_expr(buf, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> Result<()> {
        self.wrapped.try_encode_expr(node, buf, ctx)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.wrapped.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.wrapped.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.wrapped.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.wrapped.try_encode_udwf(node, buf)
    }
}
