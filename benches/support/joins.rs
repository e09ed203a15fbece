//! The `joins` group's catalog (issue 25, SPEC §15) and its questions, through the catalog
//! and written by hand against the database.
//!
//! Two tenants, each with 20 000 models (one version), a `champion` alias on every
//! hundredth (200), and 10 eval runs per model (200 000). At 10× the history every model
//! that is not a champion gets 91 more runs (2 000 000 per tenant), so each question has
//! the same answer at both sizes. Models come through the catalog's own `INSERT`; runs and
//! aliases are written straight into the tables by one statement each (the same SQL on
//! both backends), which is what makes millions of rows affordable in a bench.

/// Models per tenant.
pub const MODELS: u64 = 20_000;

/// Every model gets runs 0..9; `{more}` adds runs 10..=100 to the models that are not
/// champions at 10× (`0` rows of that part at 1×).
pub fn eval_runs_statement(tenfold: bool) -> String {
    let last = if tenfold { 100 } else { 9 };
    format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
         INSERT INTO eval_runs \
           (owner, run_id, model_key, model_id, model_version, eval_type, metrics, created_at) \
         SELECT m.owner, 'run-' || m.model_id || '-' || n.i, m.model_key, m.model_id, \
           m.version, 'bench', '{{\"accuracy\": 0.5}}', m.created_at + n.i \
         FROM models m CROSS JOIN n \
         WHERE n.i < 10 OR m.model_id NOT LIKE '%00'"
    )
}

/// A `champion` alias on every hundredth model of each tenant.
pub const ALIASES: &str = "INSERT INTO model_aliases \
       (owner, model_id, alias, version, model_key, created_at, updated_at) \
     SELECT owner, model_id, 'champion', version, model_key, created_at, created_at \
     FROM models WHERE model_id LIKE '%00'";

/// One question: its name, its SQL through the catalog, the same written by hand against
/// the database (`$1` is the tenant), and the rows it answers.
pub struct Question {
    pub name: &'static str,
    pub catalog: &'static str,
    pub by_hand: &'static str,
    pub rows: usize,
}

pub const QUESTIONS: [Question; 3] = [
    Question {
        name: "champion_runs",
        catalog: "SELECT e.run_id, e.model_id, e.model_version, e.metrics, e.created_at \
             FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
               ON e.model_id = a.model_id AND e.model_version = a.version \
             WHERE a.alias = 'champion'",
        by_hand: "SELECT e.run_id, e.model_id, e.model_version, e.metrics, e.created_at \
             FROM model_aliases a JOIN eval_runs e \
               ON e.model_id = a.model_id AND e.model_version = a.version \
             WHERE a.owner IN ($1, '') AND a.alias = 'champion' AND e.owner IN ($1, '')",
        rows: 2_000,
    },
    Question {
        name: "champion_top10",
        catalog: "SELECT e.run_id, e.model_id, e.model_version, e.metrics, e.created_at \
             FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
               ON e.model_id = a.model_id AND e.model_version = a.version \
             WHERE a.alias = 'champion' ORDER BY e.created_at DESC, e.run_id LIMIT 10",
        by_hand: "SELECT e.run_id, e.model_id, e.model_version, e.metrics, e.created_at \
             FROM model_aliases a JOIN eval_runs e \
               ON e.model_id = a.model_id AND e.model_version = a.version \
             WHERE a.owner IN ($1, '') AND a.alias = 'champion' AND e.owner IN ($1, '') \
             ORDER BY e.created_at DESC, e.run_id LIMIT 10",
        rows: 10,
    },
    // model-0000100 is a champion: 10 runs at either size.
    Question {
        name: "one_model_runs",
        catalog: "SELECT m.model_id, m.version, e.run_id, e.metrics \
             FROM jammi.public.models m JOIN jammi.public.eval_runs e \
               ON e.model_id = m.model_id AND e.model_version = m.version \
             WHERE m.model_id = 'model-0000100'",
        by_hand: "SELECT m.model_id, m.version, e.run_id, e.metrics \
             FROM models m JOIN eval_runs e \
               ON e.model_id = m.model_id AND e.model_version = m.version \
             WHERE m.owner IN ($1, '') AND m.model_id = 'model-0000100' \
               AND e.owner IN ($1, '')",
        rows: 10,
    },
];
