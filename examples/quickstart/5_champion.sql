-- Step 5, as tenant acme: make version 1 of the fine-tune the champion.
SELECT set_model_alias('acme/support-embed', 'champion', 1) AS promoted;
