/*-------------------------------------------------------------------------
 * registry.c
 *		Reading and writing the registry through SPI: who uses a relation
 *		and how (the guard's detailed reads, which word a refusal), the
 *		removals deploy's forward check remembers, and rollguard.history.
 *
 * The guard runs as whoever runs the migration, who usually may not read the
 * registry tables.  Like the foreign-key triggers, it reads them as their
 * owner (the extension's owner), through SPI, with a saved plan whose SQL
 * names every object and operator schema-qualified.  (bench/guard_sql.py
 * reads the queries below from this file.)
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "registry.h"

static SPIPlanPtr pairs_plan = NULL;
static SPIPlanPtr usage_plan = NULL;
static SPIPlanPtr column_usage_plan = NULL;
static SPIPlanPtr not_null_usage_plan = NULL;
static SPIPlanPtr removal_plan = NULL;
static SPIPlanPtr history_plan = NULL;

typedef struct RegistryAccess
{
	Oid			save_userid;
	int			save_sec_context;
} RegistryAccess;

/* Connect to SPI as the extension's owner. */
static void
registry_begin(RegistryAccess *access)
{
	GetUserIdAndSecContext(&access->save_userid, &access->save_sec_context);
	SetUserIdAndSecContext(rg_registry_owner(), access->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "rollguard: SPI_connect failed");
}

static void
registry_end(RegistryAccess *access)
{
	SPI_finish();
	SetUserIdAndSecContext(access->save_userid, access->save_sec_context);
}

/*
 * Every lookup is by parameter and the registry's shape does not change
 * with them: plan once (a generic plan), rather than on every check.
 */
