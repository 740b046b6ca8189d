/*-------------------------------------------------------------------------
 * registry.c
 *		Reading the registry of live versions from the C side.
 *
 * The guard runs as whoever runs the migration, who usually may not read the
 * registry tables.  Like the foreign-key triggers, it reads them as their
 * owner (the extension's owner), through SPI, with a saved plan whose SQL
 * names every object and operator schema-qualified.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/rel.h"

#include "compat.h"
#include "rollguard.h"

/* The extension's owner, whom the registry is read as: kept with ext_cache. */
static Oid	ext_owner = InvalidOid;

static SPIPlanPtr pairs_plan = NULL;
static SPIPlanPtr usage_plan = NULL;
static SPIPlanPtr column_usage_plan = NULL;
static SPIPlanPtr not_null_usage_plan = NULL;
static SPIPlanPtr column_removal_plan = NULL;
static SPIPlanPtr relation_removal_plan = NULL;
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
	SetUserIdAndSecContext(ext_owner, access->save_sec_context |
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
static SPIPlanPtr
prepare_saved(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
										  CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "rollguard: SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

/*
 * What rg_extension_active() found, kept for the next statements: looking
 * the extension up in pg_extension (which has no syscache) was 2% of a
 * checked DDL statement.  Only a positive answer is kept, and only until an
 * invalidation says that a schema, or one of the registry tables named
 * below, changed: CREATE, ALTER and DROP EXTENSION, DROP SCHEMA and
 * REASSIGN OWNED all send one (they create, drop or alter the registry
 * tables, or the schema), in this backend and in every other; so does an
 * aborted CREATE EXTENSION, and a reset of the caches.
 */
typedef enum RegistryTable
{
	RT_DEPLOYMENT_STATE,
	RT_CONTRACT,
	RT_LIVE_VERSION,
	RT_LIVE_COLUMN,
	RT_LIVE_RELATION,
	RT_COUNT
} RegistryTable;

static const char *const registry_table_names[RT_COUNT] = {
	"deployment_state", "contract", "live_version", "live_column", "live_relation"
};

static struct
{
	bool		valid;
	Oid			extoid;
	Oid			nsp;
	Oid			relids[RT_COUNT];	/* InvalidOid: not looked up yet */
	RgApiVersion api;			/* the installed SQL scripts' version */
	bool		probe_cache;	/* 1.4 or later: see probe_cache below */
} ext_cache;

static bool ext_cache_callbacks = false;

/*
 * What the guard's probes of the registry found (see probe()), kept from
 * one check to the next while the registry does not change.  From 1.4,
 * every statement that writes to a table named in RegistryTable has a
 * trigger send a relcache invalidation of it (rollguard._registry_changed):
 * like a catalog change, delivered to every backend when the writing
 * transaction commits, before it releases its locks, and never if it
 * aborts (PREPARE TRANSACTION keeps it for COMMIT PREPARED).  That resets
 * this cache, as it resets ext_cache.  probe_cache_epoch counts the
 * resets, so that a probe whose snapshot predates one does not store its
 * answer.
 */
static HTAB *probe_cache = NULL;
static MemoryContext probe_cache_cxt = NULL;
static uint64 probe_cache_epoch = 0;

/* at most this many answers are kept; then the cache starts afresh */
#define PROBE_CACHE_MAX		8192
/* table, then each key as its length and bytes; longer keys are not kept */
#define PROBE_KEY_LEN		(4 * NAMEDATALEN)

typedef struct ProbeKey
{
	char		bytes[PROBE_KEY_LEN];
} ProbeKey;

typedef struct ProbeAnswer
{
	ProbeKey	key;
	bool		found;
	int32		values[3];
} ProbeAnswer;

static void
probe_cache_reset(void)
{
	probe_cache_epoch++;
	if (probe_cache != NULL)
	{
		/* a reset can come in the middle of a probe: nothing points here */
		MemoryContextReset(probe_cache_cxt);
		probe_cache = NULL;
	}
}

static void
ext_cache_reset_relcache(Datum arg, Oid relid)
{
	if (!ext_cache.valid)
		return;
	if (!OidIsValid(relid))
		ext_cache.valid = false;
	for (int i = 0; i < RT_COUNT; i++)
		if (ext_cache.relids[i] == relid)
			ext_cache.valid = false;
	if (!ext_cache.valid)
		probe_cache_reset();
}

static void
ext_cache_reset_syscache(Datum arg, int cacheid, uint32 hashvalue)
{
	ext_cache.valid = false;
	probe_cache_reset();
}

/*
 * rollguard._registry_changed(): a statement trigger on the registry tables
 * the guard's probes read (1.4), and a row trigger where logical
 * replication applies changes to them (it fires row triggers only).  Announces the change as PostgreSQL
 * announces its catalogs': a relcache invalidation of the table, sent to
 * every backend if and when the transaction commits.  It resets their
 * ext_cache and probe_cache.
 */
PG_FUNCTION_INFO_V1(rollguard_registry_changed);

Datum
rollguard_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rollguard._registry_changed() was not called by a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	PG_RETURN_POINTER(NULL);
}

/*
 * The version of the installed SQL scripts, from pg_extension.extversion:
 * one of ours, or (a newer script with an older library) the newest this
 * library knows.
 */
static RgApiVersion
api_version(const char *extversion)
{
	static const char *const names[] = {
		[RG_API_1_0] = "1.0", [RG_API_1_1] = "1.1", [RG_API_1_2] = "1.2",
		[RG_API_1_3] = "1.3", [RG_API_1_4] = "1.4", [RG_API_1_5] = "1.5",
	};

	for (int v = RG_API_1_0; v <= RG_API_LATEST; v++)
	{
		if (strcmp(extversion, names[v]) == 0)
			return (RgApiVersion) v;
	}
	return RG_API_LATEST;
}

/* Looks the extension up, if the cache does not have it: is it here? */
static bool
ext_cache_fill(void)
{
	Oid			nsp;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	if (ext_cache.valid)
		return true;
	if (!ext_cache_callbacks)
	{
		CacheRegisterRelcacheCallback(ext_cache_reset_relcache, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, ext_cache_reset_syscache,
									  (Datum) 0);
		ext_cache_callbacks = true;
	}

	/* the common "no" costs one syscache probe: the schema has a fixed name */
	nsp = get_namespace_oid("rollguard", true);
	if (!OidIsValid(nsp))
		return false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("rollguard"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tup);

		bool		isnull;
		Datum		version = heap_getattr(tup, Anum_pg_extension_extversion,
										   RelationGetDescr(rel), &isnull);
		memset(&ext_cache, 0, sizeof(ext_cache));
		ext_cache.extoid = ext->oid;
		ext_owner = ext->extowner;
		ext_cache.nsp = nsp;
		ext_cache.valid = true;
		ext_cache.api = isnull ? RG_API_1_0 : api_version(TextDatumGetCString(version));
		ext_cache.probe_cache = ext_cache.api >= RG_API_1_4;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/*
	 * The OIDs of the registry tables: their invalidations reset the cache.
	 * Every version has deployment_state, and DROP EXTENSION drops it even
	 * where the schema outlives the extension (made before it).  Where the
	 * probes' answers are cached, every table probed must be known here,
	 * before any answer is kept.
	 */
	if (ext_cache.valid)
	{
		for (int i = 0; i < RT_COUNT; i++)
		{
			ext_cache.relids[i] = get_relname_relid(registry_table_names[i], nsp);
			if (!OidIsValid(ext_cache.relids[i]))
				ext_cache.probe_cache = false;
		}
	}
	return ext_cache.valid;
}

/*
 * Is the extension created in this database (and not being created right
 * now)?
 */
bool
rg_extension_active(void)
{
	if (!ext_cache_fill())
		return false;
	/* our own install or upgrade script: the registry may not exist yet */
	if (creating_extension && CurrentExtensionObject == ext_cache.extoid)
		return false;
	return true;
}

/*
 * The OID of a registry table (cached with the extension); InvalidOid if it
 * does not exist (an older version of the extension).  Called after
 * rg_extension_active() said yes; a lock taken since may have reset the
 * cache, so it looks the extension up again if it must.
 */
static Oid
registry_table(RegistryTable which)
{
	if (!ext_cache_fill())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"rollguard\" was dropped while a statement was being checked")));
	/* an older version lacks it; an update may have made it since */
	if (!OidIsValid(ext_cache.relids[which]))
		ext_cache.relids[which] = get_relname_relid(registry_table_names[which],
													ext_cache.nsp);
	return ext_cache.relids[which];
}

