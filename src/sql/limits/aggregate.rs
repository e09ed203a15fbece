//! `string_agg` under the limits.
//!
//! An aggregate keeps its state in the query's memory pool, which charges it after every
//! batch, and most aggregates' state grows by at most the batch they read. `string_agg` is
//! the built-in that builds more than it reads: it writes its delimiter once per value, so
//! a long delimiter over one batch (8 192 rows) builds thousands of times its input before
//! the pool sees it, and its ordered form joins every value it kept only when it answers.
//! The bounded sessions wrap it: each accumulator counts what its answer will hold (every
//! value, and a delimiter per value) and refuses a batch that would take that over the
//! limit before the batch is added. As a window function an aggregate's answer is copied
//! into every row of its partition (`string_agg(…) OVER ()`), so there the count is the
//! answer times the rows, and `array_agg`, whose answer grows the same way, is wrapped too.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, GenericListArray, OffsetSizeTrait,
};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{
    AggregateFunction, AggregateFunctionParams, WindowFunctionParams,
};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, Expr, GroupsAccumulator,
    Operator, ReversedUDAF, SetMonotonicity, Signature, StatisticsArgs,
};
use datafusion::physical_expr::expressions::Literal;

use super::estimate::array_bytes;
use super::{StatementLimits, deadline_passed, too_large};

/// Whether `function` builds more than it reads and needs [`BoundedAggregate`]: as an
/// aggregate, `string_agg`; as a window function also `array_agg`, whose answer grows
/// with its input and is copied into every row of the window's partition.
pub(super) fn amplifies(function: &AggregateUDF, window: bool) -> bool {
    let grows = match function.name() {
        "string_agg" => true,
        "array_agg" => window,
        _ => false,
    };
    grows
        && function
            .inner()
            .downcast_ref::<BoundedAggregate>()
            .is_none()
}

/// Whether `function` is under the limits (wrapped by the rule).
pub(super) fn is_bounded(function: &AggregateUDF) -> bool {
    function
        .inner()
        .downcast_ref::<BoundedAggregate>()
        .is_some()
}

/// An aggregate function whose accumulators count what their answer will hold.
#[derive(Debug)]
pub(super) struct BoundedAggregate {
    inner: Arc<AggregateUDF>,
    limits: StatementLimits,
    /// Called as a window function: its answer is copied into each row it read.
    window: bool,
}

impl BoundedAggregate {
    pub(super) fn wrap(
        inner: Arc<AggregateUDF>,
        limits: StatementLimits,
        window: bool,
    ) -> AggregateUDF {
        AggregateUDF::new_from_impl(BoundedAggregate {
            inner,
            limits,
            window,
        })
    }

    fn inner(&self) -> &dyn AggregateUDFImpl {
        self.inner.inner().as_ref()
    }

    /// The count of one accumulator: the delimiter is the call's second argument (a
    /// literal; anything else `string_agg` refuses by itself).
    fn budget(&self, args: &AccumulatorArgs) -> Budget {
        let delimiter = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| l.value().try_as_str().flatten().map(str::len))
            .unwrap_or(0);
        Budget {
            name: self.inner.name().to_owned(),
            delimiter: delimiter as u128,
            held: 0,
            rows: 0,
            window: self.window,
            limits: self.limits,
        }
    }
}

impl PartialEq for BoundedAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for BoundedAggregate {}

impl Hash for BoundedAggregate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

// Delegates every method to the wrapped function but those that make an accumulator, which
// wrap it, and those that return another function, which wrap that.
#[warn(clippy::missing_trait_methods)]
impl AggregateUDFImpl for BoundedAggregate {
    fn name(&self) -> &str {
        self.inner().name()
    }

    fn aliases(&self) -> &[String] {
        self.inner().aliases()
    }

    fn schema_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner().schema_name(params)
    }

    fn human_display(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner().human_display(params)
    }

    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner().window_function_schema_name(params)
    }

    fn display_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner().display_name(params)
    }

    fn window_function_display_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner().window_function_display_name(params)
    }

    fn signature(&self) -> &Signature {
        self.inner().signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner().return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner().return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.inner().is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let budget = self.budget(&acc_args);
        let inner = self.inner().accumulator(acc_args)?;
        Ok(Box::new(Bounded { inner, budget }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner().state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let budget = self.budget(&args);
        let inner = self.inner().create_groups_accumulator(args)?;
        Ok(Box::new(BoundedGroups { inner, budget }))
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let budget = self.budget(&args);
        let inner = self.inner().create_sliding_accumulator(args)?;
        Ok(Box::new(Bounded { inner, budget }))
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let updated =
            Arc::clone(self.inner.inner()).with_beneficial_ordering(beneficial_ordering)?;
        Ok(updated.map(|inner| {
            Arc::new(BoundedAggregate {
                inner: Arc::new(AggregateUDF::new_from_shared_impl(inner)),
                limits: self.limits,
                window: self.window,
            }) as Arc<dyn AggregateUDFImpl>
        }))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner().order_sensitivity()
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner().simplify()
    }

    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner()
            .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        match self.inner().reverse_expr() {
            ReversedUDAF::Reversed(reversed) => ReversedUDAF::Reversed(Arc::new(
                BoundedAggregate::wrap(reversed, self.limits, self.window),
            )),
            other => other,
        }
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner().coerce_types(arg_types)
    }

    fn is_descending(&self) -> Option<bool> {
        self.inner().is_descending()
    }

    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner().value_from_stats(statistics_args)
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner().default_value(data_type)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner().supports_null_handling_clause()
    }

    fn supports_within_group_clause(&self) -> bool {
        self.inner().supports_within_group_clause()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner().documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner().set_monotonicity(data_type)
    }
}

