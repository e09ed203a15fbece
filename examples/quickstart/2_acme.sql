-- Step 2, as tenant acme: register fine-tunes of the global base models and record the
-- evaluation scores that acme keeps in its own CSV file.
CREATE EXTERNAL TABLE scores STORED AS CSV LOCATION 'examples/data/acme_scores.csv'
OPTIONS ('format.has_header' 'true');

INSERT INTO jammi.public.models (model_id, version, model_type, backend, task, base_model_id, artifact_path)
VALUES ('acme/support-embed', 1, 'embedding', 'candle', 'text_embedding',
        'sentence-transformers/all-MiniLM-L6-v2', '/acme/support-embed-1'),
       ('acme/support-embed', 2, 'embedding', 'candle', 'text_embedding',
        'BAAI/bge-small-en-v1.5', '/acme/support-embed-2');

-- One eval run per scored model; the model reference resolves to acme's own row, or to
-- the global base model.
INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics)
SELECT 'acme-' || model_id || '-v' || CAST(version AS VARCHAR), model_id, version, benchmark,
       '{"ndcg": ' || CAST(ndcg_at_10 AS VARCHAR) || '}'
FROM scores;
