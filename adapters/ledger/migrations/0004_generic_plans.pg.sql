-- Plan the batch functions' statements once per connection instead of at every call.
--
-- Their parameters are arrays. PostgreSQL plans a statement with parameters afresh for
-- each of its first five runs, then keeps the generic plan only if its estimated cost is
-- no higher than the custom plans' average. A generic plan cannot see an array's length,
-- so it is estimated at more rows than a small batch's custom plans, and it was never
-- chosen: every statement of every batch was planned again. On this project's 2-core test
-- machine ledger_batch_read took 0.8 to 1.2 ms for a batch of one settlement, nearly all
-- of it planning, and 0.13 to 0.17 ms with the generic plans.
--
-- The generic plans are the plans these functions were written for: every lookup is an
-- index probe per key (LATERAL subqueries in the reads, scan and join types switched off
-- in the write), whatever the planner estimates for the arrays.

ALTER FUNCTION ledger_batch_read SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ledger_batch_write_rows SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION journal_check_balanced_set SET plan_cache_mode = force_generic_plan;
