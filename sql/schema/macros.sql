-- Exact arithmetic helpers. DuckDB divides DECIMALs in DOUBLE, so rates are computed on integer fen (HUGEINT)
-- and rounded half away from zero (四舍五入) before becoming DECIMAL again. Persisted: analysts can use them too.

-- yuan DECIMAL(18,2) -> integer fen
create or replace macro fen(x) as cast(x * 100 as hugeint);

-- n / d rounded half away from zero to an integer, exactly; NULL when d is 0 or NULL
create or replace macro div_half_up(n, d) as
case
    when d is null or d = 0 then null
    else sign(n) * sign(d) * ((2 * abs(n) + abs(d)) // (2 * abs(d)))
end;

-- num / den as a fraction with 12 decimals (0.344943820225)
create or replace macro rate_fraction(num, den) as
cast(cast(div_half_up(fen(num) * 1000000000000, fen(den)) as decimal(38, 0)) * 0.000000000001 as decimal(24, 12));

-- num / den in percent with one decimal (34.5), rounded half-up from the exact value
create or replace macro rate_pct(num, den) as
cast(cast(div_half_up(fen(num) * 1000, fen(den)) as decimal(38, 0)) * 0.1 as decimal(12, 1));

-- num / den * 100 with two decimals (percentage points, 15.25)
create or replace macro pp2(num, den) as
cast(cast(div_half_up(fen(num) * 10000, fen(den)) as decimal(38, 0)) * 0.01 as decimal(14, 2));

-- 得分 of the 自评表: weight × num / den kept within [0, weight], half-up to two decimals; NULL when den is 0.
-- weight has at most four decimals (分值 such as 10 or 7.5).
create or replace macro bounded_score(weight, num, den) as
case
    when den is null or den = 0 then null
    when (den > 0 and num >= den) or (den < 0 and num <= den)
        then cast(cast(div_half_up(cast(weight * 10000 as hugeint), 100) as decimal(38, 0)) * 0.01 as decimal(14, 2))
    when sign(num) * sign(den) <= 0 then cast(0 as decimal(14, 2))
    else cast(
        cast(div_half_up(fen(num) * cast(weight * 10000 as hugeint), fen(den) * 100) as decimal(38, 0)) * 0.01
        as decimal(14, 2)
    )
end;
