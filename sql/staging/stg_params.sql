-- stg_params: the run's parameters, set by the reconcile step with SET VARIABLE before the marts are built.
-- Kind: view
-- Grain: one row per run (a single row).
-- Reads: none.
-- Variables: as_of (date), carryover_due (MM-DD, default 06-30).
select
    cast(getvariable('as_of') as date) as as_of,
    coalesce(cast(getvariable('carryover_due') as varchar), '06-30') as carryover_due
