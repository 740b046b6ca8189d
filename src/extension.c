/*-------------------------------------------------------------------------
 * extension.c
 *		Is the extension here, which version of its SQL scripts, and when
 *		what a backend knows of it goes stale: the extension lookup and
 *		its cache, the registry tables' OIDs, their invalidation (1.4: the
 *		registry announces its changes), and the guard's lock on the
 *		registry.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "compat.h"
#include "registry.h"

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
const char *const rg_registry_table_names[RT_COUNT] = {
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

/* The extension's owner, whom the registry is read as: kept with ext_cache. */
static Oid	ext_owner = InvalidOid;

/*
 * How many times the caches were reset: what a backend keeps of the
 * registry (probe.c) is good while this has not moved.
 */
uint64		rg_registry_epoch = 0;

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
		rg_registry_epoch++;
}

static void
ext_cache_reset_syscache(Datum arg, int cacheid, uint32 hashvalue)
{
	ext_cache.valid = false;
	rg_registry_epoch++;
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
		[RG_API_1_6] = "1.6", [RG_API_1_7] = "1.7",
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
			ext_cache.relids[i] = get_relname_relid(rg_registry_table_names[i], nsp);
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
Oid
rg_registry_table(RegistryTable which)
{
	if (!ext_cache_fill())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"rollguard\" was dropped while a statement was being checked")));
	/* an older version lacks it; an update may have made it since */
	if (!OidIsValid(ext_cache.relids[which]))
		ext_cache.relids[which] = get_relname_relid(rg_registry_table_names[which],
													ext_cache.nsp);
	return ext_cache.relids[which];
}

/*
 * Serializes the guard's decision with deploy steps.  While the guard
 * judges a change it holds a lock on the registry that every deploy
 * step's lock conflicts with, and deploy steps take theirs before they
 * look at the schema.  So a judgment sees either a deploy step committed
 * (the version live) or none of it.
 *
 * A judgment made at a statement inside a transaction block does not keep
 * the lock: an open (or idle) migration would otherwise hold every deploy
 * step up until it ends (and a deploy step queued behind it every other
 * checked statement).  The transaction's changes are judged again when it
 * commits or is prepared (net_effect.c), under the lock, which a COMMIT
 * then keeps until the transaction has ended: either the deploy commits
 * first and that judgment sees the version live, or the migration commits
 * first and the deploy's forward check sees the column gone -- the outcome
 * of some serial order, never a dropped column under a live version.  A
 * statement that is its own transaction keeps the lock it judged under
 * until it ends.
 *
 * From 1.3 every change to the live versions or their contracts takes
 * EXCLUSIVE on rollguard.live_version first (rollguard._lock_live()), so
 * the guard takes ROW SHARE on it: checked statements do not conflict with
 * each other, and a weak lock takes the lock manager's fast path (SHARE
 * made every checked statement visit every backend's fast-path locks).
 * Before 1.3, deploy steps take ROW EXCLUSIVE on deployment_state, and the
 * guard SHARE.
 */
Oid
rg_registry_lock_relation(LOCKMODE *mode)
{
	Oid			relid;

	if (rg_api_version() >= RG_API_1_3)
	{
		relid = rg_registry_table(RT_LIVE_VERSION);
		*mode = RowShareLock;
	}
	else
	{
		relid = rg_registry_table(RT_DEPLOYMENT_STATE);
		*mode = ShareLock;
	}
	if (!OidIsValid(relid))
		elog(ERROR, "rollguard: registry table rollguard.%s is missing",
			 *mode == RowShareLock ? "live_version" : "deployment_state");
	return relid;
}

/*
 * The registry lock held at session level while a transaction is being
 * prepared (rg_lock_registry_for_prepare()): the transaction's locks pass to
 * the prepared transaction, which must not keep this one.
 */
static LockRelId prepare_lock = {InvalidOid, InvalidOid};
static LOCKMODE prepare_lock_mode = NoLock;

/* Takes the registry lock, for the rest of the transaction. */
void
rg_lock_registry(void)
{
	LOCKMODE	mode;
	Oid			relid;

	if (OidIsValid(prepare_lock.relId))
		return;					/* held at session level already */
	relid = rg_registry_lock_relation(&mode);
	LockRelationOid(relid, mode);
}

/* Releases what one rg_lock_registry() took (a judgment is over). */
void
rg_unlock_registry(void)
{
	LOCKMODE	mode;
	Oid			relid;

	if (OidIsValid(prepare_lock.relId))
		return;
	relid = rg_registry_lock_relation(&mode);
	UnlockRelationOid(relid, mode);
}

/*
 * PREPARE TRANSACTION: the transaction is judged at PRE_PREPARE under the
 * registry lock taken at session level, so that it does not pass to the
 * prepared transaction; rg_unlock_registry_after_prepare() releases it once
 * the transaction is prepared (or failed to be).  Until the prepared
 * transaction has been prepared, deploy steps wait for the lock; after,
 * they see the prepared transaction's locks on the relations it changes.
 */
void
rg_lock_registry_for_prepare(void)
{
	LOCKMODE	mode;

	if (OidIsValid(prepare_lock.relId))
		return;
	/*
	 * Before 1.6, deploy steps do not look for prepared transactions: the
	 * prepared transaction keeps the registry lock, as it always did.
	 */
	if (rg_api_version() < RG_API_1_6)
	{
		rg_lock_registry();
		return;
	}
	prepare_lock.relId = rg_registry_lock_relation(&mode);
	prepare_lock.dbId = MyDatabaseId;
	/*
	 * Not ROW SHARE: PREPARE forgets a session lock taken by the lock
	 * manager's fast path (its local entry goes, the lock stays).  SHARE
	 * UPDATE EXCLUSIVE conflicts with the deploy steps' EXCLUSIVE just the
	 * same, and is never taken by the fast path.
	 */
	if (mode == RowShareLock)
		mode = ShareUpdateExclusiveLock;
	LockRelationIdForSession(&prepare_lock, mode);
	prepare_lock_mode = mode;
}

/*
 * The judgment at PRE_PREPARE is over.  If the transaction holds the lock
 * relation at transaction level in any mode (it ran a deploy step or a
 * registration itself, say), PREPARE cannot keep our session-level lock
 * beside it: the prepared transaction keeps the registry lock instead (it
 * holds deploy steps up anyway), taken before the session lock goes.
 */
void
rg_registry_prepare_judged(void)
{
	LOCKTAG		tag;

	if (!OidIsValid(prepare_lock.relId))
		return;
	SET_LOCKTAG_RELATION(tag, prepare_lock.dbId, prepare_lock.relId);
	for (LOCKMODE m = AccessShareLock; m <= AccessExclusiveLock; m++)
	{
		if (m == prepare_lock_mode || !LOCK_HELD_BY_ME(&tag, m))
			continue;
		LockRelationOid(prepare_lock.relId, RowShareLock);
		rg_unlock_registry_after_prepare();
		return;
	}
}

void
rg_unlock_registry_after_prepare(void)
{
	if (!OidIsValid(prepare_lock.relId))
		return;
	UnlockRelationIdForSession(&prepare_lock, prepare_lock_mode);
	prepare_lock.relId = InvalidOid;
	prepare_lock_mode = NoLock;
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

/* The role the registry is read as: the extension's owner. */
Oid
rg_registry_owner(void)
{
	return ext_owner;
}

/* May the probes' answers be kept (1.4 or later, every table known)? */
bool
rg_probe_cache_allowed(void)
{
	return ext_cache.valid && ext_cache.probe_cache;
}