SPIPlanPtr
rg_prepare_saved(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
										  CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "rollguard: SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

/* The live (deployment, version) pairs: the registry's (unless $6 is
 * false), and tagged sessions' ($3, $4) that the registry does not list. */
#define LIVE_CTE \
	"WITH session AS (" \
	"  SELECT DISTINCT s.deployment, s.version" \
	"    FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4))" \
	"         AS s(deployment, version)" \
	"   WHERE NOT EXISTS (SELECT 1 FROM rollguard.deployment_state d" \
	"                      WHERE d.deployment OPERATOR(pg_catalog.=) s.deployment" \
	"                        AND d.version OPERATOR(pg_catalog.=) s.version))," \
	" live AS (" \
	"  SELECT d.deployment, d.version," \
	"         d.state OPERATOR(pg_catalog.=) 'rolling out' AS rolling_out," \
	"         false AS connected" \
	"    FROM rollguard.deployment_state d" \
	"   WHERE $6" \
	"  UNION ALL" \
	"  SELECT s.deployment, s.version, false, true FROM session s)"

/* sessions of versions without any contract: they count as using everything */
#define UNKNOWN_AND_ORDER \
	"  UNION ALL" \
	"  SELECT s.deployment, s.version, false, true, NULL, NULL, NULL" \
	"    FROM session s" \
	"   WHERE NOT EXISTS (SELECT 1 FROM rollguard.version_registry v" \
	"                      WHERE v.version OPERATOR(pg_catalog.=) s.version" \
	"                        AND (v.declared OR v.contract_taken_at IS NOT NULL))) u" \
	" ORDER BY rollguard.version_sort_key(u.deployment)," \
	"          u.deployment COLLATE pg_catalog.\"C\"," \
	"          rollguard.version_sort_key(u.version)," \
	"          u.version COLLATE pg_catalog.\"C\"," \
	"          u.attname COLLATE pg_catalog.\"C\""

/*
 * Live (deployment, version) pairs and their contract rows for one relation;
 * %s is an extra condition on the contract (one column, or none).
 */
#define USAGE_SQL LIVE_CTE \
	" SELECT u.* FROM (" \
	"  SELECT l.deployment, l.version, l.rolling_out, l.connected," \
	"         c.attname, c.writes, c.nullable" \
	"    FROM live l" \
	"    JOIN rollguard.effective_contract c" \
	"      ON c.version OPERATOR(pg_catalog.=) l.version" \
	"   WHERE c.nspname OPERATOR(pg_catalog.=) $1" \
	"     AND c.relname OPERATOR(pg_catalog.=) $2" \
	"%s" \
	UNKNOWN_AND_ORDER

/*
 * For the NOT NULL rules: per live version, its row for column $5 (if any)
 * and one other column it writes (if any: then it inserts into the
 * relation), joined to the live pairs that run it.  Two lookups a version,
 * however many deployments run it and columns its contract lists.
 */
#define NOT_NULL_USAGE_SQL LIVE_CTE \
	", per_version AS (" \
	"  SELECT v.version, x.attname, x.writes, x.nullable" \
	"    FROM (SELECT DISTINCT l.version FROM live l) v" \
	"   CROSS JOIN LATERAL (" \
	"     (SELECT c.attname, c.writes, c.nullable" \
	"        FROM rollguard.effective_contract c" \
	"       WHERE c.version OPERATOR(pg_catalog.=) v.version" \
	"         AND c.nspname OPERATOR(pg_catalog.=) $1" \
	"         AND c.relname OPERATOR(pg_catalog.=) $2" \
	"         AND c.attname OPERATOR(pg_catalog.=) $5)" \
	"     UNION ALL" \
	"     (SELECT w.attname, true, false" \
	"        FROM rollguard.effective_contract w" \
	"       WHERE w.nspname OPERATOR(pg_catalog.=) $1" \
	"         AND w.relname OPERATOR(pg_catalog.=) $2" \
	"         AND w.version OPERATOR(pg_catalog.=) v.version" \
	"         AND w.writes AND w.attname OPERATOR(pg_catalog.<>) $5" \
	"       LIMIT 1)) x)" \
	" SELECT u.* FROM (" \
	"  SELECT l.deployment, l.version, l.rolling_out, l.connected," \
	"         p.attname, p.writes, p.nullable" \
	"    FROM live l" \
	"    JOIN per_version p ON p.version OPERATOR(pg_catalog.=) l.version" \
	UNKNOWN_AND_ORDER

/*
 * SPI's result rows as RgUsage, in the caller's context (outer): deployment,
 * version, rolling_out, then (if full) connected, attname, writes,
 * nullable.
 */
static List *
usage_rows(MemoryContext outer, bool full)
{
	List	   *result = NIL;

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(outer);
		RgUsage    *u = palloc0(sizeof(RgUsage));

		u->deployment = SPI_getvalue(tup, desc, 1);
		u->version = SPI_getvalue(tup, desc, 2);
		u->rolling_out = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		if (full)
		{
			u->connected = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
			u->attname = SPI_getvalue(tup, desc, 5);
			u->writes = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
			u->nullable = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		}
		result = lappend(result, u);
		MemoryContextSwitchTo(spi);
	}
	return result;
}


/*
 * The (deployment, version) pairs the registry says are live for the given
 * versions (C strings): RgUsage heads without a contract row.  Allocated
 * in the caller's context.
 */
List *
rg_fetch_live_pairs(List *versions)
{
	MemoryContext outer = CurrentMemoryContext;
	RegistryAccess access;
	Datum		values[1];
	Datum	   *elems;
	int			n = list_length(versions);
	List	   *result = NIL;
	int			ret;

	elems = palloc(sizeof(Datum) * (n + 1));
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum((char *) list_nth(versions, i));
	values[0] = PointerGetDatum(construct_array(elems, n, TEXTOID,
												-1, false, TYPALIGN_INT));
	registry_begin(&access);
	if (pairs_plan == NULL)
	{
		Oid			argtypes[1] = {TEXTARRAYOID};

		pairs_plan = rg_prepare_saved(
			"SELECT d.deployment, d.version,"
			"       d.state OPERATOR(pg_catalog.=) 'rolling out'"
			"  FROM rollguard.deployment_state d"
			" WHERE d.version OPERATOR(pg_catalog.=) ANY ($1)",
			1, argtypes);
	}
	ret = SPI_execute_snapshot(pairs_plan, values, NULL, GetLatestSnapshot(),
							   InvalidSnapshot, true, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rollguard: registry query failed: %s",
			 SPI_result_code_string(ret));
	result = usage_rows(outer, false);
	registry_end(&access);
	return result;
}

