//! A scalar function under the statement's limits (see `limits`).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{ExprSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, StructFieldMapping, Volatility,
};

use super::rule::bound_call;
use super::{StatementLimits, deadline_passed, estimate, too_large};
use crate::error::CatalogError;

/// A scalar function under the statement's limits.
#[derive(Debug)]
pub(super) struct Bounded {
    inner: Arc<ScalarUDF>,
    estimate: Option<estimate::Estimate>,
    /// The wrapped function's signature, volatile for a function with an estimate.
    signature: Signature,
}

impl Bounded {
    /// `inner` under the limits. A function whose output can be far larger than its input
    /// (one with an estimate, but for those whose output is at most their inputs) is made
    /// volatile: DataFusion then never folds a call of it with constant arguments while
    /// planning, which would put the value it builds into the plan, copied and printed by
    /// every step of planning after it; it runs when the statement runs, batch by batch,
    /// under the deadline.
    pub(super) fn wrap(inner: Arc<ScalarUDF>) -> ScalarUDF {
        let estimate = estimate::of(inner.name());
        let mut signature = inner.signature().clone();
        if estimate.is_some() && !estimate::is_additive(inner.name()) {
            signature.volatility = Volatility::Volatile;
        }
        ScalarUDF::new_from_impl(Bounded {
            inner,
            estimate,
            signature,
        })
    }

    /// The wrapped function's implementation.
    fn inner(&self) -> &dyn ScalarUDFImpl {
        self.inner.inner().as_ref()
    }
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

// Delegates every method to the wrapped function but `invoke_with_args`, which checks the
// limits around it, and `with_updated_config` and `simplify`, which keep the wrapper.
#[warn(clippy::missing_trait_methods)]
impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner().name()
    }

    fn aliases(&self) -> &[String] {
        self.inner().aliases()
    }

    fn display_name(&self, args: &[Expr]) -> Result<String> {
        #[expect(deprecated)]
        self.inner().display_name(args)
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner().return_field_from_args(args)
    }

    fn is_nullable(&self, args: &[Expr], schema: &dyn ExprSchema) -> bool {
        #[expect(deprecated)]
        self.inner().is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner().is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let limits = args
            .config_options
            .extensions
            .get::<StatementLimits>()
            .copied()
            .unwrap_or_default();
        deadline_passed(&limits)?;
        let name = self.inner.name();
        if estimate::never_ends(name, &args) {
            return Err(CatalogError::LimitExceeded(format!(
                "{name}() steps by an interval whose months, days and time do not all go the \
                 same way: such a range may never reach its end, so this server refuses it"
            ))
            .into_datafusion());
        }
        let max = limits.max_value_bytes as u128;
        if let Some(estimate) = self.estimate {
            let bytes = estimate(&args);
            if bytes > max {
                return Err(too_large(name, bytes, &limits, true).into_datafusion());
            }
        }
        let rows = args.number_rows.max(1) as u128;
        let output = self.inner().invoke_with_args(args)?;
        // A value for the whole batch is copied into each of its rows.
        let built = match &output {
            ColumnarValue::Array(array) => array.get_array_memory_size() as u128,
            ColumnarValue::Scalar(scalar) => (scalar.size() as u128).saturating_mul(rows),
        };
        if built > max {
            return Err(too_large(name, built, &limits, false).into_datafusion());
        }
        Ok(output)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner().with_updated_config(config)?;
        Some(Bounded::wrap(Arc::new(updated)))
    }

    /// The wrapped function's simplification, with the calls it makes (`concat(a, NULL, b)`
    /// becomes a call of the unwrapped `concat(a, b)`) under the limits again.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        Ok(match self.inner().simplify(args, info)? {
            ExprSimplifyResult::Simplified(expr) => {
                ExprSimplifyResult::Simplified(expr.transform_up(|e| Ok(bound_call(e)))?.data)
            }
            original => original,
        })
    }

    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        self.inner().preimage(args, lit_expr, info)
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner().conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner().short_circuits()
    }

    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.inner().evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner().propagate_constraints(interval, inputs)
    }

    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<StructFieldMapping> {
        self.inner().struct_field_mapping(literal_args)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner().output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner().preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner().strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner().coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner().documentation()
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner().placement(args)
    }
}
