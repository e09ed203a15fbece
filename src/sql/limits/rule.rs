//! The analyzer rule of the bounded sessions: it puts every function call of a statement
//! under the limits, wherever the call came from (the session's functions, SQL syntax such
//! as `[a, b]`, `OVERLAY` or `array || array`, which the planner turns into calls of
//! built-in functions directly, or `||` of strings, which it rewrites into a call).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{AggregateFunction, ScalarFunction};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;

use super::StatementLimits;
use super::aggregate::{BoundedAggregate, amplifies};
use super::concat::StrictConcat;
use super::scalar::Bounded;

/// The rule's name, by which a session is seen to have it.
pub(super) const NAME: &str = "jammi_bound_statements";

/// Puts every call of a plan under the limits of the session it is analyzed in.
#[derive(Debug)]
pub(super) struct BoundStatements {
    concat: Arc<ScalarUDF>,
}

impl BoundStatements {
    pub(super) fn new() -> Self {
        BoundStatements {
            concat: Arc::new(Bounded::wrap(Arc::new(ScalarUDF::new_from_impl(
                StrictConcat::new(),
            )))),
        }
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        limits: StatementLimits,
    ) -> Result<Transformed<Expr>> {
        expr.transform_up(|e| {
            Ok(match e {
                Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::StringConcat,
                    right,
                }) if concatenable(&left.get_type(schema)?) => {
                    Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                        Arc::clone(&self.concat),
                        vec![*left, *right],
                    )))
                }
                Expr::AggregateFunction(AggregateFunction { func, params })
                    if amplifies(&func, false) =>
                {
                    Transformed::yes(Expr::AggregateFunction(AggregateFunction {
                        func: Arc::new(BoundedAggregate::wrap(func, limits, false)),
                        params,
                    }))
                }
                Expr::WindowFunction(mut window) => {
                    let bounded = match &window.fun {
                        WindowFunctionDefinition::AggregateUDF(func) if amplifies(func, true) => {
                            Some(BoundedAggregate::wrap(Arc::clone(func), limits, true))
                        }
                        _ => None,
                    };
                    match bounded {
                        Some(func) => {
                            window.fun = WindowFunctionDefinition::AggregateUDF(Arc::new(func));
                            Transformed::yes(Expr::WindowFunction(window))
                        }
                        None => Transformed::no(Expr::WindowFunction(window)),
                    }
                }
                other => bound_call(other),
            })
        })
    }
}

/// `expr` with the function it calls under the limits, if it is a call of a scalar
/// function that is not yet. Async functions (the catalog's own) are left as they are:
/// they build one small value per row.
pub(super) fn bound_call(expr: Expr) -> Transformed<Expr> {
    match expr {
        Expr::ScalarFunction(ScalarFunction { func, args })
            if func.as_async().is_none() && func.inner().downcast_ref::<Bounded>().is_none() =>
        {
            Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func: Arc::new(Bounded::wrap(func)),
                args,
            }))
        }
        other => Transformed::no(other),
    }
}

/// The types `||` joins with Arrow's kernel (after type coercion both sides have one).
fn concatenable(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

impl AnalyzerRule for BoundStatements {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let limits = config
            .extensions
            .get::<StatementLimits>()
            .copied()
            .unwrap_or_default();
        plan.transform_up_with_subqueries(|node| {
            // The expressions of a node are typed by the schemas of its inputs.
            let schema = match node.inputs().as_slice() {
                [] => Arc::clone(node.schema()),
                [input] => Arc::clone(input.schema()),
                inputs => {
                    let mut merged = DFSchema::empty();
                    for input in inputs {
                        merged.merge(input.schema());
                    }
                    Arc::new(merged)
                }
            };
            let rewritten = node.map_expressions(|e| self.rewrite(e, &schema, limits))?;
            if rewritten.transformed {
                rewritten.map_data(|n| n.recompute_schema())
            } else {
                Ok(rewritten)
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        NAME
    }
}
