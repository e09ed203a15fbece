-- Step 3, as tenant globex: its own fine-tune, scored on the same benchmark.
CREATE EXTERNAL TABLE scores STORED AS CSV LOCATION 'examples/data/globex_scores.csv'
OPTIONS ('format.has_header' 'true');

SELECT register_model('globex/legal-embed', 1, 'embedding', 'candle', 'text_embedding',
                      'BAAI/bge-small-en-v1.5', '/globex/legal-embed-1') AS version;

INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics)
SELECT 'globex-' || model_id || '-v' || CAST(version AS VARCHAR), model_id, version, benchmark,
       '{"ndcg": ' || CAST(ndcg_at_10 AS VARCHAR) || '}'
FROM scores;