/*
 * The first registered version, newer than after, from which on no
 * registered version's effective contract uses the relation (attname NULL)
 * or its column: the version every deployment must run before it may go.
 * NULL if there is none.  Allocated in the caller's context.
 */
char *
rg_fetch_successor_without(const char *nspname, const char *relname,
						   const char *attname, const char *after)
{
	static SPIPlanPtr successor_plan = NULL;
	MemoryContext outer = CurrentMemoryContext;
	RegistryAccess access;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *result = NULL;
	int			ret;

	values[0] = CStringGetTextDatum(nspname);
	values[1] = CStringGetTextDatum(relname);
	if (attname)
		values[2] = CStringGetTextDatum(attname);
	else
		nulls[2] = 'n';
	values[3] = CStringGetTextDatum(after);
	registry_begin(&access);
	if (successor_plan == NULL)
	{
		Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};

		successor_plan = rg_prepare_saved(
			"WITH last_user AS ("
			"  SELECT c.version FROM rollguard.effective_contract c"
			"   WHERE c.nspname OPERATOR(pg_catalog.=) $1"
			"     AND c.relname OPERATOR(pg_catalog.=) $2"
			"     AND ($3 IS NULL OR c.attname OPERATOR(pg_catalog.=) $3)"
			"   ORDER BY rollguard.version_sort_key(c.version) DESC LIMIT 1)"
			"SELECT v.version FROM rollguard.version_registry v"
			" WHERE rollguard.version_cmp(v.version, $4) OPERATOR(pg_catalog.>) 0"
			"   AND NOT EXISTS (SELECT 1 FROM last_user u"
			"        WHERE rollguard.version_cmp(v.version, u.version) OPERATOR(pg_catalog.<=) 0)"
			" ORDER BY rollguard.version_sort_key(v.version) LIMIT 1",
			4, argtypes);
	}
	ret = SPI_execute_snapshot(successor_plan, values, nulls, GetLatestSnapshot(),
							   InvalidSnapshot, true, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rollguard: registry query failed: %s",
			 SPI_result_code_string(ret));
	if (SPI_processed > 0)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		result = MemoryContextStrdup(outer, v);
	}
	registry_end(&access);
	return result;
}

/*
 * Every row of every live version's effective contract for one relation,
 * ordered by deployment and version.  Live are the versions the registry
 * says deployments run (unless registry is false: then only the others),
 * and those that tagged sessions connected now say they run (sessions: a
 * list of RgSession).  A session's version the registry has no contract
 * for (unknown, or registered without a manifest and never deployed)
 * yields one row with attname NULL.  Allocated in the caller's context.
 * Reads every live deployment: only for a change the counters say may
 * break something, to tell which deployments and why.
 */