/*
 * Serializes the guard's decision with deploy steps.  A checked statement
 * holds a lock on the registry until its transaction ends that every deploy
 * step's lock conflicts with, and deploy steps take theirs before they look
 * at the schema.  So either the deploy commits first and the guard (reading
 * the latest committed registry) sees the version live, or the migration
 * commits first and the deploy's forward check sees the column gone: the
 * outcome of some serial order, never a dropped column under a live
 * version.
 *
 * From 1.3 every change to the live versions or their contracts takes
 * EXCLUSIVE on rollguard.live_version first (rollguard._lock_live()), so
 * the guard takes ROW SHARE on it: checked statements do not conflict with
 * each other, and a weak lock takes the lock manager's fast path (SHARE
 * made every checked statement visit every backend's fast-path locks).
 * Before 1.3, deploy steps take ROW EXCLUSIVE on deployment_state, and the
 * guard SHARE.
 */
static Oid
registry_lock_relation(LOCKMODE *mode)
{
	Oid			relid;

	if (rg_api_version() >= RG_API_1_3)
	{
		relid = registry_table(RT_LIVE_VERSION);
		*mode = RowShareLock;
	}
	else
	{
		relid = registry_table(RT_DEPLOYMENT_STATE);
		*mode = ShareLock;
	}
	if (!OidIsValid(relid))
		elog(ERROR, "rollguard: registry table rollguard.%s is missing",
			 *mode == RowShareLock ? "live_version" : "deployment_state");
	return relid;
}