/// What one accumulator's answer will hold, at most, and for a window function what the
/// copies of it will.
#[derive(Debug)]
struct Budget {
    name: String,
    delimiter: u128,
    held: u128,
    /// Rows read; as a window function, each gets a copy of (up to) the answer.
    rows: u128,
    window: bool,
    limits: StatementLimits,
}

impl Budget {
    /// Counts the values of `arrays` (input values, or the states of other accumulators,
    /// whose strings are counted the same way), refusing them if the answer (or its copies)
    /// would exceed the limit; checks the deadline too.
    fn admit(&mut self, arrays: &[ArrayRef]) -> Result<()> {
        deadline_passed(&self.limits)?;
        let Some(first) = arrays.first() else {
            return Ok(());
        };
        let (values, bytes) = strings(first.as_ref());
        let held = self
            .held
            .saturating_add(bytes)
            .saturating_add(values.saturating_mul(self.delimiter));
        let rows = self.rows.saturating_add(first.len() as u128);
        let built = if self.window {
            held.saturating_mul(rows)
        } else {
            held
        };
        if built > self.limits.max_value_bytes as u128 {
            return Err(too_large(&self.name, built, &self.limits, true).into_datafusion());
        }
        (self.held, self.rows) = (held, rows);
        Ok(())
    }
}

/// The number of string values in `array` (in its lists, for a list) and their bytes; for
/// any other type, its length and its size in memory.
fn strings(array: &dyn Array) -> (u128, u128) {
    let present = (array.len() - array.null_count()) as u128;
    match array.data_type() {
        DataType::Utf8 => {
            let offsets = array.as_string::<i32>().value_offsets();
            (present, (offsets[offsets.len() - 1] - offsets[0]) as u128)
        }
        DataType::LargeUtf8 => {
            let offsets = array.as_string::<i64>().value_offsets();
            (present, (offsets[offsets.len() - 1] - offsets[0]) as u128)
        }
        DataType::Utf8View => {
            let lengths = array.as_string_view().views().iter().map(|v| *v as u32);
            (present, lengths.map(u128::from).sum())
        }
        DataType::List(_) => strings(listed(array.as_list::<i32>()).as_ref()),
        DataType::LargeList(_) => strings(listed(array.as_list::<i64>()).as_ref()),
        _ => (present, array_bytes(array)),
    }
}

/// The values in the lists of `list` (a slice's own, not its whole child array).
fn listed<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> ArrayRef {
    let offsets = list.value_offsets();
    let (start, end) = (offsets[0].as_usize(), offsets[offsets.len() - 1].as_usize());
    list.values().slice(start, end - start)
}

/// An accumulator under a [`Budget`].
#[derive(Debug)]
struct Bounded {
    inner: Box<dyn Accumulator>,
    budget: Budget,
}

impl Accumulator for Bounded {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.budget.admit(values)?;
        self.inner.update_batch(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.budget.admit(states)?;
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

/// A groups accumulator under a [`Budget`] for all its groups together. What it has
/// emitted no longer counts: after an emit, it holds what it still has in memory.
struct BoundedGroups {
    inner: Box<dyn GroupsAccumulator>,
    budget: Budget,
}

impl BoundedGroups {
    fn emitted(&mut self) {
        self.budget.held = self.inner.size() as u128;
    }
}

impl GroupsAccumulator for BoundedGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.budget.admit(values)?;
        self.inner
            .update_batch(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let answer = self.inner.evaluate(emit_to);
        self.emitted();
        answer
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let state = self.inner.state(emit_to);
        self.emitted();
        state
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.budget.admit(values)?;
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        deadline_passed(&self.budget.limits)?;
        self.inner.convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ListArray, StringArray};
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    #[test]
    fn strings_are_counted_in_lists_and_slices() {
        let s = StringArray::from(vec![Some("ab"), None, Some("cde")]);
        assert_eq!(strings(&s), (2, 5));
        assert_eq!(strings(&s.slice(1, 2)), (1, 3));
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1)]),
            Some(vec![Some(2), Some(3)]),
        ]);
        assert_eq!(strings(&list).0, 3);
        assert_eq!(
            strings(&list.slice(1, 1)).0,
            2,
            "a slice counts its own values"
        );
    }

    #[test]
    fn a_budget_refuses_the_batch_that_would_exceed_it() {
        let mut budget = Budget {
            name: "string_agg".to_owned(),
            delimiter: 10,
            held: 0,
            rows: 0,
            window: false,
            limits: StatementLimits {
                max_value_bytes: 100,
                ..StatementLimits::default()
            },
        };
        let batch: ArrayRef = Arc::new(StringArray::from(vec!["abcd"; 5]));
        budget.admit(std::slice::from_ref(&batch)).unwrap();
        assert_eq!(budget.held, 5 * (4 + 10));
        let refused = budget
            .admit(std::slice::from_ref(&batch))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("string_agg() would build"), "{refused}");
        assert_eq!(budget.held, 70, "a refused batch is not counted");
        // As a window function, the answer is copied into each of the 5 rows.
        (budget.window, budget.held, budget.rows) = (true, 0, 0);
        let refused = budget.admit(&[batch]).unwrap_err().to_string();
        assert!(refused.contains("would build 350 bytes"), "{refused}");
    }
}