List *
rg_fetch_usage(const char *nspname, const char *relname, const char *attname,
			   bool for_not_null, List *sessions, bool registry)
{
	MemoryContext outer = CurrentMemoryContext;
	RegistryAccess access;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Datum	   *deployments;
	Datum	   *versions;
	int			nsessions = list_length(sessions);
	List	   *result = NIL;
	SPIPlanPtr *plan = for_not_null ? &not_null_usage_plan :
		attname ? &column_usage_plan : &usage_plan;
	int			ret;

	deployments = palloc(sizeof(Datum) * (nsessions + 1));
	versions = palloc(sizeof(Datum) * (nsessions + 1));
	for (int i = 0; i < nsessions; i++)
	{
		RgSession  *sess = list_nth(sessions, i);

		deployments[i] = CStringGetTextDatum(sess->deployment);
		versions[i] = CStringGetTextDatum(sess->version);
	}
	values[0] = CStringGetTextDatum(nspname);
	values[1] = CStringGetTextDatum(relname);
	values[2] = PointerGetDatum(construct_array(deployments, nsessions, TEXTOID,
												-1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(versions, nsessions, TEXTOID,
												-1, false, TYPALIGN_INT));
	if (attname)
		values[4] = CStringGetTextDatum(attname);
	else
		nulls[4] = 'n';
	values[5] = BoolGetDatum(registry);

	registry_begin(&access);
	if (*plan == NULL)
	{
		Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTOID, BOOLOID};

		/*
		 * Three plans: every column of the relation (relation-level
		 * changes), one column (drop, rename, retype), where the contract's
		 * primary key finds just the versions that use it, and the NOT NULL
		 * rules' two probes per live pair.
		 */
		if (for_not_null)
			*plan = rg_prepare_saved(NOT_NULL_USAGE_SQL, 6, argtypes);
		else
			*plan = rg_prepare_saved(psprintf(USAGE_SQL,
										   attname ? "     AND c.attname OPERATOR(pg_catalog.=) $5" : ""),
								  6, argtypes);
	}
	/* the latest committed registry, whatever the isolation level */
	ret = SPI_execute_snapshot(*plan, values, nulls, GetLatestSnapshot(),
							   InvalidSnapshot, true, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rollguard: registry query failed: %s",
			 SPI_result_code_string(ret));

	result = usage_rows(outer, true);

	registry_end(&access);
	return result;
}

/*
 * Remembers the columns and relations that a statement removed (dropped,
 * renamed, moved away), so that deploy() can later tell a rollback past
 * that migration from a version whose new columns are still to come; and
 * the columns it made NOT NULL, so that deploy() can tell a version written
 * when the column took NULL from one written for it as it is.  Only
 * what some registered contract names: nothing else can be asked about
 * (a build registered later is not rolled back past the removal).  In a
 * transaction block this runs at the commit, under the registry lock
 * (net_effect.c): the time recorded is after every registration the
 * migration's last judgment saw, however long the transaction stayed open.
 */
void
rg_record_removals(List *changes)
{
	RegistryAccess access;
	ListCell   *lc;
	bool		connected = false;

	foreach(lc, changes)
	{
		RgChange   *ch = lfirst(lc);
		Datum		values[4];
		const char *label = rg_change_desc(ch->kind)->label;
		int			ret;

		/* and columns made NOT NULL: they no longer take NULL */
		if (!rg_change_desc(ch->kind)->removes &&
			rg_change_desc(ch->kind)->rule != RG_RULE_MAY_WRITE_NULL)
			continue;
		{
			/*
			 * Nothing to remember if no registered contract names it: a
			 * probe of the contract's column index (contract_column_idx),
			 * on the column's full prefix or the relation's, as of the
			 * latest committed state
			 * (the INSERT below does not ask again: reading every version's
			 * contract row of a column every version names cost more than
			 * the INSERT itself).
			 */
			const char *keys[3] = {ch->nspname, ch->relname, ch->attname};
			Snapshot	snapshot = rg_probe_begin();
			bool		named = rg_probe(snapshot, RT_CONTRACT, ch->attname ? 3 : 2,
									  keys, 0, NULL);

			rg_probe_end(snapshot);
			if (!named)
				continue;
		}
		if (!connected)
		{
			registry_begin(&access);
			connected = true;
		}
		if (removal_plan == NULL)
		{
			Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};

			removal_plan = rg_prepare_saved(
				"INSERT INTO rollguard.removed_column (nspname, relname, attname, change, removed_at)"
				" VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp())"
				" ON CONFLICT (nspname, relname, attname) DO UPDATE"
				" SET change = EXCLUDED.change, removed_at = EXCLUDED.removed_at",
				4, argtypes);
		}
		values[0] = CStringGetTextDatum(ch->nspname);
		values[1] = CStringGetTextDatum(ch->relname);
		values[2] = CStringGetTextDatum(ch->attname ? ch->attname : "");
		values[3] = CStringGetTextDatum(ch->target
										? psprintf("%s to \"%s\"", label, ch->target)
										: label);
		ret = SPI_execute_plan(removal_plan, values, NULL, false, 0);
		if (ret != SPI_OK_INSERT && ret != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "rollguard: could not record a removal: %s",
				 SPI_result_code_string(ret));
	}
	if (connected)
		registry_end(&access);
}

