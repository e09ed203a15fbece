-- Step 1, unscoped: the global base models every tenant can build on.
SELECT register_model('sentence-transformers/all-MiniLM-L6-v2', 1, 'embedding', 'candle', 'text_embedding',
                      NULL, '/models/minilm-l6-v2', '{"dim": 384}') AS version;
SELECT register_model('BAAI/bge-small-en-v1.5', 1, 'embedding', 'candle', 'text_embedding',
                      NULL, '/models/bge-small-en-v1.5', '{"dim": 384}') AS version;
