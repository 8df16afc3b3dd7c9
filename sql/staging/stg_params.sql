-- stg_params: the run's parameters, set by the reconcile step with SET VARIABLE before the marts are built.
-- Grain: one row.
-- Reads: session variables as_of (date) and carryover_due (MM-DD, default 06-30).
select
    cast(getvariable('as_of') as date) as as_of,
    coalesce(cast(getvariable('carryover_due') as varchar), '06-30') as carryover_due
