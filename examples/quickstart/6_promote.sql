-- Step 6, as tenant acme: version 2 scored better; move the champion alias to it (an
-- INSERT on the aliases table sets or moves an alias, like set_model_alias) and tag it.
INSERT INTO jammi.public.model_aliases (model_id, alias, version)
VALUES ('acme/support-embed', 'champion', 2);
SELECT set_model_tag('acme/support-embed', 2, 'approved_by', 'ml-lead') AS tagged;
