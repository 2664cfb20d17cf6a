-- Everything spent so far is forgotten: every principal starts the day with
-- its whole allowance.
DROP TABLE daily_usage;