/*
 * The deployments the registry records that were not seen for
 * rollguard.stale_after (or, expired, for rollguard.forget_after): a list
 * of RgLiveness, in the caller's context.  NIL before 1.7.  Read only for
 * a change the counters say may break something.
 */
List *
rg_fetch_stale_deployments(void)
{
	static SPIPlanPtr stale_plan = NULL;
	MemoryContext outer = CurrentMemoryContext;
	RegistryAccess access;
	List	   *result = NIL;
	int			ret;

	if (rg_api_version() < RG_API_1_7)
		return NIL;
	registry_begin(&access);
	if (stale_plan == NULL)
		stale_plan = rg_prepare_saved(
			"SELECT l.deployment, l.last_deployed, l.last_connected,"
			"       l.liveness OPERATOR(pg_catalog.=) 'expired'"
			"  FROM rollguard._liveness() l"
			" WHERE l.liveness OPERATOR(pg_catalog.=) ANY ('{stale,expired}'::pg_catalog.text[])",
			0, NULL);
	ret = SPI_execute_snapshot(stale_plan, NULL, NULL, GetLatestSnapshot(),
							   InvalidSnapshot, true, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rollguard: registry query failed: %s",
			 SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(outer);
		RgLiveness *l = palloc0(sizeof(RgLiveness));
		Datum		d;

		l->deployment = SPI_getvalue(tup, desc, 1);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		l->last_deployed = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		l->last_connected = isnull ? 0 : DatumGetTimestampTz(d);
		l->expired = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		result = lappend(result, l);
		MemoryContextSwitchTo(spi);
	}
	registry_end(&access);
	return result;
}

/*
 * An expired deployment was left out of a verdict: record the expiries not
 * recorded yet (rollguard._note_expiries(): history and the server log),
 * unless the transaction is read-only.
 */
void
rg_note_expiries(void)
{
	static SPIPlanPtr note_plan = NULL;
	RegistryAccess access;
	int			ret;

	if (rg_api_version() < RG_API_1_7 || XactReadOnly)
		return;
	registry_begin(&access);
	if (note_plan == NULL)
		note_plan = rg_prepare_saved("SELECT rollguard._note_expiries()", 0, NULL);
	ret = SPI_execute_plan(note_plan, NULL, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rollguard: could not record expiries: %s",
			 SPI_result_code_string(ret));
	registry_end(&access);
}

/* Appends one row to rollguard.history (as the extension's owner). */
void
rg_log_history(const char *action, const char *nspname, const char *relname,
			   const char *attname, const char *reason, const char *detail_json)
{
	RegistryAccess access;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			ret;

	registry_begin(&access);
	if (history_plan == NULL)
	{
		Oid			argtypes[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};

		history_plan = rg_prepare_saved(
			"INSERT INTO rollguard.history (action, relation, \"column\", reason, detail)"
			" VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb)",
			5, argtypes);
	}
	values[0] = CStringGetTextDatum(action);
	if (nspname && relname)
		values[1] = CStringGetTextDatum(psprintf("%s.%s", nspname, relname));
	else
		nulls[1] = 'n';
	if (attname)
		values[2] = CStringGetTextDatum(attname);
	else
		nulls[2] = 'n';
	if (reason)
		values[3] = CStringGetTextDatum(reason);
	else
		nulls[3] = 'n';
	if (detail_json)
		values[4] = CStringGetTextDatum(detail_json);
	else
		nulls[4] = 'n';
	ret = SPI_execute_plan(history_plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "rollguard: could not append to rollguard.history: %s",
			 SPI_result_code_string(ret));
	registry_end(&access);
}