void
rg_lock_registry(void)
{
	LOCKMODE	mode;
	Oid			relid = registry_lock_relation(&mode);

	LockRelationOid(relid, mode);
}

/*
 * One snapshot for all of a check's probes: the latest committed state of
 * the registry.  Answers are taken from and kept in probe_cache only while
 * this transaction holds the registry lock (rg_lock_registry()): then no
 * deploy step, registration or other change that takes rollguard's lock
 * (rollguard._lock_live()) can commit, and any that committed before sent
 * its invalidation before it let its lock go.  Changes that do not take
 * it (a superuser's edits with session_replication_role = replica, say)
 * can commit while this transaction holds its lock, which it took in an
 * earlier statement: the invalidations that arrived since are read here,
 * not only when a lock is taken.
 */
static bool probe_cache_usable = false;
static uint64 probe_snapshot_epoch = 0;

static Snapshot
probe_begin(void)
{
	probe_cache_usable = false;
	if (ext_cache.valid && ext_cache.probe_cache)
	{
		LOCKTAG		tag;
		LOCKMODE	mode;

		SET_LOCKTAG_RELATION(tag, MyDatabaseId, registry_lock_relation(&mode));
		probe_cache_usable = LOCK_HELD_BY_ME(&tag, mode);
		if (probe_cache_usable)
			AcceptInvalidationMessages();
	}
	/* a snapshot that sees every change whose invalidation was read */
	probe_snapshot_epoch = probe_cache_epoch;
	return RegisterSnapshot(GetLatestSnapshot());
}

static void
probe_end(Snapshot snapshot)
{
	UnregisterSnapshot(snapshot);
	probe_cache_usable = false;
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
 * The version of the extension's SQL objects in this database (after
 * rg_extension_active() said it is here).  The library serves every
 * version: features follow what the database has (ALTER EXTENSION UPDATE
 * may not have run yet).  An update that changes no registry table is seen
 * at the next reset of the cache; the library's behaviour changes only at
 * 1.3 (the counters) and 1.4 (the triggers on the registry tables), and
 * those updates make such a reset.
 */
RgApiVersion
rg_api_version(void)
{
	if (!ext_cache_fill())
		return RG_API_NONE;
	return ext_cache.api;
}

/* Is the installed extension 1.3 or later (counters, observed uses)? */
bool
rg_counters_installed(void)
{
	return rg_api_version() >= RG_API_1_3;
}

/*
 * Looks up the first row of the registry table whose leading key columns
 * (text, heap attribute numbers 1..nkeys) equal keys, through the table's
 * primary key, as of snapshot (the latest committed state: the caller's
 * registered GetLatestSnapshot()); nkeys 0: any row.  Fills
 * values[0..nvalues-1] with the row's integer columns nkeys+1.. (if it
 * found one).  An index probe from C: no SPI, no planner, no executor --
 * the guard's common case costs a few microseconds.
 */
