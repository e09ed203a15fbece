-- Step 4, per tenant: the leaderboard of every model this tenant can see, joining the
-- catalog (models, eval runs) with the tenant's own data (serving costs).
CREATE EXTERNAL TABLE costs STORED AS CSV LOCATION 'examples/data/model_costs.csv'
OPTIONS ('format.has_header' 'true');

SELECT m.model_id,
       m.version,
       CASE WHEN m.tenant_id IS NULL THEN 'global' ELSE 'own' END AS owner,
       m.base_model_id,
       -- metrics is JSON text: {"ndcg": 0.768}
       CAST(regexp_match(e.metrics, '"ndcg":\s*([0-9.]+)')[1] AS DOUBLE) AS ndcg,
       c.usd_per_million_tokens AS cost
FROM jammi.public.eval_runs e
JOIN jammi.public.models m ON m.model_id = e.model_id AND m.version = e.model_version
LEFT JOIN costs c ON c.model_id = m.model_id
ORDER BY ndcg DESC, m.model_id;
