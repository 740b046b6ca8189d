/*-------------------------------------------------------------------------
 * stats.c
 *		Counters a monitoring system can scrape, the way pg_stat_statements
 *		exposes its own: per change kind, how many breaking changes were
 *		refused, warned about (rollguard.enforce = warn), let through
 *		silently (off) or by an override; and how many statements the guard
 *		and the dry run checked, and changes they judged.  Cluster-wide, in
 *		shared memory, since the server started or rollguard.stats_reset().
 *
 * Counting is one atomic add, done only where a change is judged (never on
 * the statements the guard lets pass without looking).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "rollguard.h"

typedef struct StatsShared
{
	pg_atomic_uint64 counters[RG_NUM_STATS];
	pg_atomic_uint64 outcomes[RG_NUM_CHANGE_KINDS][RG_NUM_OUTCOMES];
	slock_t		mutex;			/* protects reset */
	TimestampTz reset;
} StatsShared;

static StatsShared *stats = NULL;

PG_FUNCTION_INFO_V1(rollguard_stats);
PG_FUNCTION_INFO_V1(rollguard_stats_info);
PG_FUNCTION_INFO_V1(rollguard_stats_reset);

void
rg_stats_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(StatsShared)));
}

void
rg_stats_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	stats = ShmemInitStruct("rollguard stats", sizeof(StatsShared), &found);
	if (!found)
	{
		for (int i = 0; i < RG_NUM_STATS; i++)
			pg_atomic_init_u64(&stats->counters[i], 0);
		for (int k = 0; k < RG_NUM_CHANGE_KINDS; k++)
			for (int o = 0; o < RG_NUM_OUTCOMES; o++)
				pg_atomic_init_u64(&stats->outcomes[k][o], 0);
		SpinLockInit(&stats->mutex);
		stats->reset = GetCurrentTimestamp();
	}
	LWLockRelease(AddinShmemInitLock);
}

void
rg_stats_count(RgStat which)
{
	if (stats != NULL)
		pg_atomic_fetch_add_u64(&stats->counters[which], 1);
}

void
rg_stats_outcome(RgChangeKind kind, RgOutcome outcome)
{
	if (stats != NULL)
		pg_atomic_fetch_add_u64(&stats->outcomes[kind][outcome], 1);
}

static void
require_stats(void)
{
	if (stats == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollguard must be loaded via \"shared_preload_libraries\""),
				 errdetail("Its counters live in shared memory set up at server start.")));
}

static const char *
rule_word(RgRuleClass rule)
{
	switch (rule)
	{
		case RG_RULE_USES_COLUMN:
			return "uses column";
		case RG_RULE_USES_RELATION:
			return "uses relation";
		case RG_RULE_MAY_WRITE_NULL:
			return "may write NULL";
		case RG_RULE_INSERTS_WITHOUT:
			return "inserts without";
		case RG_RULE_WRITES_COLUMN:
			return "writes column";
		case RG_RULE_INSERTS_INTO:
			return "inserts into";
	}
	return "";
}

/*
 * rollguard._stats(): one row per change kind (change, rule, refused,
 * warned, let_through, overridden).
 */
Datum
rollguard_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	require_stats();
	InitMaterializedSRF(fcinfo, 0);
	for (int k = 0; k < RG_NUM_CHANGE_KINDS; k++)
	{
		const RgChangeDesc *desc = rg_change_desc(k);
		Datum		values[2 + RG_NUM_OUTCOMES];
		bool		nulls[2 + RG_NUM_OUTCOMES] = {0};

		values[0] = CStringGetTextDatum(desc->label);
		values[1] = CStringGetTextDatum(rule_word(desc->rule));
		for (int o = 0; o < RG_NUM_OUTCOMES; o++)
			values[2 + o] = Int64GetDatum((int64) pg_atomic_read_u64(&stats->outcomes[k][o]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * rollguard._stats_info(): statements the guard checked, dry-run
 * statements, changes judged, and when the counters were last reset.
 */
Datum
rollguard_stats_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[RG_NUM_STATS + 1];
	bool		nulls[RG_NUM_STATS + 1] = {0};
	TimestampTz reset;

	require_stats();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	for (int i = 0; i < RG_NUM_STATS; i++)
		values[i] = Int64GetDatum((int64) pg_atomic_read_u64(&stats->counters[i]));
	SpinLockAcquire(&stats->mutex);
	reset = stats->reset;
	SpinLockRelease(&stats->mutex);
	values[RG_NUM_STATS] = TimestampTzGetDatum(reset);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* rollguard.stats_reset(): every counter back to zero. */
Datum
rollguard_stats_reset(PG_FUNCTION_ARGS)
{
	require_stats();
	for (int i = 0; i < RG_NUM_STATS; i++)
		pg_atomic_write_u64(&stats->counters[i], 0);
	for (int k = 0; k < RG_NUM_CHANGE_KINDS; k++)
		for (int o = 0; o < RG_NUM_OUTCOMES; o++)
			pg_atomic_write_u64(&stats->outcomes[k][o], 0);
	SpinLockAcquire(&stats->mutex);
	stats->reset = GetCurrentTimestamp();
	SpinLockRelease(&stats->mutex);
	PG_RETURN_VOID();
}