static bool
probe_index(Snapshot snapshot, RegistryTable table, int nkeys, const char **keys,
	  int nvalues, int32 *values)
{
	Oid			relid = registry_table(table);
	Oid			indexid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey[3];
	HeapTuple	tup;
	bool		found;

	if (!OidIsValid(relid))
		elog(ERROR, "rollguard: registry table rollguard.%s is missing",
			 registry_table_names[table]);
	rel = table_open(relid, AccessShareLock);
	indexid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(indexid))
		elog(ERROR, "rollguard: registry table rollguard.%s has no primary key",
			 registry_table_names[table]);
	for (int i = 0; i < nkeys; i++)
		ScanKeyInit(&skey[i], i + 1, BTEqualStrategyNumber, F_TEXTEQ,
					PointerGetDatum(cstring_to_text(keys[i])));
	scan = systable_beginscan(rel, indexid, true, snapshot, nkeys, skey);
	tup = systable_getnext(scan);
	found = HeapTupleIsValid(tup);
	for (int i = 0; found && i < nvalues; i++)
	{
		bool		isnull;

		values[i] = DatumGetInt32(heap_getattr(tup, nkeys + 1 + i,
											   RelationGetDescr(rel), &isnull));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The key of a probe in probe_cache: false if it is too long to keep.
 */
static bool
probe_key(ProbeKey *key, RegistryTable table, int nkeys, const char **keys)
{
	int			off = 0;

	memset(key, 0, sizeof(ProbeKey));
	key->bytes[off++] = (char) table;
	key->bytes[off++] = (char) nkeys;
	for (int i = 0; i < nkeys; i++)
	{
		size_t		len = strlen(keys[i]);
		uint16		len16 = (uint16) len;

		if (off + sizeof(uint16) + len > PROBE_KEY_LEN)
			return false;
		memcpy(key->bytes + off, &len16, sizeof(uint16));
		off += sizeof(uint16);
		memcpy(key->bytes + off, keys[i], len);
		off += len;
	}
	return true;
}

/*
 * probe_index(), answered from probe_cache where it can be: a check of a
 * column the registry has not changed for since the last check of it
 * costs a hash lookup instead of an index scan.
 */
static bool
probe(Snapshot snapshot, RegistryTable table, int nkeys, const char **keys,
	  int nvalues, int32 *values)
{
	ProbeKey	key;
	ProbeAnswer *answer;
	bool		found;
	int32		all[3] = {0, 0, 0};

	Assert(nvalues <= 3);
	if (!probe_cache_usable || !probe_key(&key, table, nkeys, keys))
		return probe_index(snapshot, table, nkeys, keys, nvalues, values);

	if (probe_cache != NULL)
	{
		answer = hash_search(probe_cache, &key, HASH_FIND, NULL);
		if (answer != NULL)
		{
			memcpy(values, answer->values, sizeof(int32) * nvalues);
			return answer->found;
		}
	}

	found = probe_index(snapshot, table, nkeys, keys, nvalues, all);
	memcpy(values, all, sizeof(int32) * nvalues);

	/* not if the registry changed since the snapshot was taken */
	if (probe_cache_epoch != probe_snapshot_epoch)
		return found;
	if (probe_cache == NULL || hash_get_num_entries(probe_cache) >= PROBE_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (probe_cache_cxt == NULL)
			probe_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
													"rollguard probe cache",
													ALLOCSET_DEFAULT_SIZES);
		MemoryContextReset(probe_cache_cxt);
		ctl.keysize = sizeof(ProbeKey);
		ctl.entrysize = sizeof(ProbeAnswer);
		ctl.hcxt = probe_cache_cxt;
		probe_cache = hash_create("rollguard probe cache", 256, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	answer = hash_search(probe_cache, &key, HASH_ENTER, NULL);
	answer->found = found;
	memcpy(answer->values, all, sizeof(all));
	return found;
}

/* Is the version live by the registry (some deployment runs it)? */
static bool
version_is_live(Snapshot snapshot, const char *version)
{
	return probe(snapshot, RT_LIVE_VERSION, 1, &version, 0, NULL);
}

/*
 * The counters of live use for a column (attname may be NULL) and its
 * relation (false if they cannot be trusted; the caller has checked that
 * the installed extension has them: rg_counters_installed());
 * whether any of the tagged sessions' versions (sessions: a list of
 * RgSession) is not live by the registry; and whether any of
 * observed_versions (C strings) is live, by the registry or by a tagged
 * session.  Primary-key probes of rollguard.live_column, live_relation and
 * live_version: the cost does not depend on how many deployments or
 * versions the registry holds.
 */
bool
rg_fetch_counts(const char *nspname, const char *relname, const char *attname,
				List *sessions, List *observed_versions, RgLiveCounts *counts)
{
	const char *keys[3] = {nspname, relname, attname};
	int32		values[3];
	ListCell   *lc;
	Snapshot	snapshot;

	/* one state of the registry for every probe: the latest committed */
	snapshot = probe_begin();

	/*
	 * Deployments but no live versions: the counters were not kept (a
	 * restore with --disable-triggers); do not trust them.
	 */
	if (!probe(snapshot, RT_LIVE_VERSION, 0, NULL, 0, NULL) &&
		probe(snapshot, RT_DEPLOYMENT_STATE, 0, NULL, 0, NULL))
	{
		probe_end(snapshot);
		return false;
	}

	memset(counts, 0, sizeof(RgLiveCounts));
	if (attname && probe(snapshot, RT_LIVE_COLUMN, 3, keys, 3, values))
	{
		counts->column_users = values[0];
		counts->column_nullable = values[1];
		counts->column_writers = values[2];
	}
	if (probe(snapshot, RT_LIVE_RELATION, 2, keys, 2, values))
	{
		counts->relation_users = values[0];
		counts->relation_inserters = values[1];
	}
	foreach(lc, sessions)
	{
		RgSession  *s = lfirst(lc);

		if (!version_is_live(snapshot, s->version))
		{
			counts->other_sessions = true;
			break;
		}
	}
	foreach(lc, observed_versions)
	{
		const char *v = lfirst(lc);
		ListCell   *sc;

		foreach(sc, sessions)
			if (strcmp(((RgSession *) lfirst(sc))->version, v) == 0)
				counts->observed_live = true;
		if (!counts->observed_live && version_is_live(snapshot, v))
			counts->observed_live = true;
		if (counts->observed_live)
			break;
	}
	probe_end(snapshot);
	return true;
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

		pairs_plan = prepare_saved(
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
			*plan = prepare_saved(NOT_NULL_USAGE_SQL, 6, argtypes);
		else
			*plan = prepare_saved(psprintf(USAGE_SQL,
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
 * that migration from a version whose new columns are still to come.  Only
 * what some registered contract names: nothing else can be asked about
 * (a build registered later is not rolled back past the removal).
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
		SPIPlanPtr *plan;
		int			ret;

		if (!rg_change_desc(ch->kind)->removes)
			continue;
		{
			/* nothing to remember if no registered contract names it */
			const char *keys[3] = {ch->nspname, ch->relname, ch->attname};
			Snapshot	snapshot = probe_begin();
			bool		named = probe(snapshot, RT_CONTRACT, ch->attname ? 3 : 2,
									  keys, 0, NULL);

			probe_end(snapshot);
			if (!named)
				continue;
		}
		if (!connected)
		{
			registry_begin(&access);
			connected = true;
		}
		/*
		 * Two plans, so that each probes the contract's primary key on its
		 * full prefix: the column's, or the relation's.
		 */
		plan = ch->attname ? &column_removal_plan : &relation_removal_plan;
		if (*plan == NULL)
		{
			Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};

			*plan = prepare_saved(psprintf(
				"INSERT INTO rollguard.removed_column (nspname, relname, attname, change)"
				" SELECT $1, $2, $3, $4"
				"  WHERE EXISTS (SELECT 1 FROM rollguard.contract c"
				"                 WHERE c.nspname OPERATOR(pg_catalog.=) $1"
				"                   AND c.relname OPERATOR(pg_catalog.=) $2%s)"
				" ON CONFLICT (nspname, relname, attname) DO UPDATE"
				" SET change = EXCLUDED.change, removed_at = EXCLUDED.removed_at",
				ch->attname ? " AND c.attname OPERATOR(pg_catalog.=) $3" : ""),
				4, argtypes);
		}
		values[0] = CStringGetTextDatum(ch->nspname);
		values[1] = CStringGetTextDatum(ch->relname);
		values[2] = CStringGetTextDatum(ch->attname ? ch->attname : "");
		values[3] = CStringGetTextDatum(ch->target
										? psprintf("%s to \"%s\"", label, ch->target)
										: label);
		ret = SPI_execute_plan(*plan, values, NULL, false, 0);
		if (ret != SPI_OK_INSERT && ret != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "rollguard: could not record a removal: %s",
				 SPI_result_code_string(ret));
	}
	if (connected)
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

		history_plan = prepare_saved(
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
